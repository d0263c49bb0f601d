"""Throughput and memory of the offline data path, in one run.

Prints:
  1. restorer insert rate (transitions/s) with 1 and 2 restorer processes;
  2. learner steps/s (BM by default, --agent for another) fed from Reverb vs
     from an in-memory tf.data dataset of the same batches (the ratio; target
     >= 0.9), at the paper's shapes (batch 512, observation 17, action 6:
     cheetah-run);
  3. peak resident memory of the replay process while a dataset 5x the table
     size streams through it, beside a table that holds the whole dataset.

Every figure comes from this run on this machine; nothing is hard-coded.
Usage: python benchmarks/pipeline.py [--episodes 100] [--table-size 20000]
"""

import argparse
import multiprocessing as mp
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('GLOG_minloglevel', '1')
os.environ.setdefault('MUJOCO_GL', 'egl')

ENV_ID = 'control:cheetah-run'
TABLE = 'snippets'
SNIPPET_LENGTH = 2
SNIPPETS_PER_ITEM = int(os.environ.get('ABMRL_SNIPPETS_PER_ITEM', '16'))


def make_dataset(directory: str, episodes: int) -> None:
  from abmrl.datasets import episodes as episodes_lib
  from abmrl.datasets import generate
  have = len(episodes_lib.list_episodes(directory))
  if have >= episodes:
    return
  behaviours = generate.default_behaviours()
  per = -(-(episodes - have) // len(behaviours))
  print(f'[bench] generating {per * len(behaviours)} {ENV_ID} episodes in '
        f'{directory} ...', flush=True)
  generate.generate(ENV_ID, directory, per, behaviours=behaviours,
                    seed=have + 1, progress=None)


# --- processes --------------------------------------------------------------


def _replay_process(spec, table_size, port_queue, stop_event):
  """A Reverb server in its own process, as the replay node is."""
  import reverb
  from abmrl.datasets import replay
  # No rate limiting: restorers insert as fast as they can, FIFO evicts.
  table = reverb.Table(
      TABLE, sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(),
      max_size=max(1, table_size // SNIPPETS_PER_ITEM),  # in items
      rate_limiter=reverb.rate_limiters.MinSize(1),
      signature=replay.snippet_signature(spec, SNIPPET_LENGTH,
                                         SNIPPETS_PER_ITEM))
  server = reverb.Server([table])
  port_queue.put((server.port, os.getpid()))
  stop_event.wait()
  server.stop()


def _restorer_process(directory, address, shard, num_shards, barrier,
                      results):
  import reverb
  from abmrl.datasets import restorer
  client = reverb.Client(address)
  r = restorer.Restorer(directory, client, TABLE, SNIPPET_LENGTH,
                        snippets_per_item=SNIPPETS_PER_ITEM,
                        shard_index=shard, num_shards=num_shards, max_passes=1)
  barrier.wait()
  start = time.time()
  stats = r.run()
  results.put((start, time.time(), stats.steps, stats.snippets))


def _memory_mb(pid: int, field: str) -> float:
  """A /proc/PID/status memory field: VmRSS (now) or VmHWM (peak)."""
  with open(f'/proc/{pid}/status') as f:
    for line in f:
      if line.startswith(field + ':'):
        return int(line.split()[1]) / 1024
  return float('nan')


class Replay:
  """Starts the replay process; `address`, `pid`; stop() ends it."""

  def __init__(self, spec, table_size):
    ctx = mp.get_context('spawn')
    self._stop = ctx.Event()
    ports = ctx.Queue()
    self._process = ctx.Process(target=_replay_process, args=(
        spec, table_size, ports, self._stop))
    self._process.start()
    port, self.pid = ports.get(timeout=120)
    self.address = f'localhost:{port}'

  def stop(self):
    self._stop.set()
    self._process.join(timeout=30)


def restore_once(directory, address, num_restorers):
  """Runs K restorer processes over the dataset once; returns transitions/s."""
  ctx = mp.get_context('spawn')
  barrier = ctx.Barrier(num_restorers)
  results = ctx.Queue()
  processes = [ctx.Process(target=_restorer_process, args=(
      directory, address, k, num_restorers, barrier, results))
               for k in range(num_restorers)]
  for p in processes:
    p.start()
  outcomes = [results.get(timeout=900) for _ in processes]
  for p in processes:
    p.join()
  start = min(o[0] for o in outcomes)
  end = max(o[1] for o in outcomes)
  steps = sum(o[2] for o in outcomes)
  return steps / (end - start), steps, end - start


# --- learner ----------------------------------------------------------------


def learner_rates(address, agent, steps, repeats):
  """Learner steps/s from Reverb and from memory, same process and TF."""
  import tensorflow as tf
  from acme.utils import loggers
  from abmrl.agents import builders
  from abmrl.agents import registry
  from abmrl.datasets import replay

  builder = registry.get(agent)
  # At the paper's batch where the agent has a 'paper' preset (the ABM
  # variants' defaults are a CPU-budget set, agents/abm/config.py).
  config = builder.make_config(
      **builder.presets.get('paper', {}).get('agent', {}))
  reverb_dataset = replay.make_snippet_dataset(
      address, TABLE, config.batch_size, SNIPPET_LENGTH, SNIPPETS_PER_ITEM)
  reverb_iterator = iter(reverb_dataset)
  batches = [next(reverb_iterator) for _ in range(50)]
  memory_dataset = tf.data.Dataset.from_tensor_slices(
      {k: tf.stack([b[k] for b in batches]) for k in batches[0]}
  ).repeat().prefetch(4)

  def timed(iterator):
    learner = builder.make_learner(config, builders.NetworkSpec(17, 6),
                                   iterator, None, loggers.NoOpLogger(), None,
                                   None)
    learner.run(num_steps=10)  # trace and warm up
    start = time.time()
    learner.run(num_steps=10 + steps)
    return steps / (time.time() - start)

  from_reverb, from_memory = [], []
  for _ in range(repeats):
    from_reverb.append(timed(reverb_iterator))
    from_memory.append(timed(iter(memory_dataset)))
  return from_reverb, from_memory


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--dataset', default='data/bench-cheetah-run')
  parser.add_argument('--episodes', type=int, default=100,
                      help='1000-step episodes in the dataset (default 100)')
  parser.add_argument('--table-size', type=int, default=20_000,
                      help='table size for the memory test; the dataset '
                      'should hold 5x as many snippets')
  parser.add_argument('--learner-steps', type=int, default=300)
  parser.add_argument('--agent', default='bm',
                      help='the learner fed from Reverb vs memory (default bm)')
  parser.add_argument('--repeats', type=int, default=2)
  parser.add_argument('--parts', default='insert,learner,memory',
                      help='which figures to measure (default all three)')
  args = parser.parse_args()
  parts = set(args.parts.split(','))

  import psutil
  from abmrl.datasets import episodes as episodes_lib
  make_dataset(args.dataset, args.episodes)
  spec = episodes_lib.read_spec(args.dataset)
  paths = episodes_lib.list_episodes(args.dataset)
  print(f'[bench] machine: {os.cpu_count()} cores, '
        f'{psutil.virtual_memory().total / 2**30:.0f} GiB; dataset '
        f'{len(paths)} episodes of {ENV_ID}', flush=True)

  # 1. Insert rate.
  rates = {}
  for k in ((1, 2) if 'insert' in parts else ()):
    replay = Replay(spec, table_size=10_000_000)
    rate, steps, seconds = restore_once(args.dataset, replay.address, k)
    replay.stop()
    rates[k] = rate
    print(f'[bench] {k} restorer(s): {steps} transitions in {seconds:.1f}s = '
          f'{rate:,.0f} transitions/s', flush=True)

  if 'learner' not in parts:
    from_reverb = from_memory = [float('nan')]
  # 2. Learner fed from Reverb vs memory (table filled first, then sampled).
  else:
    from_reverb, from_memory = measure_learner(args, spec)
  ratio = sum(from_reverb) / sum(from_memory)
  if 'learner' in parts:
    print(f'[bench] {args.agent} learner (batch 512, obs 17, act 6, '
          f'{SNIPPETS_PER_ITEM} '
          f'snippets per item): from Reverb '
          f'{", ".join(f"{r:.1f}" for r in from_reverb)} steps/s; in memory '
          f'{", ".join(f"{r:.1f}" for r in from_memory)} steps/s; ratio '
          f'{ratio:.2f}', flush=True)
  if 'memory' in parts:
    b_size, b_idle, b_peak, w_size, w_idle, w_peak, total = measure_memory(
        args, spec, paths)
    print(f'[bench] replay process peak RSS: table {b_size:,} snippets with '
          f'a dataset of '
          f'{total:,} (5x) streamed through: {b_peak:.0f} MB (idle '
          f'{b_idle:.0f} MB); table holding all {w_size:,}: {w_peak:.0f} MB '
          f'(idle {w_idle:.0f} MB); growth ratio '
          f'{(b_peak - b_idle) / max(w_peak - w_idle, 1e-9):.2f}', flush=True)
  else:
    b_peak = w_peak = float('nan')

  rate = lambda k: f'{rates[k]:,.0f}' if k in rates else 'not measured'
  print('\n| figure | value |\n|---|---|')
  print(f'| restorer insert rate, 1 restorer | {rate(1)} transitions/s |')
  print(f'| restorer insert rate, 2 restorers | {rate(2)} transitions/s |')
  print(f'| {args.agent} learner steps/s from Reverb | '
        f'{sum(from_reverb)/len(from_reverb):.1f} |')
  print(f'| {args.agent} learner steps/s in memory | '
        f'{sum(from_memory)/len(from_memory):.1f} |')
  print(f'| ratio Reverb / memory | {ratio:.2f} |')
  print(f'| replay peak RSS, table = dataset/5, 5x streamed | {b_peak:.0f} MB |')
  print(f'| replay peak RSS, table = whole dataset | {w_peak:.0f} MB |')


def measure_learner(args, spec):
  replay = Replay(spec, table_size=10_000_000)
  restore_once(args.dataset, replay.address, 2)
  from_reverb, from_memory = learner_rates(replay.address, args.agent,
                                           args.learner_steps, args.repeats)
  replay.stop()
  return from_reverb, from_memory


def measure_memory(args, spec, paths):
  """A table 1/5 of the dataset vs one holding all of it."""
  from abmrl.datasets import episodes as episodes_lib
  total_snippets = sum(
      len(episodes_lib.read_episode(p).observation) - SNIPPET_LENGTH + 1
      for p in paths)
  memory = {}
  for label, size in (('bounded', total_snippets // 5),
                      ('whole', total_snippets)):
    replay = Replay(spec, table_size=size)
    idle = _memory_mb(replay.pid, 'VmRSS')
    restore_once(args.dataset, replay.address, 2)
    memory[label] = (size, idle, _memory_mb(replay.pid, 'VmHWM'))
    replay.stop()
  (b_size, b_idle, b_peak), (w_size, w_idle, w_peak) = (memory['bounded'],
                                                         memory['whole'])
  return b_size, b_idle, b_peak, w_size, w_idle, w_peak, total_snippets


if __name__ == '__main__':
  main()
