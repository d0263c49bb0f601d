"""MABE's three rates, each as a ratio to a reference measured in the same run:

1. model training steps/s (MOPO's ensemble: 7 members of 4×200 swish, batch
   256), as a share of the machine's matmul rate: the FLOPs a step needs
   (forward 2·E·B·Σ in·out, backward twice that) over the FLOP/s of one
   float32 matmul of the same work, batched as the ensemble's first hidden
   layer;
2. rollout transitions/s of one rollout node (1 TF thread, as a node gets),
   writing to a real Reverb table, against the same rollout steps with no
   writes (the model and policy alone);
3. the RL learner's steps/s on batches joined from two Reverb tables (5%
   real, 95% model, the learner's own path) against the same learner on one
   in-memory table of the same batches.

At cheetah-run's shapes (observation 17, action 6) and the config's
defaults. Usage: python benchmarks/mabe.py [--steps 40] [--repeats 2]
"""

import argparse
import os

import timing

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

OBS, ACT = 17, 6


def _spec():
  from abmrl.agents import builders
  return builders.NetworkSpec(OBS, ACT)


def _batches(batch_size, n=20, seed=0):
  import numpy as np
  rng = np.random.default_rng(seed)
  shape = (n, batch_size, 2)
  return {'observation': rng.normal(size=shape + (OBS,)).astype(np.float32),
          'action': rng.uniform(-1, 1, size=shape + (ACT,)).astype(np.float32),
          'reward': rng.uniform(0, 1, size=shape).astype(np.float32),
          'discount': np.ones(shape, np.float32)}


def _in_memory(batches):
  import tensorflow as tf
  return iter(tf.data.Dataset.from_tensor_slices(batches).repeat().prefetch(4))


def _learner(dataset, config):
  import numpy as np
  from acme.utils import loggers
  from abmrl.agents import registry
  rng = np.random.default_rng(1)
  validation = dict(
      observation=rng.normal(size=(512, OBS)), action=rng.uniform(
          -1, 1, (512, ACT)), reward=rng.uniform(0, 1, 512),
      discount=np.ones(512), next_observation=rng.normal(size=(512, OBS)))
  return registry.get('mabe').make_learner(
      config, _spec(), dataset, None, loggers.NoOpLogger(), None, None,
      validation=validation,
      real_snippets=None)


def model_rate(config, steps, repeats):
  """(steps/s, the FLOP/s that is, the matmul FLOP/s)."""
  import tensorflow as tf
  learner = _learner(_in_memory(_batches(config.batch_size)), config)
  step = lambda: learner._stage_step(learner._model_step)  # pylint: disable=protected-access
  rates = [timing.calls_per_second(step, steps, warmup=3)
           for _ in range(repeats)]
  sizes = [OBS + ACT] + list(config.model_layer_sizes) + [2 * (1 + OBS)]
  forward = 2 * config.ensemble_size * config.batch_size * sum(
      a * b for a, b in zip(sizes[:-1], sizes[1:]))
  flops = 3 * forward
  # The reference: the ensemble's widest layer as one batched matmul,
  # repeated to the step's FLOPs.
  x = tf.random.normal([config.ensemble_size, config.batch_size, 200])
  w = tf.random.normal([config.ensemble_size, 200, 200])
  matmul = tf.function(lambda: tf.matmul(x, w), jit_compile=True)
  per_call = 2 * config.ensemble_size * config.batch_size * 200 * 200
  calls = max(1, int(flops / per_call))
  def reference():
    for _ in range(calls):
      matmul()
  ref = max(timing.calls_per_second(reference, steps, warmup=3)
            for _ in range(repeats))
  rate = sum(rates) / len(rates)
  return rate, rate * flops, ref * calls * per_call


def rollout_rate(config, rounds):
  """(transitions/s writing to Reverb, transitions/s without writes)."""
  import numpy as np
  import reverb
  import tensorflow as tf
  from abmrl.agents import registry
  from abmrl.datasets import episodes
  from abmrl.datasets import replay as replay_lib
  from abmrl.datasets import rollout as rollout_lib
  builder = registry.get('mabe')
  learner = _learner(_in_memory(_batches(64)), config)
  spec = episodes.DatasetSpec('bench', (OBS,), (ACT,), (-1.,) * ACT,
                              (1.,) * ACT)
  table = replay_lib.make_snippet_table(
      replay_lib.MODEL_TABLE, spec, 2, max_size=2_000_000,
      samples_per_insert=None, min_size_to_sample=1, batch_size=256,
      snippets_per_item=16)
  server = reverb.Server([table])
  try:
    client = reverb.Client(f'localhost:{server.port}')
    rng = np.random.default_rng(2)
    starts = (rng.normal(size=(config.rollout_batch, OBS)).astype(np.float32)
              for _ in iter(int, 1))
    node = rollout_lib.ModelRollouts(
        model=builder.make_model(config, _spec()),
        policy_network=builder.make_policy(config, 'policy', _spec()),
        variable_source=learner, start_states=starts, replay=client,
        table=replay_lib.MODEL_TABLE, observation_size=OBS,
        action_bounds=_spec().bounds(), rollout_length=config.rollout_length,
        rollout_batch=config.rollout_batch, penalty=config.penalty,
        state_margin=1e6, snippets_per_item=16)
    node.run_round()  # traces
    before = node.transitions
    seconds = 1. / timing.calls_per_second(node.run_round, rounds)
    writing = (node.transitions - before) / (rounds * seconds)
    states = tf.constant(next(starts))
    def compute_only():
      s = states
      for _ in range(config.rollout_length):
        s = node._step(s)[2]  # pylint: disable=protected-access
      s.numpy()
    alone = (config.rollout_batch * config.rollout_length
             * timing.calls_per_second(compute_only, rounds, warmup=1))
    return writing, alone
  finally:
    server.stop()


