"""Import and export rates, and peak memory, for a D4RL file of 1M transitions.

A synthetic D4RL-layout HDF5 file of gym:HalfCheetah-v5's shapes
(observation 17, action 6; episodes of 1,000 steps ending in timeouts, with
next_observations), then, each in its own process as a user runs them:
`abmrl dataset import` (d4rl), `abmrl dataset export` (d4rl, npz). Prints
transitions/s and the process's peak RSS, beside the same command on a
1,000-transition file (the fixed cost of the interpreter and libraries), so
the growth with the file's size shows whether the file is held: the source
file's arrays are FILE_MB in memory.

Usage: python benchmarks/interchange.py [--transitions 1000000]
                                        [--work /tmp/abmrl-interchange]
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV_ID = 'gym:HalfCheetah-v5'
OBS, ACT, EPISODE = 17, 6, 1000


def write_file(path, transitions):
  import h5py
  import numpy as np
  rng = np.random.default_rng(0)
  with h5py.File(path, 'w') as h5:
    arrays = {
        'observations': ((transitions, OBS), np.float32),
        'next_observations': ((transitions, OBS), np.float32),
        'actions': ((transitions, ACT), np.float32),
        'rewards': ((transitions,), np.float32),
        'terminals': ((transitions,), bool), 'timeouts': ((transitions,), bool)}
    for key, (shape, dtype) in arrays.items():
      h5.create_dataset(key, shape=shape, dtype=dtype)
    for start in range(0, transitions, 100_000):  # in blocks: little memory
      stop = min(start + 100_000, transitions)
      n = stop - start
      h5['observations'][start:stop] = rng.normal(size=(n, OBS))
      h5['next_observations'][start:stop] = rng.normal(size=(n, OBS))
      h5['actions'][start:stop] = rng.uniform(-1, 1, (n, ACT))
      h5['rewards'][start:stop] = rng.normal(size=n)
    timeouts = np.zeros(transitions, bool)
    timeouts[EPISODE - 1::EPISODE] = True
    h5['timeouts'][:] = timeouts
  return (transitions * (2 * OBS + ACT + 1) * 4) / 2**20  # MB of arrays


def run(command):
  """(seconds, peak RSS in MB) of one command in its own process."""
  start = time.time()
  process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
  _, status, usage = os.wait4(process.pid, 0)
  seconds = time.time() - start
  if status != 0:
    sys.exit(f'failed ({status}): {" ".join(command)}\n'
             + process.stderr.read().decode()[-2000:])
  return seconds, usage.ru_maxrss / 1024


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--transitions', type=int, default=1_000_000)
  parser.add_argument('--work', default='/tmp/abmrl-interchange')
  args = parser.parse_args()
  cli = [sys.executable, '-m', 'abmrl.launch.cli', 'dataset']
  shutil.rmtree(args.work, ignore_errors=True)
  os.makedirs(args.work)
  print('| file | step | transitions/s | seconds | peak RSS |\n'
        '|---|---|---|---|---|', flush=True)
  for label, n in (('1k', EPISODE), ('large', args.transitions)):
    source = os.path.join(args.work, f'{label}.hdf5')
    megabytes = write_file(source, n)
    dataset = os.path.join(args.work, f'{label}-dataset')
    steps = [
        ('import d4rl', cli + ['import', source, '--format', 'd4rl', '--env',
                               ENV_ID, '--out', dataset]),
        ('export d4rl', cli + ['export', dataset, '--format', 'd4rl', '--out',
                               os.path.join(args.work, f'{label}-out.hdf5')]),
        ('export npz', cli + ['export', dataset, '--format', 'npz', '--out',
                              os.path.join(args.work, f'{label}-out.npz')])]
    name = f'{n:,} transitions ({megabytes:.0f} MB of arrays)'
    for step, command in steps:
      seconds, rss = run(command)
      print(f'| {name} | {step} | {n / seconds:,.0f} | {seconds:.1f} | '
            f'{rss:.0f} MB |', flush=True)
  shutil.rmtree(args.work, ignore_errors=True)


if __name__ == '__main__':
  main()
