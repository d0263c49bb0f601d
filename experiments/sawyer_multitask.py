"""Multi-task offline learning on the Sawyer cell, with per-task returns.

Each agent trains on `sawyer:multitask` from one dataset of Sawyer episodes:
restorers insert every transition once per task (nine tasks, rewards
recomputed from the observations), the networks are task-conditioned with
Table 5's sizes (policy and prior 200 → 300 per task, Q 400 → 400 per task),
and the evaluators run every task. Then, for the tasks given with
--single-tasks (default bring_to_corner, never executed in the data), the
same agents learn that task alone from the relabelled data.

Writes <name>_table.md (per task: the data's mean and best return after
relabelling, the return of holding still — some tasks pay for cubes that
start near their targets — and each agent's final policy and prior returns)
and <name>.png (the same as bars).

Usage:
  python experiments/sawyer_multitask.py --dataset data/sawyer_multitask \
      [--agents abm_mpo,bm_mpo] [--steps 3000] [--normalise-observations] \
      [--plot-only]
"""

import argparse
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('GLOG_minloglevel', '1')
os.environ.setdefault('MUJOCO_GL', 'egl')

TABLE_5 = ['policy_layer_sizes=200,300', 'prior_layer_sizes=200,300',
           'critic_layer_sizes=400,400']


def data_task_returns(dataset: str):
  """task -> every episode's return for that task (relabelled)."""
  import numpy as np
  from abmrl.datasets import episodes
  from abmrl.environments.sawyer import multitask
  returns = {task: [] for task in multitask.TASK_SET}
  for path in episodes.list_episodes(dataset):
    observation = episodes.read_episode(path).observation
    for task, reward in multitask.task_rewards(observation[1:]).items():
      returns[task].append(float(np.sum(reward)))
  return returns


def zero_action_returns(episodes: int):
  """task -> mean return of holding still (the zero action), on the
  evaluators' fixed-task cells: what a task pays for doing nothing."""
  import numpy as np
  from abmrl.environments.sawyer import multitask
  out = {}
  for task in multitask.TASK_SET:
    env = multitask.MultiTaskSawyer(task=task, seed=1000)
    total = 0.
    for _ in range(episodes):
      timestep = env.reset()
      while not timestep.last():
        timestep = env.step(np.zeros(5, np.float32))
        total += timestep.reward
    out[task] = total / episodes
  return out


def final_row(run_dir: str, label: str):
  from abmrl.launch import run as run_lib
  path = os.path.join(run_dir, 'logs', f'evaluator_{label}_0', 'logs.csv')
  if not os.path.exists(path):
    return {}
  return run_lib.read_csv(path)[-1]