def learner_rates(config, steps, repeats):
  """(steps/s on two Reverb tables, steps/s on one in-memory table)."""
  import reverb
  from abmrl.agents.mabe import losses
  from abmrl.datasets import episodes
  from abmrl.datasets import replay as replay_lib
  k = 16
  real = losses.real_batch_size(config.batch_size, config.real_fraction, k)
  spec = episodes.DatasetSpec('bench', (OBS,), (ACT,), (-1.,) * ACT,
                              (1.,) * ACT)
  tables = [replay_lib.make_snippet_table(
      name, spec, 2, max_size=100_000, samples_per_insert=None,
      min_size_to_sample=1, batch_size=config.batch_size, snippets_per_item=k)
            for name in (replay_lib.SNIPPET_TABLE, replay_lib.MODEL_TABLE)]
  server = reverb.Server(tables)
  try:
    client = reverb.Client(f'localhost:{server.port}')
    data = _batches(config.batch_size)
    flat = {name: x.reshape((-1,) + x.shape[2:]) for name, x in data.items()}

    class Rows:  # 2-row snippets, back to back, as SnippetWriter reads them
      observation, action, reward, discount = (
          flat['observation'].reshape(-1, OBS), flat['action'].reshape(
              -1, ACT), flat['reward'].reshape(-1), flat['discount'].reshape(
                  -1))
    for table in (replay_lib.SNIPPET_TABLE, replay_lib.MODEL_TABLE):
      writer = replay_lib.SnippetWriter(client, table, 2, k)
      for i in range(0, len(Rows.reward) - 1, 2):
        writer.add(Rows, i)
      writer.flush()

    def batches(table, size):
      return iter(replay_lib.make_snippet_dataset(
          client.server_address, table, batch_size=size, snippet_length=2,
          snippets_per_item=k))
    joined = replay_lib.joined_batches(
        batches(replay_lib.SNIPPET_TABLE, real),
        batches(replay_lib.MODEL_TABLE, config.batch_size - real))
    learners = {'two Reverb tables': _learner(joined, config),
                'in-memory': _learner(_in_memory(data), config)}
    rates = {name: [] for name in learners}
    for _ in range(repeats):
      for name, learner in learners.items():
        rates[name].append(timing.calls_per_second(learner.step, steps,
                                                   warmup=3))
    return {name: sum(r) / len(r) for name, r in rates.items()}, real
  finally:
    server.stop()


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--steps', type=int, default=40)
  parser.add_argument('--repeats', type=int, default=2)
  parser.add_argument('--rounds', type=int, default=5,
                      help='rollout rounds timed')
  args = parser.parse_args()
  import tensorflow as tf
  from abmrl.agents import registry
  config = registry.get('mabe').make_config()
  print(f'[bench] TF {tf.__version__}, {os.cpu_count()} cores; obs {OBS}, '
        f'act {ACT}; ensemble {config.ensemble_size} x '
        f'{config.model_layer_sizes}, batch {config.batch_size}; rollouts '
        f'{config.rollout_batch} x h={config.rollout_length}', flush=True)
  rate, flops, reference = model_rate(config, args.steps, args.repeats)
  print(f'[bench] model training: {rate:.1f} steps/s', flush=True)
  rl, real = learner_rates(config, args.steps, args.repeats)
  for name, value in rl.items():
    print(f'[bench] RL learner, {name}: {value:.2f} steps/s', flush=True)
  # Last: a rollout node has one TF thread, and TF's thread count is set
  # once per process, so it is timed with the process's threads here and
  # the model's share of a node is reported as measured.
  writing, alone = rollout_rate(config, args.rounds)
  print(f'[bench] rollouts: {writing:.0f} transitions/s written, '
        f'{alone:.0f} computed alone', flush=True)
  print('\n| what | rate | reference | ratio |\n|---|---|---|---|')
  print(f'| model training (7 x 4x200, batch {config.batch_size}) | '
        f'{rate:.1f} steps/s = {flops / 1e9:.1f} GFLOP/s | matmul '
        f'{reference / 1e9:.1f} GFLOP/s | {flops / reference:.2f} |')
  print(f'| rollout node (M={config.rollout_batch}, h='
        f'{config.rollout_length}), into Reverb | {writing:.0f} '
        f'transitions/s | the rollout steps alone {alone:.0f}/s | '
        f'{writing / alone:.2f} |')
  two, memory = rl['two Reverb tables'], rl['in-memory']
  print(f'| RL learner, batches of {real} real + '
        f'{config.batch_size - real} model snippets from two Reverb tables | '
        f'{two:.2f} steps/s | one in-memory table {memory:.2f} steps/s | '
        f'{two / memory:.2f} |')


if __name__ == '__main__':
  main()
