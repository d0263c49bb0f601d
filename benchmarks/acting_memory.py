"""Host memory and time per action: a policy called one observation at a
time, as evaluators and online actors call it.

  python benchmarks/acting_memory.py [--calls 20000] [--out docs/results/acting_memory.md]

Each way of calling the point_mass evaluation policy (a 256-256 Gaussian,
its mean action) runs in a fresh process: eagerly, as a plain tf.function
(as Acme's FeedForwardActor calls it), and as
`agents/networks.py:acting_function` (XLA-compiled). Reported: µs per call
and resident memory (RSS) growth per 10,000 calls, measured after 2,000
warm-up calls, with fresh observations each call.
"""

import argparse
import json
import subprocess
import sys
import time

WAYS = ('eager', 'tf.function', 'acting_function')


def _measure(way: str, calls: int) -> dict:
  """In this process: (µs per call, RSS growth in MB per 10k calls)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import psutil  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from acme.tf import utils as tf2_utils  # pylint: disable=g-import-not-at-top
  from abmrl import environments  # pylint: disable=g-import-not-at-top
  from abmrl.agents import builders  # pylint: disable=g-import-not-at-top
  from abmrl.agents import networks  # pylint: disable=g-import-not-at-top
  environment = environments.make('control:point_mass-easy', seed=0)
  spec = environment.observation_spec()
  network_spec = builders.NetworkSpec(spec.shape[0],
                                      environment.action_spec().shape[0])
  policy = network_spec.gaussian_policy((256, 256), networks.MIN_VARIANCE,
                                        name='policy')
  tf2_utils.create_variables(policy, [spec])
  mean = networks.MeanAction(policy)
  act = {'eager': lambda o: mean(o[None])[0],
         'tf.function': tf.function(lambda o: mean(o[None])[0]),
         'acting_function': networks.acting_function(
             lambda o: mean(o[None])[0], policy)}[way]
  rng = np.random.default_rng(0)
  observations = rng.normal(size=(1000,) + spec.shape).astype(np.float32)
  for i in range(2000):
    act(tf.constant(observations[i % 1000])).numpy()
  process = psutil.Process()
  rss, start = process.memory_info().rss, time.time()
  for i in range(calls):
    act(tf.constant(observations[i % 1000])).numpy()
  seconds = time.time() - start
  return dict(us_per_call=seconds / calls * 1e6,
              mb_per_10k=(process.memory_info().rss - rss) / 2**20
              * 10_000 / calls)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--calls', type=int, default=20_000)
  parser.add_argument('--out', help='write the Markdown table here')
  parser.add_argument('--way', choices=WAYS, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.way:  # one measurement, in a process of its own
    print(json.dumps(_measure(args.way, args.calls)))
    return
  rows = {}
  for way in WAYS:
    done = subprocess.run([sys.executable, __file__, '--way', way,
                           '--calls', str(args.calls)],
                          capture_output=True, text=True, check=True)
    rows[way] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f'[acting_memory] {way}: {rows[way]}', flush=True)
  base = rows['tf.function']['us_per_call']
  lines = [f'`python benchmarks/acting_memory.py --calls {args.calls}`: the '
           'point_mass evaluation policy (256-256, mean action), one '
           f'observation per call, {args.calls} calls after 2,000 warm-up '
           'calls, each way in a fresh process.', '',
           '| way | µs per call | × tf.function | RSS growth (MB per 10k '
           'calls) |', '|---|---|---|---|']
  for way, row in rows.items():
    lines.append(f'| {way} | {row["us_per_call"]:.0f} | '
                 f'{row["us_per_call"] / base:.2f} | '
                 f'{row["mb_per_10k"]:+.2f} |')
  table = '\n'.join(lines)
  print(table)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(table + '\n')


if __name__ == '__main__':
  main()
