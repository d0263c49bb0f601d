"""d3rlpy's BCQ and BEAR offline on one of our datasets, evaluated in the
same environment, beside our runs of the same data.

The dataset is exported with `abmrl dataset export --format npz` (D4RL's
flat arrays) and loaded into d3rlpy's MDPDataset in its own venv (made as
benchmarks/d3rlpy_learners.py says, plus `.venv-d3rlpy/bin/pip install
dm_control==1.0.50 mujoco==3.17.0`, our versions), where dm_control's same
task evaluates it:
the same number of episodes per evaluation, every `--eval-every` learner
steps, observations flattened as our environments do (Acme's
ConcatObservationWrapper: fields in sorted order). d3rlpy's learners get
our settings where both have them (batch 512, Adam 2e-4, networks 256-256 /
critics 256-256-256, BCQ's Φ = 0.25, λ = 0.75); what stays
d3rlpy's own is printed with the table (`DIFFERENCES`).

With --ours RUNS_DIR (benchmarks/abm_results.py's --runs), our agents'
evaluations of the same data are read from their run directories and drawn
on the same axes.

Usage:
  python benchmarks/d3rlpy_offline.py --dataset data/results-point_mass \
      --env control:point_mass-easy --steps 6000 --seeds 0,1 \
      --ours runs/bcq_bear --name bcq_bear_point_mass
"""

import argparse
import csv
import glob
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
D3RLPY_PYTHON = os.path.join(ROOT, '.venv-d3rlpy', 'bin', 'python')

DIFFERENCES = [
    "BCQ: d3rlpy's VAE latent is 2 x the action size (fixed in d3rlpy 2.8); "
    'ours is 64 (the paper).',
    "BCQ: d3rlpy's n_action_samples is used both for acting and in the "
    'target; set to 10 (our target samples), so d3rlpy acts with the best '
    'of 10 perturbed samples where ours takes 100.',
    "BCQ, BEAR: d3rlpy updates its targets by Polyak averaging (tau 0.005) "
    'every step; ours copies them every 200 steps (the paper).',
    "BEAR: d3rlpy's is the original (MMD to a VAE behaviour model, 2 "
    'critics, SAC entropy); ours (`bear`) is the ABM paper\'s: KL to a '
    'Gaussian BM prior, 1 critic. d3rlpy\'s warm-up is cut from 40,000 to '
    '1,000 steps so it leaves warm-up in a short run.',
    'd3rlpy loses the last next state of each timeout episode (it keeps '
    'no next_observations); ours keeps every transition.',
]

# Runs in the d3rlpy venv: trains one algorithm on the exported arrays,
# evaluates in dm_control, prints one JSON line per evaluation.
D3RLPY_SIDE = r'''
import json, sys
import numpy as np, d3rlpy
from dm_control import suite
path, algo, seed, steps, every, episodes, domain, task = sys.argv[1:9]
seed, steps, every, episodes = int(seed), int(steps), int(every), int(episodes)
data = np.load(path)
d3rlpy.seed(seed)
dataset = d3rlpy.dataset.MDPDataset(
    observations=data['observations'], actions=data['actions'],
    rewards=data['rewards'], terminals=data['terminals'],
    timeouts=data['timeouts'])
vector = d3rlpy.models.VectorEncoderFactory
adam = 2e-4
if algo == 'bcq':
  config = d3rlpy.algos.BCQConfig(
      batch_size=512, actor_learning_rate=adam, critic_learning_rate=adam,
      imitator_learning_rate=adam, actor_encoder_factory=vector([256, 256]),
      critic_encoder_factory=vector([256, 256, 256]),
      imitator_encoder_factory=vector([256, 256]),
      action_flexibility=0.25, n_critics=2, lam=0.75, n_action_samples=10)
else:
  config = d3rlpy.algos.BEARConfig(
      batch_size=512, actor_learning_rate=adam, critic_learning_rate=adam,
      imitator_learning_rate=adam, actor_encoder_factory=vector([256, 256]),
      critic_encoder_factory=vector([256, 256, 256]),
      imitator_encoder_factory=vector([256, 256]), warmup_steps=1000)
learner = config.create(device='cpu:0')
env = suite.load(domain, task, task_kwargs={'random': seed + 1000})

def flat(observation):
  return np.concatenate([np.atleast_1d(observation[k]).ravel()
                         for k in sorted(observation)]).astype(np.float32)

def evaluate():
  returns = []
  for _ in range(episodes):
    timestep, total = env.reset(), 0.0
    while not timestep.last():
      action = learner.predict(flat(timestep.observation)[None])[0]
      timestep = env.step(action)
      total += timestep.reward or 0.0
    returns.append(total)
  return float(np.mean(returns))

for epoch, _ in learner.fitter(dataset, n_steps=steps, n_steps_per_epoch=every,
                               show_progress=False, save_interval=10**9,
                               experiment_name=f'{algo}_{seed}',
                               with_timestamp=False, logger_adapter=
                               d3rlpy.logging.NoopAdapterFactory()):
  print(json.dumps({'step': epoch * every, 'return': evaluate()}), flush=True)
'''


