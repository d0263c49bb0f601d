"""`abmrl demo`: a small dataset, BM trained on it through the whole
program, its return beside the data's."""

import argparse
import os

from abmrl.datasets import episodes
from abmrl.datasets import generate
from abmrl.datasets import summary
from abmrl.launch import config as config_lib
from abmrl.launch.cli import dataset


def add_parser(commands) -> None:
  parser = commands.add_parser(
      'demo', help='make a small dataset, train BM briefly, print its '
      'evaluation beside the data')
  parser.add_argument('--dataset', default='data/demo-point_mass',
                      help='the demo dataset (made if missing)')
  parser.add_argument('--run-dir', default='runs/demo')
  parser.add_argument('--steps', type=int, default=3000,
                      help='learner steps (default 3000)')
  parser.set_defaults(command=main)


def demo_config(dataset_dir: str, run_dir: str,
                steps: int) -> config_lib.TrainConfig:
  """BM on the demo data, with a table sized for 20 short episodes."""
  return config_lib.TrainConfig.for_agent(
      'bm', {'data': dict(dataset_dir=os.path.abspath(dataset_dir)),
             'replay': dict(replay_size=100_000, min_replay_size=2_000)},
      env_id=dataset.DEMO_ENV, run_dir=os.path.abspath(run_dir), steps=steps)


def main(args: argparse.Namespace) -> int:
  from abmrl.launch import run as run_lib  # pylint: disable=g-import-not-at-top
  config = demo_config(args.dataset, args.run_dir, args.steps)
  dataset_dir = config.data.dataset_dir
  if not episodes.list_episodes(dataset_dir):
    print(f'[demo] making a small mixed-quality {dataset.DEMO_ENV} dataset '
          f'in {dataset_dir}')
    generate.generate(dataset.DEMO_ENV, dataset_dir,
                      episodes_per_behaviour=5, seed=0)
  info = summary.summarize(dataset_dir)
  print(summary.format_summary(info))
  result = run_lib.train(config)
  print(run_lib.format_summary(result))
  print(f'[demo] BM evaluation return {result.final_return:.1f} (mean over '
        f'{config.evaluation.episodes} episodes) | dataset: best episode '
        f'{info.best_return:.1f}, mean episode {info.mean_return:.1f}')
  return 0
