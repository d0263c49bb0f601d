"""Learner steps/s: ours (TF, XLA) against d3rlpy's (PyTorch, CPU), for
AWAC, BCQ and BEAR.

Same synthetic transitions (observation 17, action 6: cheetah-run's
shapes), same batch size, same network sizes and sample counts on both
sides (below), pre-sampled in-memory batches (no sampling in the timed
loop), the machine's cores. d3rlpy runs in its own virtual environment
(Python 3.11, CPU PyTorch), made on first use:

  python3.11 -m venv .venv-d3rlpy && .venv-d3rlpy/bin/pip install torch==2.13.0 d3rlpy

  awac   actor 256-256, two critics 256-256-256 (the sizes d3rlpy was
         measured at in DESIGN.md), one value sample, λ = 1.
  bcq    VAE 256-256 (d3rlpy: one imitator encoder factory for both
         halves), latent 64 (d3rlpy fixes it at 2 × the action size: 12),
         perturbation 256-256 of Φ = 0.25, two critics
         256-256-256, λ = 0.75, 10 decoded samples in the target (d3rlpy's
         n_action_samples, which it also uses there; its default is 100).
  bear   ours is `bear_mmd` (the MMD BEAR d3rlpy implements): policy 256-256,
         two critics 256-256-256, 10 target samples, 4 MMD samples, Laplacian
         σ = 20, no warm-up (both time the full update), and one policy
         sample for the actor's E[min_k Q_k] (d3rlpy's SAC actor loss; ours
         defaults to the official code's 5, `policy_samples`). Differences that
         stay: d3rlpy's behaviour model is a VAE (ours the project's
         Gaussian BM prior) and its policy has SAC's entropy temperature.

Prints steps/s and the ratio ours/d3rlpy per algorithm (issue 6's target
for AWAC: ≥ 1.0).

Usage: python benchmarks/d3rlpy_learners.py [--algos awac,bcq,bear]
                                            [--steps 100] [--batch 512]
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
actor, critic = [[int(x) for x in a.split(',')] for a in (actor, critic)]
vector = d3rlpy.models.VectorEncoderFactory
algo = sys.argv[8]
if algo == 'awac':
  learner = d3rlpy.algos.AWACConfig(
      batch_size=batch, lam=1.0, n_action_samples=1,
      actor_encoder_factory=vector(actor),
      critic_encoder_factory=vector(critic))
elif algo == 'bcq':
  learner = d3rlpy.algos.BCQConfig(
      batch_size=batch, actor_encoder_factory=vector(actor),
      critic_encoder_factory=vector(critic),
      imitator_encoder_factory=vector(actor),
      action_flexibility=0.25, n_critics=2, lam=0.75, n_action_samples=10)
else:
  learner = d3rlpy.algos.BEARConfig(
      batch_size=batch, actor_encoder_factory=vector(actor),
      critic_encoder_factory=vector(critic),
      imitator_encoder_factory=vector(actor), n_critics=2,
      n_target_samples=10, n_mmd_action_samples=4, mmd_kernel='laplacian',
      mmd_sigma=20.0, warmup_steps=0)
learner = learner.create(device='cpu:0')
learner.build_with_dataset(dataset)
buffer = d3rlpy.dataset.create_fifo_replay_buffer(
    limit=len(data['reward']), episodes=dataset.episodes)
batches = [buffer.sample_transition_batch(batch) for _ in range(16)]
for i in range(warmup):
  learner.update(batches[i % 16])
start = time.time()
for i in range(steps):
  learner.update(batches[i % 16])
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


# Our agent and its overrides for each algorithm (the module docstring).
OURS = {
    'awac': ('awac', dict(policy_layer_sizes=ACTOR, critic_layer_sizes=CRITIC,
                          temperature=1.0, value_samples=1)),
    'bcq': ('bcq', dict(encoder_layer_sizes=ACTOR, decoder_layer_sizes=ACTOR,
                        perturbation_layer_sizes=ACTOR, latent_size=64,
                        perturbation_scale=0.25, critic_layer_sizes=CRITIC,
                        mixing=0.75, target_samples=10)),
    'bear': ('bear_mmd', dict(policy_layer_sizes=ACTOR, prior_layer_sizes=ACTOR,
                              critic_layer_sizes=CRITIC, num_critics=2,
                              num_action_samples=10, mmd_samples=4,
                              policy_samples=1,
                              mmd_kernel='laplacian', mmd_sigma=20.0,
                              warmup_steps=0)),
}


def ours(algo, arrays, batch, steps, warmup):
  """Our learner on 2-row snippets cut from the same transitions."""
  import numpy as np
  import tensorflow as tf
  from acme.utils import loggers
  from abmrl.agents import builders
  from abmrl.agents import registry
  rng = np.random.default_rng(1)
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

  def forever():
    i = 0
    while True:
      yield batches[i % 16]
      i += 1

  agent, overrides = OURS[algo]
  builder = registry.get(agent)
  learner = builder.make_learner(
      builder.make_config(batch_size=batch, **overrides),
      builders.NetworkSpec(OBS, ACT), forever(), None, loggers.NoOpLogger(),
      None, None)
  return timing.calls_per_second(learner.step, steps, warmup)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--algos', default='awac,bcq,bear',
                      help='comma separated, of awac, bcq, bear')
  parser.add_argument('--steps', type=int, default=100)
  parser.add_argument('--warmup', type=int, default=10)
  parser.add_argument('--batch', type=int, default=512)
  parser.add_argument('--repeats', type=int, default=2)
  args = parser.parse_args()
  if not os.path.exists(D3RLPY_PYTHON):
    sys.exit('abmrl: error: d3rlpy venv missing; make it with: python3.11 -m '
             'venv .venv-d3rlpy && .venv-d3rlpy/bin/pip install torch==2.13.0 '
             'd3rlpy')
  algos = args.algos.split(',')
  unknown = sorted(set(algos) - set(OURS))
  if unknown:
    parser.error(f'unknown --algos {unknown}; choose from {sorted(OURS)}')
  threads = os.cpu_count()
  print(f'Learner steps/s, batch {args.batch}, networks {ACTOR} / critics '
        f'{CRITIC}, observation {OBS}, action {ACT}, {threads} CPU threads '
        f'(best of {args.repeats} runs of {args.steps} steps)', flush=True)
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'transitions.npz')
    arrays = synthetic_transitions(path)
    for algo in algos:
      ours_rates, theirs_rates, versions = [], [], {}
      for _ in range(args.repeats):
        ours_rates.append(ours(algo, arrays, args.batch, args.steps,
                               args.warmup))
        done = subprocess.run(
            [D3RLPY_PYTHON, '-c', D3RLPY_SIDE, path, str(args.batch),
             str(args.steps), str(args.warmup), ','.join(map(str, ACTOR)),
             ','.join(map(str, CRITIC)), str(threads), algo],
            capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        theirs_rates.append(result['steps_per_second'])
        versions = {k: v for k, v in result.items()
                    if k != 'steps_per_second'}
      best_ours, best_theirs = max(ours_rates), max(theirs_rates)
      print(f'  {algo}: abmrl {OURS[algo][0]} (TF 2.8, XLA) {best_ours:.1f} '
            '(runs ' + ', '.join(f'{r:.1f}' for r in ours_rates)
            + f'); d3rlpy {versions.get("d3rlpy")} (torch '
            f'{versions.get("torch")}) {best_theirs:.1f} (runs '
            + ', '.join(f'{r:.1f}' for r in theirs_rates) + ')', flush=True)
      rows.append((algo, best_ours, best_theirs))
  print('\n| algorithm | abmrl steps/s | d3rlpy steps/s | abmrl / d3rlpy |\n'
        '|---|---|---|---|')
  for algo, best_ours, best_theirs in rows:
    print(f'| {algo} | {best_ours:.1f} | {best_theirs:.1f} | '
          f'{best_ours / best_theirs:.2f}x |')


if __name__ == '__main__':
  main()
