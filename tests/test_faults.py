"""A `local_mp` run survives what breaks, keeps its progress, and says what
happened (launch/processes.py, agents/base.py).

Real programs: every node is a process, killed here with SIGKILL, and the
launcher interrupted with SIGINT, as a user's Ctrl-C.
"""

import csv
import os
import re
import signal
import subprocess
import sys
import time

import psutil

from abmrl.launch import run as run_lib
from tests.conftest import ENV_ID

ABMRL = os.path.join(os.path.dirname(sys.executable), 'abmrl')
NOTICE = 10  # Launchpad's termination notice (lp_termination_notice_secs)
LOOPBACK = ('127.0.0.1', '::1', '::ffff:127.0.0.1')


def _command(dataset, run_dir, steps, *extra):
  return [ABMRL, 'train', '--agent', 'bm', '--env', ENV_ID,
          '--dataset', dataset, '--steps', str(steps), '--restorers', '2',
          '--eval-episodes', '1', '--eval-every', '50',
          '--min-replay-size', '200', '--replay-size', '5000',
          '--samples-per-insert', '4', '--snippets-per-item', '8',
          '--run-dir', run_dir, '--set', 'batch_size=64',
          '--set', 'policy_layer_sizes=32,32', *extra]


class Run:
  """A launched `abmrl train`, its output read as it comes."""

  def __init__(self, command, log_path):
    self._log = open(log_path, 'w+')
    # Its children inherit the tag: what is left of a run can be found.
    self.tag = str(log_path)
    # A temp directory of its own: what the run leaves there is seen.
    self.temp_dir = f'{log_path}.tmp'
    os.makedirs(self.temp_dir)
    self.process = subprocess.Popen(
        command, stdout=self._log, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env=dict(os.environ, ABMRL_TEST_RUN=self.tag,
                                         TMPDIR=self.temp_dir))

  def output(self) -> str:
    self._log.flush()
    with open(self._log.name) as f:
      return f.read()

  def wait_for(self, pattern, timeout=240) -> re.Match:
    deadline = time.time() + timeout
    while time.time() < deadline:
      found = re.search(pattern, self.output())
      if found:
        return found
      assert self.process.poll() is None, self.output()[-3000:]
      time.sleep(0.3)
    raise AssertionError(f'no {pattern!r} in time:\n' + self.output()[-3000:])

  def finish(self, timeout=120) -> int:
    try:
      return self.process.wait(timeout)
    except subprocess.TimeoutExpired:
      os.killpg(self.process.pid, signal.SIGKILL)
      raise AssertionError('the run hung:\n' + self.output()[-3000:])

  def nodes(self):
    """group/index -> pid of the run's node processes (ABMRL_NODE)."""
    found = {}
    for process in psutil.Process(self.process.pid).children(recursive=True):
      try:
        name = process.environ().get('ABMRL_NODE')
        if name and process.ppid() == self.process.pid:
          found[name] = process.pid
      except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return found


def _learner_steps(run_dir):
  path = os.path.join(run_dir, 'logs', 'learner', 'logs.csv')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [int(float(row['learner_steps'])) for row in csv.DictReader(f)]


def _no_node_left(run: Run):
  deadline = time.time() + 10
  while time.time() < deadline:
    left = [p for p in psutil.process_iter(['environ'])
            if (p.info['environ'] or {}).get('ABMRL_TEST_RUN') == run.tag]
    if not left:
      # Nor files: the nodes' pickles and Reverb's checkpoint folder.
      assert not os.listdir(run.temp_dir), os.listdir(run.temp_dir)
      return
    time.sleep(0.3)
  raise AssertionError(f'processes left: {left}')


def _kill(run: Run, node: str) -> float:
  os.kill(run.nodes()[node], signal.SIGKILL)
  return time.time()


def _listening(pids):
  """(pid, ip) of every listening TCP socket of these processes."""
  sockets = []
  for pid in pids:
    for connection in psutil.Process(pid).net_connections('inet'):
      if connection.status == psutil.CONN_LISTEN:
        sockets.append((pid, connection.laddr.ip))
  return sockets


