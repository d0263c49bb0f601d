"""`abmrl collect`: log an online MPO run's episodes into a dataset."""

import argparse
import os
import sys

from abmrl.launch import config as config_lib
from abmrl.launch import flags


def add_parser(commands) -> None:
  parser = commands.add_parser(
      'collect', help='log an online MPO run into a dataset (one seed)',
      description='Run an online MPO agent (replay, learner, K actors) whose '
      'actors log every episode they generate into DIR, tagged with the '
      'seed, until the seed holds --episodes episodes. Re-running continues '
      'the count (the learner resumes from DIR/collector/seed<S>); run once '
      'per seed to put several seeds into one dataset.')
  flags.add_flags(parser, config_lib.CollectConfig(),
                  required=('env_id', 'dataset_dir', 'episodes'))
  parser.add_argument(
      '--set', action='append', default=[], metavar='KEY=VALUE',
      help='override an MPO hyperparameter (see `abmrl train`), e.g. '
      'batch_size=512 (repeatable)')
  parser.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
  config = flags.make_collect_config(
      flags.given(args, config_lib.CollectConfig), args.set)
  # Flags and paths before TensorFlow loads: a mistake is one line at once.
  config.validate()
  config_lib.check_writable_dir(config.dataset_dir, '--out')
  from abmrl.launch import run as run_lib  # pylint: disable=g-import-not-at-top
  run_lib.collect_spec(config)  # bad input stops here, before any output
  before = run_lib.collected_episodes(config)
  prefix = f'[collect seed {config.seed}]'
  if before >= config.episodes:
    print(f'{prefix} {args.dataset_dir} already holds {before} episodes of '
          f'this seed (target {config.episodes}): nothing to do')
    return 0
  print(f'{prefix} {config.env_id}: {before} episodes on disk, collecting up '
        f'to {config.episodes} with {config.actors} actor(s); progress also '
        f'in {os.path.join(config.run_dir, "progress.log")}', flush=True)
  result = run_lib.collect(config)
  print(run_lib.format_collect_summary(result))
  if result.episodes_after < result.target:
    print(f'abmrl: error: the collection stopped at {result.episodes_after} '
          f'of {result.target} episodes (see the errors above); re-run to '
          'continue', file=sys.stderr)
    return 1
  return 0
