"""Learner steps/s: ABM+MPO, BM+MPO and MPO (or any of our learners, --agents)
against Acme's TF MPOLearner.

All at the ABM paper's shapes (batch 512, M = 20 action samples, policy and
prior 256-256, critic 256-256-256, observation 17, action 6: cheetah-run), on
the CPU, fed the same in-memory batches (2-row snippets = 512 transitions),
with the same TF settings in one process. Prints steps/s and the ratios to
Acme's MPO. Targets (issue 3): our MPO >= 1.0x Acme, ABM+MPO >= 0.6x.

`--snippet-length N` feeds our learners N-row snippets instead, as many as
make the same 512 transitions a step (ceil(512 / (N - 1)) snippets; Acme's
learner still gets 512 transitions): V̂ is then shared along each snippet
(ABM's weights need it at s_t, the TD target at s_{t+1}).

Every learner at its own defaults otherwise (BCQ: 10 target samples, the
VAE 256-256, latent 64; BEAR: 20 samples; bear_mmd: 2 critics).

Usage: python benchmarks/learner.py [--steps 60] [--repeats 2] [--no-xla]
                                    [--snippet-length 2] [--agents mpo,bcq]
"""

import argparse
import copy
import os

import timing

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

OBS, ACT, BATCH, SAMPLES = 17, 6, 512, 20


def snippets_per_batch(rows):
  """N-row snippets making (at least) BATCH transitions."""
  return -(-BATCH // (rows - 1))


def make_batches(n, rows=2):
  import numpy as np
  import tensorflow as tf
  rng = np.random.default_rng(0)
  size = snippets_per_batch(rows)
  batches = []
  for _ in range(n):
    batches.append({
        'observation': rng.normal(size=(size, rows, OBS)).astype(np.float32),
        'action': rng.uniform(-1, 1, size=(size, rows, ACT)).astype(
            np.float32),
        'reward': rng.uniform(0, 1, size=(size, rows)).astype(np.float32),
        'discount': np.ones((size, rows), np.float32)})
  stacked = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
  return tf.data.Dataset.from_tensor_slices(stacked).repeat().prefetch(4)


def acme_mpo_learner(dataset):
  """Acme 0.4's TF MPOLearner with the paper's networks and M = 20."""
  import reverb
  from acme import types
  from acme.agents.tf import mpo
  from acme.tf import networks as acme_networks
  from acme.tf import utils as tf2_utils
  from acme.utils import loggers
  from abmrl.agents import networks
  import sonnet as snt
  import tensorflow as tf

  def to_transitions(batch):
    data = types.Transition(
        observation=batch['observation'][:, 0], action=batch['action'][:, 0],
        reward=batch['reward'][:, 0], discount=batch['discount'][:, 0],
        next_observation=batch['observation'][:, 1])
    return reverb.ReplaySample(info=(), data=data)

  policy = networks.make_gaussian_policy(ACT)
  # Acme's learner squeezes the critic's [B, 1] output itself.
  critic = acme_networks.CriticMultiplexer(critic_network=snt.Sequential([
      acme_networks.LayerNormMLP([256, 256, 256], activate_final=True),
      acme_networks.NearZeroInitializedLinear(1)]))
  target_policy, target_critic = copy.deepcopy(policy), copy.deepcopy(critic)
  for network in (policy, target_policy):
    tf2_utils.create_variables(network, [tf.TensorSpec([OBS], tf.float32)])
  for network in (critic, target_critic):
    tf2_utils.create_variables(network, [tf.TensorSpec([OBS], tf.float32),
                                         tf.TensorSpec([ACT], tf.float32)])
  return mpo.MPOLearner(
      policy_network=policy, critic_network=critic,
      target_policy_network=target_policy, target_critic_network=target_critic,
      discount=0.99, num_samples=SAMPLES, target_policy_update_period=200,
      target_critic_update_period=200, dataset=dataset.map(to_transitions),
      logger=loggers.NoOpLogger(), checkpoint=False)


def our_learner(variant, dataset, jit_compile):
  from acme.utils import loggers
  from abmrl.agents import builders
  from abmrl.agents import registry
  builder = registry.get(variant)
  return builder.make_learner(
      # The paper's settings where the variant has them (its defaults are a
      # CPU-budget set with batch 64, agents/abm/config.py).
      builder.make_config(**builder.presets.get('paper', {}).get('agent', {}),
                          jit_compile=jit_compile),
      builders.NetworkSpec(OBS, ACT), iter(dataset), None,
      loggers.NoOpLogger(), None, None)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--steps', type=int, default=60)
  parser.add_argument('--repeats', type=int, default=2)
  parser.add_argument('--no-xla', action='store_true',
                      help='compile our step without XLA')
  parser.add_argument('--agents', default='mpo,bm_mpo,abm_mpo',
                      help='our learners to time beside Acme MPO, comma '
                           'separated (any of `abmrl train --agent`)')
  parser.add_argument('--snippet-length', type=int, default=2,
                      help='rows per snippet fed to our learners (>= 2), '
                           'as many snippets as make 512 transitions')
  args = parser.parse_args()
  if args.snippet_length < 2:
    parser.error('--snippet-length must be at least 2')
  import tensorflow as tf
  print(f'[bench] TF {tf.__version__}, {os.cpu_count()} cores, '
        f'TF_ENABLE_ONEDNN_OPTS={os.environ.get("TF_ENABLE_ONEDNN_OPTS", "0")}'
        f', our XLA {"off" if args.no_xla else "on"}; batch {BATCH}, '
        f'M={SAMPLES}, obs {OBS}, act {ACT}', flush=True)
  rows = args.snippet_length
  print(f'[bench] ours: {snippets_per_batch(rows)} snippets of {rows} rows '
        f'= {snippets_per_batch(rows) * (rows - 1)} transitions a step; '
        f'Acme: {BATCH} transitions', flush=True)
  dataset = make_batches(20)
  ours = dataset if rows == 2 else make_batches(20, rows)
  learners = {'acme_mpo': acme_mpo_learner(dataset)}
  for variant in args.agents.split(','):
    learners[variant] = our_learner(variant, ours, not args.no_xla)
  rates = {name: [] for name in learners}
  for _ in range(args.repeats):
    for name, learner in learners.items():
      # 3 untimed steps trace and warm up.
      rates[name].append(timing.calls_per_second(learner.step, args.steps,
                                                 warmup=3))
      print(f'[bench] {name}: {rates[name][-1]:.2f} steps/s', flush=True)
  mean = {k: sum(v) / len(v) for k, v in rates.items()}
  print('\n| learner | steps/s | vs Acme MPO |\n|---|---|---|')
  for name in learners:
    print(f'| {name} | {mean[name]:.2f} | {mean[name] / mean["acme_mpo"]:.2f}x |')


if __name__ == '__main__':
  main()
