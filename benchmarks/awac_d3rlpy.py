"""AWAC learner steps/s: ours (TF, XLA) against d3rlpy's AWAC (PyTorch, CPU).

Same synthetic transitions (observation 17, action 6: cheetah-run's
shapes), same batch size, same network sizes (actor 256-256, two critics
256-256-256: the sizes d3rlpy was measured at in DESIGN.md), one value
sample, λ = 1. d3rlpy runs in its own virtual environment (Python 3.11, CPU
PyTorch), made on first use:

  python3.11 -m venv .venv-d3rlpy && .venv-d3rlpy/bin/pip install torch==2.13.0 d3rlpy

Both sides train on pre-sampled in-memory batches (no sampling in the timed
loop) with the machine's cores. Prints steps/s and the ratio ours/d3rlpy
(issue 6 target: ≥ 1.0).

Usage: python benchmarks/awac_d3rlpy.py [--steps 100] [--batch 512]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import timing

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

OBS, ACT = 17, 6
ACTOR, CRITIC = (256, 256), (256, 256, 256)
D3RLPY_PYTHON = os.path.join(ROOT, '.venv-d3rlpy', 'bin', 'python')

# Runs inside the d3rlpy venv: reads the same arrays, times `update`.
D3RLPY_SIDE = r'''
import json, sys, time
import numpy as np, torch, d3rlpy
path, batch, steps, warmup, actor, critic = sys.argv[1:7]
batch, steps, warmup = int(batch), int(steps), int(warmup)
data = np.load(path)
torch.set_num_threads(int(sys.argv[7]))
dataset = d3rlpy.dataset.MDPDataset(
    observations=data['observation'], actions=data['action'],
    rewards=data['reward'], terminals=data['terminal'],
    timeouts=data['timeout'])
awac = d3rlpy.algos.AWACConfig(
    batch_size=batch, lam=1.0, n_action_samples=1,
    actor_encoder_factory=d3rlpy.models.VectorEncoderFactory(
        [int(x) for x in actor.split(',')]),
    critic_encoder_factory=d3rlpy.models.VectorEncoderFactory(
        [int(x) for x in critic.split(',')]),
).create(device='cpu:0')
awac.build_with_dataset(dataset)
buffer = d3rlpy.dataset.create_fifo_replay_buffer(
    limit=len(data['reward']), episodes=dataset.episodes)
batches = [buffer.sample_transition_batch(batch) for _ in range(16)]
for i in range(warmup):
  awac.update(batches[i % 16])
start = time.time()
for i in range(steps):
  awac.update(batches[i % 16])
print(json.dumps({'steps_per_second': steps / (time.time() - start),
                  'd3rlpy': d3rlpy.__version__, 'torch': torch.__version__}))
'''


def synthetic_transitions(path, n=50_000, episode_length=1000):
  import numpy as np
  rng = np.random.default_rng(0)
  terminal = np.zeros(n, np.float32)
  timeout = np.zeros(n, np.float32)
  timeout[episode_length - 1::episode_length] = 1.
  arrays = dict(observation=rng.normal(size=(n, OBS)).astype(np.float32),
                action=rng.uniform(-1, 1, (n, ACT)).astype(np.float32),
                reward=rng.uniform(0, 1, n).astype(np.float32),
                terminal=terminal, timeout=timeout)
  np.savez(path, **arrays)
  return arrays


def ours(arrays, batch, steps, warmup):
  """Our AWACLearner on 2-row snippets cut from the same transitions."""
  import numpy as np
  import tensorflow as tf
  from acme.utils import loggers
  from abmrl.agents import networks
  from abmrl.agents.awac.config import AWACConfig
  from abmrl.agents.awac.learning import AWACLearner
  rng = np.random.default_rng(1)
  n = len(arrays['reward'])
  # Transition t -> t+1 within an episode (not across a timeout).
  valid = np.flatnonzero(arrays['timeout'][:-1] == 0)
  batches = []
  for _ in range(16):
    index = rng.choice(valid, batch)
    rows = np.stack([index, index + 1], axis=1)  # [B, 2]
    batches.append({
        'observation': tf.constant(arrays['observation'][rows]),
        'action': tf.constant(arrays['action'][rows]),
        'reward': tf.constant(arrays['reward'][rows]),
        'discount': tf.constant(1. - arrays['terminal'][rows])})
  del n

  def forever():
    i = 0
    while True:
      yield batches[i % 16]
      i += 1

  config = AWACConfig(batch_size=batch, policy_layer_sizes=ACTOR,
                      critic_layer_sizes=CRITIC, temperature=1.0,
                      value_samples=1)
  learner = AWACLearner(
      networks.make_gaussian_policy(ACT, ACTOR),
      [networks.make_critic(CRITIC) for _ in range(2)], forever(),
      observation_size=OBS, action_size=ACT, config=config,
      logger=loggers.NoOpLogger())
  return timing.calls_per_second(learner.step, steps, warmup)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--steps', type=int, default=100)
  parser.add_argument('--warmup', type=int, default=10)
  parser.add_argument('--batch', type=int, default=512)
  parser.add_argument('--repeats', type=int, default=2)
  args = parser.parse_args()
  if not os.path.exists(D3RLPY_PYTHON):
    sys.exit('abmrl: error: d3rlpy venv missing; make it with: python3.11 -m '
             'venv .venv-d3rlpy && .venv-d3rlpy/bin/pip install torch==2.13.0 '
             'd3rlpy')
  threads = os.cpu_count()
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'transitions.npz')
    arrays = synthetic_transitions(path)
    ours_rates, theirs_rates, versions = [], [], {}
    for _ in range(args.repeats):
      ours_rates.append(ours(arrays, args.batch, args.steps, args.warmup))
      done = subprocess.run(
          [D3RLPY_PYTHON, '-c', D3RLPY_SIDE, path, str(args.batch),
           str(args.steps), str(args.warmup), ','.join(map(str, ACTOR)),
           ','.join(map(str, CRITIC)), str(threads)],
          capture_output=True, text=True, check=True)
      result = json.loads(done.stdout.strip().splitlines()[-1])
      theirs_rates.append(result['steps_per_second'])
      versions = {k: v for k, v in result.items() if k != 'steps_per_second'}
  best_ours, best_theirs = max(ours_rates), max(theirs_rates)
  print(f'AWAC learner steps/s, batch {args.batch}, actor {ACTOR}, critics '
        f'2x{CRITIC}, observation {OBS}, action {ACT}, {threads} CPU threads '
        f'(best of {args.repeats} runs of {args.steps} steps)')
  print(f'  abmrl (TF 2.8, XLA)          {best_ours:7.1f}   runs: '
        + ', '.join(f'{r:.1f}' for r in ours_rates))
  print(f'  d3rlpy {versions.get("d3rlpy")} (torch '
        f'{versions.get("torch")}) {best_theirs:7.1f}   runs: '
        + ', '.join(f'{r:.1f}' for r in theirs_rates))
  print(f'  ratio abmrl / d3rlpy: {best_ours / best_theirs:.2f}x (target >= 1.0)')


if __name__ == '__main__':
  main()
