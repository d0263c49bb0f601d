"""A soak: one long `local_mp` training run, every node's memory sampled.

  python benchmarks/soak.py [--minutes 60] [--out docs/results/soak.md]

Generates a point_mass dataset (8 episodes of 1000 steps), launches
`abmrl train --agent bm_mpo` (2 restorers, 1 evaluator per policy) for
`--minutes`, and samples each node's resident memory (RSS, its whole
process tree) every `--every` seconds. Reported per node: RSS at the first
and last sample and its growth per hour (least-squares slope over the
samples after the first five minutes, so start-up allocation does not
count); and the learner's steps/s and the restorers' inserted snippets/s
over the first and the last five minutes (from the learner's CSV, which
carries the shared counter). Then Ctrl-C, as a user would stop it; the
seconds until the launcher exits.
"""

import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import psutil

from abmrl.datasets import generate

ENV_ID = 'control:point_mass-easy'
ABMRL = os.path.join(os.path.dirname(sys.executable), 'abmrl')


def _nodes(launcher: int):
  """node name -> the psutil processes of its tree."""
  found = {}
  for child in psutil.Process(launcher).children():
    try:
      name = child.environ().get('ABMRL_NODE')
      if name:
        found[name] = [child] + child.children(recursive=True)
    except psutil.Error:
      pass
  return found


def _rss_mb(processes) -> float:
  total = 0
  for process in processes:
    try:
      total += process.memory_info().rss
    except psutil.Error:
      pass
  return total / 2**20


def _rates(rows, seconds_from, seconds_to):
  """(learner steps/s, restorer snippets/s) between two times."""
  window = [r for r in rows if seconds_from <= r['t'] <= seconds_to]
  if len(window) < 2:
    return float('nan'), float('nan')
  first, last = window[0], window[-1]
  elapsed = last['t'] - first['t']
  return ((last['learner_steps'] - first['learner_steps']) / elapsed,
          (last['restorer_snippets'] - first['restorer_snippets']) / elapsed)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--minutes', type=float, default=60.0)
  parser.add_argument('--every', type=float, default=60.0,
                      help='seconds between memory samples')
  parser.add_argument('--out', help='write the Markdown table here (and a '
                      'PNG of memory against time beside it)')
  args = parser.parse_args()
  work = tempfile.mkdtemp(prefix='abmrl-soak-')
  data, run_dir = os.path.join(work, 'data'), os.path.join(work, 'run')
  generate.generate(ENV_ID, data, episodes_per_behaviour=2, seed=0,
                    progress=None)
  log = open(os.path.join(work, 'launcher.log'), 'w')
  launcher = subprocess.Popen(
      [ABMRL, 'train', '--agent', 'bm_mpo', '--env', ENV_ID, '--dataset', data,
       '--steps', '100000000', '--restorers', '2', '--eval-episodes', '1',
       '--eval-every', '2000', '--run-dir', run_dir, '--set', 'batch_size=64',
       '--min-replay-size', '1000', '--replay-size', '100000'],
      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
  csv_path = os.path.join(run_dir, 'logs', 'learner', 'logs.csv')
  try:
    while not os.path.exists(csv_path):
      if launcher.poll() is not None:
        raise RuntimeError('the run ended before it trained; see '
                           + log.name)
      time.sleep(1)
    start = time.time()
    samples = {}  # node -> [(minutes, RSS MB)]
    while time.time() - start < args.minutes * 60:
      if launcher.poll() is not None:
        raise RuntimeError('the run ended early; see ' + log.name)
      minute = (time.time() - start) / 60
      for name, processes in _nodes(launcher.pid).items():
        samples.setdefault(name, []).append((minute, _rss_mb(processes)))
      print(f'[soak] {minute:5.1f} min: ' + ', '.join(
          f'{n} {s[-1][1]:.0f} MB' for n, s in sorted(samples.items())),
            flush=True)
      time.sleep(args.every)
    stop_at = time.time()
    os.killpg(launcher.pid, signal.SIGINT)
    launcher.wait(120)
    stop_seconds = time.time() - stop_at
  finally:
    if launcher.poll() is None:
      os.killpg(launcher.pid, signal.SIGKILL)
  rows = _timed_rows(csv_path)
  total = rows[-1]['t']
  early = _rates(rows, 0, 300)
  late = _rates(rows, total - 300, total)
  lines = [f'Soak: `python benchmarks/soak.py --minutes {args.minutes:g}` '
           f'(bm_mpo on point_mass, local_mp); {len(samples)} nodes; '
           f'memory sampled every {args.every:g} s.', '',
           '| node | RSS first (MB) | RSS last (MB) | growth after 5 min '
           '(MB/h) |', '|---|---|---|---|']
  for name, points in sorted(samples.items()):
    later = [(m, r) for m, r in points if m >= 5]
    slope = (np.polyfit([m for m, _ in later], [r for _, r in later], 1)[0]
             * 60 if len(later) >= 3 else float('nan'))
    lines.append(f'| {name} | {points[0][1]:.0f} | {points[-1][1]:.0f} | '
                 f'{slope:+.1f} |')
  lines += ['', '| throughput | first 5 min | last 5 min |', '|---|---|---|',
            f'| learner steps/s | {early[0]:.1f} | {late[0]:.1f} |',
            f'| restorer snippets/s (inserted) | {early[1]:.0f} | {late[1]:.0f} |',
            '', f'Ctrl-C to the launcher\'s exit: {stop_seconds:.1f} s '
            f'(exit code {launcher.returncode}).']
  table = '\n'.join(lines)
  print(table)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(table + '\n')
    _plot(samples, os.path.splitext(args.out)[0] + '.png')
  subprocess.run(['rm', '-rf', work], check=False)


def _timed_rows(csv_path):
  """The learner's CSV rows with `t`, seconds since its first step (the
  counter's `learner_walltime` sums each step's seconds since the last)."""
  with open(csv_path) as f:
    return [dict(t=float(r.get('learner_walltime') or 0),
                 learner_steps=float(r['learner_steps']),
                 restorer_snippets=float(r.get('restorer_snippets') or 0))
            for r in csv.DictReader(f)]


def _plot(samples, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  figure, axis = plt.subplots(figsize=(7, 4))
  for name, points in sorted(samples.items()):
    axis.plot([m for m, _ in points], [r for _, r in points], label=name)
  axis.set_xlabel('minutes')
  axis.set_ylabel('RSS (MB)')
  axis.set_title('Memory of each node during the soak')
  axis.legend(fontsize=7, ncol=2)
  figure.tight_layout()
  figure.savefig(path, dpi=100)


if __name__ == '__main__':
  main()