def train(agent, env_id, dataset, run_dir, args, layer_sets):
  from abmrl.agents import registry
  from abmrl.launch import config as config_lib
  from abmrl.launch import flags
  from abmrl.launch import run as run_lib
  config_class = registry.get(agent).config_class
  overrides = flags.parse_overrides(config_class, flags.overrides_it_has(
      config_class, layer_sets + args.set))
  config = config_lib.TrainConfig.for_agent(
      agent, {'data': dict(dataset_dir=os.path.abspath(dataset), restorers=1,
                           relabel=True,
                           normalise_observations=args.normalise_observations),
              'evaluation': dict(evaluators=1, episodes=args.eval_episodes,
                                 every_learner_steps=max(1, args.steps // 3)),
              'replay': dict(replay_size=300_000, min_replay_size=5_000,
                             samples_per_insert=8.0)},
      overrides, env_id=env_id, run_dir=os.path.abspath(run_dir),
      steps=args.steps)
  print(f'== {agent} on {env_id}', flush=True)
  start = time.time()
  result = run_lib.train(config)
  print(run_lib.format_summary(result), f'({time.time() - start:.0f} s)',
        flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--dataset', default='data/sawyer_multitask')
  parser.add_argument('--agents', default='abm_mpo,bm_mpo')
  parser.add_argument('--single-tasks', default='bring_to_corner')
  parser.add_argument('--steps', type=int, default=3000)
  parser.add_argument('--eval-episodes', type=int, default=2,
                      help='evaluation episodes per task')
  parser.add_argument('--runs', default='runs/sawyer_multitask')
  parser.add_argument('--out', default='docs/results')
  parser.add_argument('--name', default='sawyer_multitask')
  parser.add_argument('--set', action='append', default=[],
                      metavar='KEY=VALUE')
  parser.add_argument('--plot-only', action='store_true')
  parser.add_argument('--normalise-observations', action='store_true',
                      help='as abmrl train --normalise-observations')
  args = parser.parse_args()

  import numpy as np
  from abmrl.environments.sawyer import multitask
  agents = args.agents.split(',')
  single_tasks = [t for t in args.single_tasks.split(',') if t]
  for task in single_tasks:
    if task not in multitask.TASK_SET:
      sys.exit(f'abmrl: error: --single-tasks: unknown task {task!r}')
  if not args.plot_only:
    for agent in agents:
      train(agent, 'sawyer:multitask', args.dataset,
            os.path.join(args.runs, agent), args, TABLE_5)
      for task in single_tasks:
        train(agent, f'sawyer:{task}', args.dataset,
              os.path.join(args.runs, f'{agent}-{task}'), args, [])

  data = data_task_returns(args.dataset)
  still = zero_action_returns(args.eval_episodes)
  columns = ['data mean', 'data best', 'zero action']
  values = {task: [np.mean(data[task]), np.max(data[task]), still[task]]
            for task in multitask.TASK_SET}
  for agent in agents:
    for label in ('policy', 'prior'):
      row = final_row(os.path.join(args.runs, agent), label)
      if not row:
        continue
      columns.append(f'{agent} {label}')
      for task in multitask.TASK_SET:
        values[task].append(row.get(f'return_{task}', float('nan')))
    for task in single_tasks:
      row = final_row(os.path.join(args.runs, f'{agent}-{task}'), 'policy')
      prior = final_row(os.path.join(args.runs, f'{agent}-{task}'), 'prior')
      for label, found in (('policy', row), ('prior', prior)):
        if found:
          column = f'{agent} {label}, {task} alone'
          columns.append(column)
          for t in multitask.TASK_SET:
            values[t].append(found['evaluation_return'] if t == task
                             else float('nan'))

  def cell(x):
    return '' if np.isnan(x) else f'{x:.1f}'

  lines = ['| task | ' + ' | '.join(columns) + ' |',
           '|---|' + '---|' * len(columns)]
  for task in multitask.TASK_SET:
    marker = ' (never executed)' if task not in multitask.EXECUTED else ''
    lines.append(f'| {task}{marker} | '
                 + ' | '.join(cell(v) for v in values[task]) + ' |')
  table = '\n'.join(lines)
  print(table)

  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(11, 4.5))
  tasks = list(multitask.TASK_SET)
  width = 0.8 / len(columns)
  for i, column in enumerate(columns):
    heights = [values[t][i] for t in tasks]
    ax.bar(np.arange(len(tasks)) + (i - len(columns) / 2 + 0.5) * width,
           np.nan_to_num(heights), width, label=column)
  ax.set_xticks(np.arange(len(tasks)))
  ax.set_xticklabels(tasks, rotation=20, fontsize=8)
  ax.set_ylabel('return (200 steps)')
  ax.set_title(f'sawyer:multitask, offline from {args.dataset} '
               f'({sum(1 for _ in data[tasks[0]])} episodes), '
               f'{args.steps} learner steps; final evaluations, '
               f'{args.eval_episodes} episodes per task', fontsize=9)
  ax.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.01, 0.5))
  fig.tight_layout()
  os.makedirs(args.out, exist_ok=True)
  png = os.path.join(args.out, f'{args.name}.png')
  fig.savefig(png, dpi=120)
  with open(os.path.join(args.out, f'{args.name}_table.md'), 'w') as f:
    f.write(table + '\n')
  print(f'wrote {png}')


if __name__ == '__main__':
  main()