def test_nodes_die_and_the_run_goes_on_or_stops_saying_why(small_dataset,
                                                           tmp_path):
  run_dir = str(tmp_path / 'run')
  first = Run(_command(small_dataset, run_dir, 100_000), tmp_path / 'a.log')
  first.wait_for(r'Learner Steps = \d+')
  nodes = first.nodes()
  assert set(nodes) >= {'replay/0', 'counter/0', 'learner/0', 'restorer/0',
                        'restorer/1', 'evaluator/0', 'stopper/0'}, nodes
  # Every server of every node listens on loopback only.
  sockets = _listening(nodes.values())
  assert {pid for pid, _ in sockets} >= {nodes['replay/0'],
                                         nodes['counter/0'],
                                         nodes['learner/0']}, sockets
  assert all(ip in LOOPBACK for _, ip in sockets), sockets

  # A stateless node that dies is named and started again.
  _kill(first, 'restorer/1')
  line = first.wait_for(r'node restorer/1 \(pid (\d+), host 127\.0\.0\.1\) '
                        r'was killed by signal SIGKILL; restarted it as pid '
                        r'(\d+) \(restart 1 of 3\)')
  assert int(line[1]) == nodes['restorer/1']
  assert psutil.pid_exists(int(line[2]))
  _kill(first, 'evaluator/0')
  first.wait_for(r'node evaluator/0 .* was killed by signal SIGKILL; '
                 r'restarted it')
  first.wait_for(r'\[evaluator/0\] \[Evaluator')  # the restarted one reports

  # Ctrl-C: the learner saves, everything stops, one line says where.
  before = max(_learner_steps(run_dir))
  os.killpg(first.process.pid, signal.SIGINT)
  assert first.finish() == 130
  out = first.output()
  stopped = re.search(r'abmrl: interrupted at learner step (\d+) of 100000 '
                      r'\(checkpoint saved\); to resume, run the same command '
                      'again', out)
  assert stopped, out[-3000:]
  saved = int(stopped[1])
  assert saved >= before
  assert run_lib.learner_state(run_dir) == dict(learner_steps=saved,
                                                finished=False)
  assert 'Traceback' not in out, out[-3000:]
  _no_node_left(first)

  # The rerun resumes from it, and the log continues. Then the replay dies:
  # no node can go on without it, so the program stops, in one line, within
  # the notice.
  second = Run(_command(small_dataset, run_dir, 100_000),
               tmp_path / 'b.log')
  second.wait_for(rf'Learner Steps = {saved + 1}\b')
  steps = _learner_steps(run_dir)
  resumed_at = steps.index(saved + 1)
  assert steps[:resumed_at] == sorted(steps[:resumed_at])  # no restart at 1
  killed = _kill(second, 'replay/0')
  assert second.finish() == 1
  out = second.output()
  assert re.search(r'abmrl: error: node replay/0 \(pid \d+, host 127\.0\.0\.1\)'
                   r' was killed by signal SIGKILL; stopping the program', out)
  assert time.time() - killed < 2 * NOTICE + 10
  _no_node_left(second)
  # The learner, waiting on a replay that is gone, still saved on the stop.
  assert run_lib.learner_state(run_dir)['learner_steps'] > saved + 1

  # The learner killed: the program stops; what it kept is the periodic
  # checkpoint (every 0.02 minutes here), and a rerun resumes from it.
  third = Run(_command(small_dataset, run_dir, 100_000,
                       '--checkpoint-minutes', '0.02'), tmp_path / 'c.log')
  start = max(_learner_steps(run_dir))
  third.wait_for(r'Learner Steps = \d+')
  deadline = time.time() + 120
  while run_lib.learner_state(run_dir)['learner_steps'] <= start + 1:
    assert time.time() < deadline, third.output()[-3000:]
    time.sleep(0.5)
  killed = _kill(third, 'learner/0')
  assert third.finish() == 1
  assert re.search(r'abmrl: error: node learner/0 \(pid \d+, host 127\.0\.0\.1\)'
                   r' was killed by signal SIGKILL; stopping the program',
                   third.output())
  assert time.time() - killed < 2 * NOTICE + 10
  assert run_lib.learner_state(run_dir)['learner_steps'] > start
  _no_node_left(third)


def test_ctrl_c_while_starting_leaves_nothing(small_dataset, tmp_path):
  run_dir = str(tmp_path / 'run')
  run = Run(_command(small_dataset, run_dir, 50), tmp_path / 'a.log')
  run.wait_for(r'\[replay/0\]')  # nodes are starting
  os.killpg(run.process.pid, signal.SIGINT)
  assert run.finish() == 130
  out = run.output()
  # Before the learner exists, or after it saved its (step 0) checkpoint.
  assert re.search(r'abmrl: interrupted (before the first checkpoint|at '
                   r'learner step \d+ of 50 \(checkpoint saved\))', out), (
                       out[-3000:])
  assert 'Traceback' not in out, out[-3000:]
  _no_node_left(run)
