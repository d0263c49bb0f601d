"""Learning curves of ABM+MPO, BM+MPO and MPO on a mixed-quality dataset.

Like the ABM paper's Figure 1 (return against learner step for the RL policy
and the prior, the best episode in the data marked) and Table 6 (final
returns), at the scale this machine affords. Each agent runs as the full
Launchpad program (restorers, Reverb, learner, evaluators).

Usage: python benchmarks/abm_results.py [--steps 3000] [--out docs/results]
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
  args = parser.parse_args()

  from datasets import episodes, generate, summary
  from launch import config as config_lib
  from launch import run as run_lib
  if not episodes.list_episodes(args.dataset):
    generate.generate(ENV_ID, args.dataset, args.episodes_per_behaviour,
                      seed=0, progress=None)
  info = summary.summarize(args.dataset)
  print(summary.format_summary(info), flush=True)
  spec = episodes.read_spec(args.dataset)
  results = {}
  for agent in args.agents.split(','):
    run_dir = os.path.abspath(os.path.join(args.runs, agent))
    config = config_lib.TrainConfig(
        agent=agent, env_id=ENV_ID, dataset_dir=os.path.abspath(args.dataset),
        run_dir=run_dir, steps=args.steps, restorers=1, evaluators=1,
        eval_episodes=args.eval_episodes, eval_every_learner_steps=max(1, args.steps // 10),
        snippet_length=2, replay_size=200_000, min_replay_size=5_000,
        samples_per_insert=32.0)
    start = time.time()
    result = run_lib.train(config, spec, launch_type='local_mp')
    results[agent] = (result, curves(run_dir), time.time() - start)
    print(run_lib.format_summary(result), flush=True)

  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  os.makedirs(args.out, exist_ok=True)
  fig, ax = plt.subplots(figsize=(9, 4.5))
  colours = {'abm_mpo': 'tab:red', 'bm_mpo': 'tab:blue', 'mpo': 'tab:green'}
  for agent, (_, agent_curves, _) in results.items():
    for label, (steps, returns) in agent_curves.items():
      ax.plot(steps, returns, color=colours.get(agent, 'black'),
              linestyle='-' if label == 'policy' else ':',
              label=f'{agent} [{label}]', marker='o', markersize=3)
  ax.axhline(info.best_return, color='grey', linestyle='--',
             label='best episode in data')
  ax.axhline(info.mean_return, color='grey', linestyle='-.',
             label='mean episode in data')
  ax.set_xlabel('learner step')
  ax.set_ylabel('evaluation return (mean action)')
  ax.set_title(f'{ENV_ID}, {info.total.episodes} episodes of mixed quality; '
               f'mean of {args.eval_episodes} evaluation episodes')
  ax.legend(fontsize=8, loc='center left', bbox_to_anchor=(1.01, 0.5))
  fig.tight_layout()
  png = os.path.join(args.out, 'abm_point_mass.png')
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
  with open(os.path.join(args.out, 'abm_point_mass_table.md'), 'w') as f:
    f.write(table + '\n')
  print(f'wrote {png}')


if __name__ == '__main__':
  main()
