"""`--launch ray`: the same program on a real Ray cluster whose hosts are
network namespaces on a bridge (launch/netns_cluster.py; root only).

Run alone with `pytest -m cluster`. One cluster serves every test here.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from abmrl.datasets import episodes
from abmrl.launch import netns_cluster
from abmrl.launch import processes
from abmrl.launch import run as run_lib
from tests import test_collect
from tests.conftest import ENV_ID

pytestmark = pytest.mark.cluster

_WHY_NOT = netns_cluster.available()
ABMRL = os.path.join(os.path.dirname(sys.executable), 'abmrl')
# Where each group runs (hosts' Ray resources host1..host3); the counter
# and stopper take the default, the head (host 1).
PLACEMENT = {'replay': 2, 'restorer': 2, 'learner': 1, 'evaluator': 3}


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
  if _WHY_NOT:
    pytest.skip(f'no simulated hosts here: {_WHY_NOT}')
  with netns_cluster.NamespaceCluster(
      hosts=3, log_dir=str(tmp_path_factory.mktemp('ray_logs'))) as made:
    yield made


def _train(cluster, dataset, run_dir, steps, *extra):
  return [ABMRL, 'train', '--agent', 'bm', '--env', ENV_ID,
          '--dataset', dataset, '--steps', str(steps), '--restorers', '1',
          '--eval-episodes', '1', '--eval-every', '10',
          '--min-replay-size', '200', '--replay-size', '5000',
          '--samples-per-insert', '4', '--snippets-per-item', '8',
          '--run-dir', run_dir, '--launch', 'ray',
          '--ray-address', cluster.address, '--placement',
          ','.join(f'{g}=host{h}' for g, h in PLACEMENT.items()),
          '--set', 'batch_size=64', '--set', 'policy_layer_sizes=32,32',
          *extra]


def _started(output: str):
  """(group, index) -> (host IP, pid, netns inode) from the launcher's
  `[ray] learner/0 on host IP: pid P, net:[N]` lines."""
  return {(m['group'], int(m['index'])): (m['ip'], int(m['pid']),
                                          int(m['netns']))
          for m in re.finditer(r'\[ray\] (?P<group>\w+)/(?P<index>\d+) on '
                               r'host (?P<ip>[\d.]+): pid (?P<pid>\d+), '
                               r'net:\[(?P<netns>\d+)\]', output)}


def _node_processes(cluster):
  """Node processes (of abmrl's process launcher) still alive in any of
  the cluster's hosts: (pid, node). The netns test keeps out the local
  runs of tests running alongside (pytest -n)."""
  hosts = {f'net:[{cluster.netns_inode(h)}]'
           for h in range(1, cluster.hosts + 1)}
  found = []
  for process in psutil.process_iter(['cmdline', 'environ']):
    if (any('abmrl-node-' in part for part in process.info['cmdline'] or ())
        and processes.netns(process.pid) in hosts):
      found.append((process.pid,
                    (process.info['environ'] or {}).get('ABMRL_NODE')))
  return found


def _learner_steps(run_dir):
  rows = run_lib.read_csv(os.path.join(run_dir, 'logs', 'learner',
                                       'logs.csv'))
  return [int(r['learner_steps']) for r in rows]


def _run_until_training(cluster, command, run_dir, steps):
  """Starts `command` on host 1; returns (process, output so far, which
  node runs where) once the learner has passed `steps`."""
  process = cluster.popen(1, command, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  output, deadline = '', time.time() + 300
  while ('stopper', 0) not in _started(output):
    line = process.stdout.readline()
    assert line and time.time() < deadline, output[-3000:]
    output += line
  while max(_learner_steps(run_dir)) < steps:
    assert time.time() < deadline and process.poll() is None, output
    time.sleep(1)
  return process, output, _started(output)


def _listening_ips(pid):
  """The IPs a process listens on, read in its own network namespace
  (/proc/PID/net/tcp*: psutil reads the caller's)."""
  inodes = set()
  for fd in os.listdir(f'/proc/{pid}/fd'):
    try:
      target = os.readlink(f'/proc/{pid}/fd/{fd}')
    except OSError:
      continue
    if target.startswith('socket:['):
      inodes.add(target[8:-1])
  found = set()
  for name in ('tcp', 'tcp6'):
    with open(f'/proc/{pid}/net/{name}') as f:
      for line in f.readlines()[1:]:
        fields = line.split()
        if fields[3] != '0A' or fields[9] not in inodes:  # 0A: LISTEN
          continue
        address = fields[1].split(':')[0]
        if name == 'tcp':
          found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
        else:
          raw = b''.join(bytes.fromhex(address[i:i + 8])[::-1]
                         for i in range(0, 32, 8))
          found.add(socket.inet_ntop(socket.AF_INET6, raw))
  return found


def _read_until(process, pattern, timeout=120):
  """Reads the launcher's output until a line matches; the match."""
  deadline, output = time.time() + timeout, ''
  while time.time() < deadline:
    line = process.stdout.readline()
    assert line, output[-3000:]
    output += line
    found = re.search(pattern, line)
    if found:
      return found
  raise AssertionError(f'no {pattern!r}:\n' + output[-3000:])


def _finish(process, timeout=150):
  try:
    out, err = process.communicate(timeout=timeout)
  finally:
    if process.poll() is None:
      os.killpg(process.pid, signal.SIGKILL)
      process.wait()
  return out, err


def test_one_program_across_three_hosts_fails_loudly_and_resumes(
    cluster, small_dataset, tmp_path):
  run_dir = str(tmp_path / 'run')
  # 0. A placement the cluster cannot meet: one line, nothing started.
  done = cluster.run(1, _train(cluster, small_dataset, run_dir, 10,
                               '--placement', 'learner=nohost'), timeout=300)
  assert done.returncode == 2
  assert "no node of the cluster has resource 'nohost'" in done.stderr
  assert not _node_processes(cluster)
  # 1. Replay and the restorer on host 2, the learner on host 1, the
  # evaluator on host 3: each node runs in its host's namespace.
  done = cluster.run(1, _train(cluster, small_dataset, run_dir, 30),
                     timeout=400)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  assert '[train] done' in done.stdout
  started = _started(done.stdout)
  assert set(started) >= {('replay', 0), ('restorer', 0), ('learner', 0),
                          ('evaluator', 0), ('counter', 0), ('stopper', 0)}
  for (group, _), (ip, _, netns) in started.items():
    host = PLACEMENT.get(group, 1)
    assert ip == cluster.ip(host), (group, ip)
    assert netns == cluster.netns_inode(host), (group, netns)
  result = run_lib.read_result(run_dir)
  assert result.learner_steps == 30 and result.final_returns
  assert not _node_processes(cluster)

  # 2. A stateless node killed mid-run (a restorer) is named and started
  # again on its host; the replay killed stops the whole program with one
  # line that names it, its host and the signal; nothing is left on any
  # host, and the learner saved on the way out.
  config = os.path.join(run_dir, 'config.json')
  longer = [ABMRL, 'train', '--config', config, '--steps', '100000']
  process, _, started = _run_until_training(cluster, longer, run_dir, 40)
  # Every server listens on its host's cluster IP only.
  for group in ('replay', 'counter', 'learner'):
    ip, pid, _ = started[(group, 0)]
    listening = _listening_ips(pid)
    assert listening and listening <= {ip, f'::ffff:{ip}'}, (group,
                                                             listening)
  os.kill(started[('restorer', 0)][1], signal.SIGKILL)
  restarted = _read_until(process, r'\[abmrl\] node restorer/0 \(pid \d+, '
                          rf'host {re.escape(cluster.ip(2))}\) was killed by '
                          r'signal SIGKILL; restarted it as pid (\d+)')
  assert processes.netns(int(restarted[1])) == (
      f'net:[{cluster.netns_inode(2)}]')
  killed_at = time.time()
  os.kill(started[('replay', 0)][1], signal.SIGKILL)
  out, err = _finish(process)
  assert process.returncode == 1, (out + err)[-3000:]
  assert re.search(r'abmrl: error: node replay/0 \(pid \d+, host '
                   rf'{re.escape(cluster.ip(2))}\) was killed by signal '
                   r'SIGKILL; stopping the program', err), err[-3000:]
  assert time.time() - killed_at < 60  # the notice, and Ray's own stop
  assert not _node_processes(cluster)
  saved = run_lib.learner_state(run_dir)['learner_steps']
  assert saved >= 40

  # 3. A rerun resumes from the learner's checkpoint and ends.
  done = cluster.run(1, [ABMRL, 'train', '--config', config, '--steps',
                         str(saved + 15)], timeout=400)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  assert run_lib.read_result(run_dir).learner_steps == saved + 15
  steps = _learner_steps(run_dir)
  resumed = steps.index(saved + 1)  # the rerun's first logged step
  assert max(steps[:resumed]) <= saved, steps
  assert not _node_processes(cluster)

  # 4. A host lost mid-run (its Ray node killed at once): the program stops
  # with one line naming the node that was there, and its node process
  # went with it.
  process, _, started = _run_until_training(cluster, longer, run_dir, 50)
  cluster.kill_host(3)
  out, err = _finish(process, timeout=240)
  assert process.returncode == 1, (out + err)[-3000:]
  assert (f'lost node evaluator/0 on host {cluster.ip(3)}') in err, err[-3000:]
  assert not _node_processes(cluster)


def test_collect_runs_on_the_cluster_too(cluster, tmp_path):
  # A short collection (the online MPO program: learner, actor, replay)
  # with its actor on host 2 (host 3 may be gone: the test above kills it)
  # and the rest on the head: the episodes land in the shared directory.
  out = str(tmp_path / 'collected')
  done = cluster.run(1, [
      ABMRL, 'collect', '--env', ENV_ID, '--seed', '0', '--episodes', '2',
      '--out', out, '--launch', 'ray', '--ray-address', cluster.address,
      '--placement', 'actor=host2', *test_collect.SMALL],
                     timeout=400)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  started = _started(done.stdout)
  assert started[('actor', 0)][0] == cluster.ip(2)
  assert started[('replay', 0)][0] == cluster.ip(1)
  assert episodes.count_episodes(out, 'seed0') == 2
  assert not _node_processes(cluster)