def ours_curves(runs_dir):
  """{agent: {seed: (steps, returns)}} of the RL policy's evaluations."""
  from abmrl.launch import run as run_lib
  found = {}
  for path in sorted(glob.glob(os.path.join(
      runs_dir, '*', 'seed*', 'logs', 'evaluator_policy_0', 'logs.csv'))):
    seed_dir = os.path.dirname(os.path.dirname(os.path.dirname(path)))
    agent = os.path.basename(os.path.dirname(seed_dir))
    rows = run_lib.read_csv(path)
    found.setdefault(agent, {})[os.path.basename(seed_dir)] = (
        [r['learner_steps'] for r in rows],
        [r['evaluation_return'] for r in rows])
  return found


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--dataset', required=True)
  parser.add_argument('--env', required=True,
                      help='control:<domain>-<task> (evaluated in dm_control)')
  parser.add_argument('--algos', default='bcq,bear')
  parser.add_argument('--steps', type=int, default=6000)
  parser.add_argument('--eval-every', type=int, default=600)
  parser.add_argument('--eval-episodes', type=int, default=10)
  parser.add_argument('--seeds', default='0,1')
  parser.add_argument('--ours', help='our runs of the same data (the --runs '
                      'of benchmarks/abm_results.py)')
  parser.add_argument('--name', default='d3rlpy_offline')
  parser.add_argument('--out', default='docs/results')
  args = parser.parse_args()
  if not os.path.exists(D3RLPY_PYTHON):
    parser.error('d3rlpy venv missing; make it with: python3.11 -m venv '
                 '.venv-d3rlpy && .venv-d3rlpy/bin/pip install torch==2.13.0 '
                 'd3rlpy dm_control==1.0.50 mujoco==3.17.0')
  if not args.env.startswith('control:'):
    parser.error('--env: a control:<domain>-<task> id (dm_control evaluates '
                 'd3rlpy in its venv)')
  domain, task = args.env[len('control:'):].split('-', 1)
  curves = {}  # algo -> seed -> (steps, returns)
  with tempfile.TemporaryDirectory() as tmp:
    arrays = os.path.join(tmp, 'data.npz')
    subprocess.run([sys.executable, '-m', 'abmrl.launch.cli', 'dataset',
                    'export', args.dataset, '--format', 'npz', '--out',
                    arrays], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    for algo in args.algos.split(','):
      for seed in args.seeds.split(','):
        print(f'== d3rlpy {algo} seed {seed}', flush=True)
        steps, returns = [], []
        process = subprocess.Popen(
            [D3RLPY_PYTHON, '-c', D3RLPY_SIDE, arrays, algo, seed,
             str(args.steps), str(args.eval_every), str(args.eval_episodes),
             domain, task], cwd=tmp, stdout=subprocess.PIPE, text=True)
        for line in process.stdout:
          if line.startswith('{'):
            point = json.loads(line)
            steps.append(point['step'])
            returns.append(point['return'])
            print(f'   step {point["step"]}: return {point["return"]:.1f}',
                  flush=True)
        if process.wait() != 0:
          sys.exit(f'd3rlpy {algo} seed {seed} failed')
        curves.setdefault(f'd3rlpy_{algo}', {})[f'seed{seed}'] = (steps,
                                                                  returns)
  if args.ours:
    for agent, seeds in ours_curves(args.ours).items():
      curves[f'abmrl_{agent}'] = seeds
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, f'{args.name}_d3rlpy.csv'), 'w',
            newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['learner', 'seed', 'learner_steps', 'return'])
    for learner, seeds in curves.items():
      for seed, (steps, returns) in seeds.items():
        writer.writerows([learner, seed, s, r] for s, r in zip(steps,
                                                                returns))
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  import numpy as np
  fig, ax = plt.subplots(figsize=(9, 4.5))
  grid = np.linspace(0, args.steps, 61)
  lines = ['| learner | seeds | final return (mean ± std) |', '|---|---|---|']
  for learner, seeds in sorted(curves.items()):
    on_grid = np.array([np.interp(grid, s, r) for s, r in seeds.values()])
    style = '--' if learner.startswith('d3rlpy') else '-'
    ax.plot(grid, on_grid.mean(0), style, label=learner)
    ax.fill_between(grid, on_grid.min(0), on_grid.max(0), alpha=0.15)
    finals = [r[-1] for _, r in seeds.values()]
    lines.append(f'| {learner} | {len(finals)} | {np.mean(finals):.1f} ± '
                 f'{np.std(finals):.1f} |')
  ax.set_xlabel('learner step')
  ax.set_ylabel(f'mean return of {args.eval_episodes} episodes')
  ax.set_title(f'{args.env}: abmrl (solid) and d3rlpy 2.8.1 (dashed)')
  ax.legend(fontsize=8)
  fig.tight_layout()
  png = os.path.join(args.out, f'{args.name}_d3rlpy.png')
  fig.savefig(png, dpi=100)
  table = '\n'.join(lines)
  print(table)
  print('\nWhere d3rlpy\'s runs differ from ours:\n' + '\n'.join(
      f'- {d}' for d in DIFFERENCES))
  with open(os.path.join(args.out, f'{args.name}_d3rlpy_table.md'), 'w') as f:
    f.write(table + '\n')
  print(f'wrote {png}')


if __name__ == '__main__':
  main()
