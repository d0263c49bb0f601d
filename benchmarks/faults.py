"""The fault table: how long a `local_mp` run takes to say that a node died,
and to restart it or stop.

  python benchmarks/faults.py [--out docs/results/faults.md]

Generates a small point_mass dataset, launches `abmrl train --agent bm`
(2 restorers, 1 evaluator), and once the learner steps, SIGKILLs one node
at a time: a restorer and the evaluator (restarted), then the replay (the
program stops). A second run has its learner killed. For each, from the
SIGKILL: the seconds to the launcher's line naming the node, and to the
restarted node at work again (a restorer with an episode file open, the
evaluator's first evaluation) or to the launcher's exit (stops). The launcher's output is polled every 20 ms.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import psutil

from abmrl.datasets import generate

ENV_ID = 'control:point_mass-easy'
ABMRL = os.path.join(os.path.dirname(sys.executable), 'abmrl')
_POLL = 0.02


class Launched:
  def __init__(self, command, log):
    self.log = log
    self.handle = open(log, 'w')
    self.process = subprocess.Popen(command, stdout=self.handle,
                                    stderr=subprocess.STDOUT,
                                    start_new_session=True)

  def text(self):
    with open(self.log) as f:
      return f.read()

  def wait_for(self, pattern, since=0, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
      found = re.search(pattern, self.text()[since:])
      if found:
        return time.time(), found
      if self.process.poll() is not None:
        raise RuntimeError(f'the run ended:\n{self.text()[-2000:]}')
      time.sleep(_POLL)
    raise RuntimeError(f'no {pattern!r}:\n{self.text()[-2000:]}')

  def node_pid(self, name):
    for child in psutil.Process(self.process.pid).children():
      try:
        if child.environ().get('ABMRL_NODE') == name:
          return child.pid
      except psutil.Error:
        pass
    raise RuntimeError(f'no node {name}')

  def kill(self):
    if self.process.poll() is None:
      os.killpg(self.process.pid, signal.SIGKILL)

  def exit_time(self, timeout=120):
    deadline = time.time() + timeout
    while self.process.poll() is None and time.time() < deadline:
      time.sleep(_POLL)
    return time.time(), self.process.poll()


def _reading_episodes(pid, timeout=300):
  """When the (restarted) restorer `pid` has an episode file open."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    try:
      if any(f.path.endswith('.riegeli')
             for f in psutil.Process(pid).open_files()):
        return time.time()
    except psutil.Error:
      pass
    time.sleep(_POLL)
  raise RuntimeError(f'restorer {pid} never opened an episode')


def _stopped_by(run, name):
  """A table row: `name` SIGKILLed, the program stops."""
  time.sleep(3)
  killed, offset = _kill(run, name)
  said, _ = run.wait_for(rf'node {re.escape(name)} .* stopping the program',
                         offset)
  ended, code = run.exit_time()
  return (name, f'stopped (exit {code})', said - killed, ended - killed)


def _kill(run, name):
  pid = run.node_pid(name)
  offset = len(run.text())
  os.kill(pid, signal.SIGKILL)
  return time.time(), offset


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', help='also write the table (Markdown) here')
  args = parser.parse_args()
  work = tempfile.mkdtemp(prefix='abmrl-faults-')
  data = os.path.join(work, 'data')
  generate.generate(ENV_ID, data, episodes_per_behaviour=2, seed=0,
                    max_steps_per_episode=120, progress=None)

  def command(run_dir):
    return [ABMRL, 'train', '--agent', 'bm', '--env', ENV_ID, '--dataset',
            data, '--steps', '1000000', '--restorers', '2', '--eval-episodes',
            '1', '--eval-every', '50', '--min-replay-size', '200',
            '--replay-size', '5000', '--samples-per-insert', '4',
            '--snippets-per-item', '8', '--run-dir', run_dir, '--set',
            'batch_size=64', '--set', 'policy_layer_sizes=32,32']

  rows = []
  run = Launched(command(os.path.join(work, 'run1')), os.path.join(work,
                                                                    'a.log'))
  try:
    run.wait_for(r'Learner Steps = \d+')
    for name in ('restorer/1', 'evaluator/0'):
      time.sleep(3)
      killed, offset = _kill(run, name)
      said, line = run.wait_for(
          rf'node {re.escape(name)} .* restarted it as pid (\d+)', offset)
      if name.startswith('restorer'):
        back = _reading_episodes(int(line[1]))
      else:  # the evaluator's first evaluation
        back, _ = run.wait_for(rf'\[{re.escape(name)}\] \[Evaluator',
                               offset + line.end())
      rows.append((name, 'restarted', said - killed, back - killed))
    rows.append(_stopped_by(run, 'replay/0'))
  finally:
    run.kill()
  run = Launched(command(os.path.join(work, 'run2')), os.path.join(work,
                                                                    'b.log'))
  try:
    run.wait_for(r'Learner Steps = \d+')
    rows.append(_stopped_by(run, 'learner/0'))
  finally:
    run.kill()
  lines = ['| node SIGKILLed | outcome | to the line (s) | to the restarted '
           "node at work, or the launcher's exit (s) |",
           '|---|---|---|---|']
  lines += [f'| {name} | {outcome} | {said:.2f} | {done:.2f} |'
            for name, outcome, said, done in rows]
  table = '\n'.join(lines)
  print(table)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(table + '\n')
  subprocess.run(['rm', '-rf', work], check=False)


if __name__ == '__main__':
  main()
