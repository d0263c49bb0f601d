"""Learning curves of several agents on one mixed-quality dataset.

Like the ABM paper's Figure 1 (return against learner step for the RL policy
and the prior, the best episode in the data marked) and Table 6 (final
returns), at the scale this machine affords. Each agent runs as the full
Launchpad program (restorers, Reverb, learner, evaluators). With
--offline-steps, each run switches to online fine-tuning at that step (the
switch is marked), as AWAC's offline→online curves.

Usage:
  python benchmarks/abm_results.py [--steps 3000] [--out docs/results]
  python benchmarks/abm_results.py --env control:cheetah-run \
      --dataset data/mpo-cheetah_run --agents awac,abm_mpo \
      --offline-steps 5000 --steps 10000 --name finetune_cheetah
"""

import argparse
import glob
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('GLOG_minloglevel', '1')
os.environ.setdefault('MUJOCO_GL', 'egl')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ENV_ID = 'control:point_mass-easy'
AGENTS = ('abm_mpo', 'bm_mpo', 'mpo')


def curves(run_dir):
  from launch import run as run_lib
  out = {}
  for path in sorted(glob.glob(os.path.join(run_dir, 'logs', 'evaluator_*',
                                            'logs.csv'))):
    label = os.path.basename(os.path.dirname(path)).split('_')[1]
    rows = run_lib.read_csv(path)
    out[label] = ([r['learner_steps'] for r in rows],
                  [r['evaluation_return'] for r in rows])
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--dataset', default='data/results-point_mass')
  parser.add_argument('--episodes-per-behaviour', type=int, default=10)
  parser.add_argument('--steps', type=int, default=3000)
  parser.add_argument('--runs', default='runs/results')
  parser.add_argument('--out', default='docs/results')
  parser.add_argument('--agents', default=','.join(AGENTS))
  parser.add_argument('--eval-episodes', type=int, default=10)
  parser.add_argument('--env', default=ENV_ID)
  parser.add_argument('--first-episodes', type=int)
  parser.add_argument('--offline-steps', type=int)
  parser.add_argument('--name', default='abm_point_mass',
                      help='basename of the PNG and table written to --out')
  parser.add_argument('--plot-only', action='store_true',
                      help='redraw the plot and table from the runs already '
                      'in --runs')
  parser.add_argument('--set', action='append', default=[],
                      metavar='KEY=VALUE', help='hyperparameter override for '
                      'every agent that has KEY')
  args = parser.parse_args()

  from datasets import episodes, generate, summary
  from launch import config as config_lib
  from launch import cli
  from launch import run as run_lib
  from agents import registry
  if not episodes.list_episodes(args.dataset):
    if args.env != ENV_ID:
      sys.exit(f'abmrl: error: no episodes in {args.dataset}')
    generate.generate(ENV_ID, args.dataset, args.episodes_per_behaviour,
                      seed=0, progress=None)
  info = summary.summarize(args.dataset, args.first_episodes)
  print(summary.format_summary(info), flush=True)
  spec = episodes.read_spec(args.dataset)
  results = {}
  for agent in args.agents.split(','):
    run_dir = os.path.abspath(os.path.join(args.runs, agent))
    fields = vars(registry.get(agent).config_class())
    overrides = cli._agent_overrides(  # pylint: disable=protected-access
        agent, [kv for kv in args.set if kv.partition('=')[0] in fields])
    config = config_lib.TrainConfig(
        agent=agent, env_id=args.env,
        dataset_dir=os.path.abspath(args.dataset), run_dir=run_dir,
        steps=args.steps, restorers=1, evaluators=1,
        eval_episodes=args.eval_episodes,
        eval_every_learner_steps=max(1, args.steps // 10),
        snippet_length=registry.get(agent).snippet_length,
        replay_size=200_000, min_replay_size=5_000, samples_per_insert=32.0,
        first_episodes=args.first_episodes, offline_steps=args.offline_steps,
        agent_config=overrides)
    start = time.time()
    if args.plot_only:
      result = run_lib.read_result(run_dir)
      with open(os.path.join(run_dir, 'wall_seconds')) as f:
        seconds = float(f.read())
    else:
      result = run_lib.train(config, spec, launch_type='local_mp')
      seconds = time.time() - start
      with open(os.path.join(run_dir, 'wall_seconds'), 'w') as f:
        f.write(f'{seconds:.1f}')
    results[agent] = (result, curves(run_dir), seconds)
    print(run_lib.format_summary(result), flush=True)

  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  os.makedirs(args.out, exist_ok=True)
  fig, ax = plt.subplots(figsize=(9, 4.5))
  colours = {'abm_mpo': 'tab:red', 'bm_mpo': 'tab:blue', 'mpo': 'tab:green',
             'awac': 'tab:purple', 'awr': 'tab:orange'}
  for agent, (_, agent_curves, _) in results.items():
    for label, (steps, returns) in agent_curves.items():
      ax.plot(steps, returns, color=colours.get(agent, 'black'),
              linestyle='-' if label == 'policy' else ':',
              label=f'{agent} [{label}]', marker='o', markersize=3)
  ax.axhline(info.best_return, color='grey', linestyle='--',
             label='best episode in data')
  ax.axhline(info.mean_return, color='grey', linestyle='-.',
             label='mean episode in data')
  if args.offline_steps is not None:
    ax.axvline(args.offline_steps, color='black', linewidth=0.8,
               label='offline → online')
  ax.set_xlabel('learner step')
  ax.set_ylabel('evaluation return (mean action)')
  used = (f'first {args.first_episodes} episodes per seed: '
          if args.first_episodes else '')
  ax.set_title(f'{args.env}, {used}{info.total.episodes} episodes; '
               f'mean of {args.eval_episodes} evaluation episodes',
               fontsize=9)
  ax.legend(fontsize=8, loc='center left', bbox_to_anchor=(1.01, 0.5))
  fig.tight_layout()
  png = os.path.join(args.out, f'{args.name}.png')
  fig.savefig(png, dpi=120)

  lines = ['| agent | RL policy | prior | learner steps | wall time |',
           '|---|---|---|---|---|']
  for agent, (result, agent_curves, seconds) in results.items():
    policy = result.final_returns.get('evaluator_policy_0', float('nan'))
    prior = result.final_returns.get('evaluator_prior_0', float('nan'))
    lines.append(f'| {agent} | {policy:.1f} | {prior:.1f} | '
                 f'{result.learner_steps} | {seconds:.0f} s |')
  lines.append(f'| data: best episode | {info.best_return:.1f} | | | |')
  lines.append(f'| data: mean episode | {info.mean_return:.1f} | | | |')
  table = '\n'.join(lines)
  print(table)
  with open(os.path.join(args.out, f'{args.name}_table.md'), 'w') as f:
    f.write(table + '\n')
  print(f'wrote {png}')


if __name__ == '__main__':
  main()
