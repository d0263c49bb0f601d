"""A Launchpad program's nodes as watched processes: both process launchers.

`local_mp` (this machine) and `ray` (the hosts of a cluster,
launch/ray_launch.py) start and watch nodes the same way, here. Launchpad's
own local launch is not used: it runs each node behind a `sed` wrapper
whose exit status (0) hides the node's, so a node killed by a signal looks
like a clean finish; its stopper signals the launcher's PID; its servers
listen on every interface; and it leaves its pickles in the system temp
directory. What is kept of Launchpad is everything else: the program, its
handles and addresses (bound here to `ip:port`), each node's function
pickled as `local_mp` pickles it, and Launchpad's process entry point
(launchpad/nodes/python/process_entry.py), which runs it and turns SIGTERM
into the node's stop event (`lp.wait_for_stop`).

A node:
  - runs in a process group of its own (killed as one), dies with the
    process that started it (PR_SET_PDEATHSIG), has its own temp directory
    (TMPDIR, removed at the end), and binds its servers to its host's
    address (launch/binding.py);
  - asks for the program's stop through a file (`request_stop`, its
    `lp.stop()`), which the launcher watches;
  - that exits by a signal or a non-zero status is reported in one line
    (node, PID, host, signal or status). A stateless node (restorer,
    evaluator, actor) is then started again, up to --max-node-restarts
    times; any other, or one past its restarts, stops the program
    (`NodeFailure`).

The program stops in two stages: the learner first, within the termination
notice, while replay and its producers still run, so it can take its last
step and save; then every other node, within 5 s (or the notice, if
shorter). SIGTERM, then SIGKILL to the process group of whatever is left.
"""

import contextlib
import ctypes
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import launchpad as lp
from launchpad import address as lp_address
from launchpad import context as lp_context

from abmrl.launch import binding

Key = Tuple[str, int]  # (group, index)
# Set in each node's process: the file whose creation asks for the stop.
STOP_FILE_ENV = 'ABMRL_STOP_FILE'
# ... and its name, group/index (for `ps e`, and tests).
NODE_ENV = 'ABMRL_NODE'
# ... and the file the launcher creates just before it sends SIGTERM: a
# node whose main thread is blocked in C++ (a learner waiting on a replay
# that is gone) runs no Python signal handler, so Launchpad's stop event
# is never set; a thread of the node can watch this file instead
# (launch/nodes.py:stop_requested).
TERMINATE_FILE_ENV = 'ABMRL_TERMINATE_FILE'
# Nodes that hold nothing another node needs: started again when they die.
RESTARTABLE_GROUPS = ('restorer', 'evaluator', 'actor')
# Stopped before the rest (see the module's docstring).
FIRST_TO_STOP = ('learner',)
LOCAL_IP = '127.0.0.1'
_REST_GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.25
_COUNTDOWN = re.compile(r'(\x1b\[\d+m)*Waiting for workers to stop for \d+s\.'
                        r'(\x1b\[0m)*\r?')
_ENTRY = os.path.join(os.path.dirname(lp.__file__), 'nodes', 'python',
                      'process_entry.py')


class NodeFailure(RuntimeError):
  """A node failed (past its restarts) or a host was lost; the message says
  which, where, and how."""


def request_stop() -> None:
  """The program stopper of every node launched here (`lp.stop()`)."""
  path = os.environ.get(STOP_FILE_ENV)
  if path:
    with open(path, 'a'):
      pass


def describe_exit(returncode: int) -> str:
  if returncode < 0:
    try:
      return f'was killed by signal {signal.Signals(-returncode).name}'
    except ValueError:
      return f'was killed by signal {-returncode}'
  return f'exited with status {returncode}'


class _HostAddress(lp_address.AbstractAddressBuilder):
  """`ip:port` on the host that runs the address's node."""

  def __init__(self, ip: str, port: int):
    self._address = f'{ip}:{port}'

  def build(self) -> str:
    return self._address


@dataclasses.dataclass(frozen=True)
class NodeStatus:
  pid: Optional[int]
  returncode: Optional[int]  # None while running
  stop_requested: bool


class NodeProcess:
  """One program node's process on its host (in the launcher's process for
  `local_mp`, a Ray actor on the chosen host for `ray`)."""

  def __init__(self, name: str):
    self._name = name
    self._dir = tempfile.mkdtemp(prefix='abmrl-node-')
    self._stop_file = os.path.join(self._dir, 'stop')
    self._terminate_file = os.path.join(self._dir, 'terminate')
    self._command: Optional[List[str]] = None
    self._env: Dict[str, str] = {}
    self._process: Optional[subprocess.Popen] = None
    self._output: Optional[threading.Thread] = None

  def host(self, ip: Optional[str] = None) -> Dict[str, Any]:
    """The host's address (`ip`, else Ray's view of it), network namespace
    and abmrl version."""
    if ip is None:
      import ray  # pylint: disable=g-import-not-at-top
      ip = ray.util.get_node_ip_address()
    return dict(ip=ip, netns=netns(os.getpid()), version=abmrl_version())

  def free_port(self, ip: str) -> int:
    """A port free on this host's address (bound, then released: the node
    binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
      s.bind((ip, 0))
      return s.getsockname()[1]

  def missing(self, paths: List[str]) -> List[str]:
    """Those of `paths` this host cannot see."""
    return [p for p in paths if not os.path.isdir(p)]

  def start(self, payload: bytes, env: Mapping[str, str], bind_ip: str,
            notice_secs: float) -> Dict[str, Any]:
    """Runs the pickled node function; returns its PID and network
    namespace."""
    data_file = os.path.join(self._dir, 'job.pkl')
    with open(data_file, 'wb') as f:
      f.write(payload)
    os.makedirs(os.path.join(self._dir, 'tmp'), exist_ok=True)
    self._command = [
        sys.executable, _ENTRY, '--data_file', data_file, '--lp_task_id',
        '0', f'--lp_termination_notice_secs={int(notice_secs)}']
    if not os.environ.get('ABMRL_VERBOSE'):
      # absl's INFO lines (courier bindings) of nodes that never import
      # launch/nodes.py, which quiets the others.
      self._command.append('--verbosity=-1')
    self._env = {**os.environ, **env, **binding.preload_env(bind_ip),
                 STOP_FILE_ENV: self._stop_file, NODE_ENV: self._name,
                 TERMINATE_FILE_ENV: self._terminate_file,
                 'TMPDIR': os.path.join(self._dir, 'tmp'),
                 'PYTHONUNBUFFERED': '1',
                 'PYTHONWARNINGS': os.environ.get(
                     'PYTHONWARNINGS', 'ignore::DeprecationWarning')}
    return self._spawn()

  def restart(self) -> Dict[str, Any]:
    """Runs the node again (after it died), as it was first started."""
    self._wait_output()
    if os.path.exists(self._terminate_file):
      os.remove(self._terminate_file)
    return self._spawn()

  def _spawn(self) -> Dict[str, Any]:
    self._process = subprocess.Popen(
        self._command, env=self._env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, killed as one
        preexec_fn=_die_with_parent)
    self._output = threading.Thread(target=self._copy_output,
                                    args=(self._process.stdout,), daemon=True)
    self._output.start()
    return dict(pid=self._process.pid, netns=netns(self._process.pid))

  def _copy_output(self, stream) -> None:
    """The node's output, each line after its name (as Launchpad prints),
    but for the countdown each node's worker manager prints while it stops
    (`Waiting for workers to stop for 10s.` ending in a carriage return)."""
    for line in iter(stream.readline, b''):
      text = _COUNTDOWN.sub('', line.decode('utf-8', errors='replace'))
      if text.strip():
        sys.stdout.write(f'[{self._name}] {text.rstrip()}\n')
        sys.stdout.flush()
    stream.close()

  def _wait_output(self) -> None:
    if self._output is not None:
      self._output.join(timeout=5)

  def poll(self) -> NodeStatus:
    process = self._process
    return NodeStatus(process.pid if process else None,
                      process.poll() if process else None,
                      os.path.exists(self._stop_file))

  def terminate(self) -> None:
    """SIGTERM to the node's process group: its stop event."""
    if self._process is not None and self._process.poll() is None:
      with open(self._terminate_file, 'a'):
        pass
      _signal_group(self._process.pid, signal.SIGTERM)

  def kill(self) -> Optional[int]:
    """SIGKILL to what is left of the node's process group; removes its
    files. Returns its exit status."""
    if self._process is not None:
      _signal_group(self._process.pid, signal.SIGKILL)  # children too
      self._process.wait()
      self._wait_output()
    subprocess.run(['rm', '-rf', self._dir], check=False)
    return self._process.returncode if self._process else None


def _die_with_parent() -> None:
  """In the node's process before it starts: SIGKILL when the process that
  started it dies (a killed launcher, a lost Ray worker), so no node
  outlives it."""
  libc = ctypes.CDLL(None, use_errno=True)
  libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _signal_group(pid: int, sig: int) -> None:
  try:
    os.killpg(pid, sig)
  except (ProcessLookupError, PermissionError):
    pass


def netns(pid: int) -> str:
  try:
    return os.readlink(f'/proc/{pid}/ns/net')
  except OSError:
    return ''


# Calls `method(*args)` on each node's process (local objects or Ray actors)
# and returns the results in order: (method, keys, *args) -> results.
Call = Callable[..., List[Any]]


def local_call(handles: Mapping[Key, NodeProcess]) -> Call:
  def call(method: str, keys: List[Key], *args):
    return [getattr(handles[key], method)(*args) for key in keys]
  return call


def bind_and_initialise(program: lp.Program, hosts: Mapping[Key, str],
                        call: Call,
                        environments: Mapping[str, Mapping[str, str]]) -> None:
  """Launch contexts, handles and addresses, as Launchpad's local launch
  sets them, but each address `ip:port` on its node's host and each node's
  stopper `request_stop`."""
  from launchpad.nodes.python import local_multi_processing  # pylint: disable=g-import-not-at-top
  for label, members in program.groups.items():
    for node in members:
      node.launch_context.initialize(
          lp_context.LaunchType.LOCAL_MULTI_PROCESSING,
          local_multi_processing.PythonProcess(
              env=dict(environments.get(label, {}))),
          request_stop)
  for label, members in program.groups.items():
    for node in members:
      for handle in node.input_handles:
        handle.connect(node, label)
  for key, ip in hosts.items():
    node = program.groups[key[0]][key[1]]
    for address in node.addresses:
      address.bind(_HostAddress(ip, call('free_port', [key], ip)[0]))


def pickled(node) -> bytes:
  """The node's function as Launchpad's process entry reads it: a
  cloudpickled list of functions, this one at index 0."""
  import cloudpickle  # pylint: disable=g-import-not-at-top
  return cloudpickle.dumps([node.function])


class Supervisor:
  """Starts a program's nodes, watches them until the program stops, and
  stops them."""

  def __init__(self, program: lp.Program, hosts: Mapping[Key, str],
               call: Call, environments: Mapping[str, Mapping[str, str]],
               notice_secs: float, max_restarts: int,
               started: Optional[Callable[[Key, Dict[str, Any]], None]] = None):
    self._program = program
    self._hosts = dict(hosts)
    self._call = call
    self._environments = environments
    self._notice = notice_secs
    self._max_restarts = max_restarts
    self._started = started or (lambda key, info: None)
    self._restarts = {key: 0 for key in hosts}
    self._pids: Dict[Key, int] = {}

  def run(self) -> None:
    """Starts every node and watches them until the program stops (a node
    asks, or every node has exited). Stops every node on the way out,
    also on NodeFailure or Ctrl-C."""
    try:
      for key in self._hosts:
        label, index = key
        info = self._call(
            'start', [key], pickled(self._program.groups[label][index]),
            dict(self._environments.get(label, {})), self._hosts[key],
            self._notice)[0]
        self._pids[key] = info['pid']
        self._started(key, info)
      self._watch()
    finally:
      self.stop()

  def _name(self, key: Key, pid: Optional[int] = None) -> str:
    return (f'node {key[0]}/{key[1]} (pid {pid or self._pids.get(key)}, '
            f'host {self._hosts[key]})')

  def _watch(self) -> None:
    running = list(self._hosts)
    while running:
      for key, status in zip(list(running), self._call('poll', running)):
        if status.stop_requested:
          return
        if status.returncode is None:
          continue
        if status.returncode == 0:
          running.remove(key)
          continue
        what = f'{self._name(key, status.pid)} {describe_exit(status.returncode)}'
        if (key[0] in RESTARTABLE_GROUPS and
            self._restarts[key] < self._max_restarts):
          self._restarts[key] += 1
          info = self._call('restart', [key])[0]
          self._pids[key] = info['pid']
          print(f'[abmrl] {what}; restarted it as pid {info["pid"]} '
                f'(restart {self._restarts[key]} of {self._max_restarts})',
                flush=True)
          continue
        if key[0] in RESTARTABLE_GROUPS:
          what += (f' after {self._restarts[key]} restart(s) '
                   '(--max-node-restarts)')
        # Said now, while the nodes stop; the launcher's error line repeats
        # it when the stop is over.
        print(f'[abmrl] {what}; stopping the program', flush=True)
        raise NodeFailure(f'{what}; stopping the program')
      time.sleep(_POLL_SECONDS)

  def stop(self) -> None:
    """The learner first, then the rest; each stage SIGTERM, up to the
    notice to exit; then SIGKILL to what is left, and the nodes' files
    removed."""
    keys = list(self._pids)
    first = [k for k in keys if k[0] in FIRST_TO_STOP]
    rest = [k for k in keys if k not in first]
    try:
      # Only the learner has something to save; the others get less time
      # (one waiting on a node that died would use it all).
      for stage, grace in ((first, self._notice),
                           (rest, min(self._notice, _REST_GRACE_SECONDS))):
        for key in stage:
          self._call_one('terminate', key)
        deadline = time.time() + grace
        while stage and time.time() < deadline:
          stage = [k for k in stage if getattr(
              self._call_one('poll', k), 'returncode', 0) is None]
          if stage:
            time.sleep(_POLL_SECONDS)
    except KeyboardInterrupt:
      pass  # a second Ctrl-C: no more waiting
    finally:
      for key in self._hosts:
        self._call_one('kill', key)

  def _call_one(self, method: str, key: Key):
    """One node's call while stopping: None for a node that is gone with
    its host."""
    try:
      return self._call(method, [key])[0]
    except NodeFailure:
      return None


def abmrl_version() -> str:
  """The installed abmrl's version and a digest of its sources (hosts must
  run the same code, not only the same release)."""
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  import hashlib  # pylint: disable=g-import-not-at-top
  # The folder holding launch/ and its siblings: the checkout (editable
  # install) or site-packages/abmrl (a wheel).
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  digest = hashlib.sha1()
  for package in ('agents', 'datasets', 'environments', 'launch'):
    for folder, dirs, files in sorted(os.walk(os.path.join(root, package))):
      dirs.sort()
      for name in sorted(f for f in files if f.endswith(('.py', '.c'))):
        path = os.path.join(folder, name)
        digest.update(os.path.relpath(path, root).encode())
        with open(path, 'rb') as f:
          digest.update(f.read())
  return f'{metadata.version("abmrl")}+{digest.hexdigest()[:12]}'


@contextlib.contextmanager
def sigterm_as_ctrl_c():
  """SIGTERM to the launcher stops the program as Ctrl-C does (the learner
  first, saving), then the launcher ends with KeyboardInterrupt."""
  def interrupt(signum, frame):
    del signum, frame
    raise KeyboardInterrupt
  previous = signal.signal(signal.SIGTERM, interrupt)
  # Ctrl-C too, even where the launcher was started with SIGINT ignored
  # (a background job of a non-interactive shell inherits that).
  previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)
    signal.signal(signal.SIGINT, previous_int)


def launch_local(program: lp.Program,
                 environments: Mapping[str, Mapping[str, str]],
                 notice_secs: float, max_restarts: int) -> None:
  """Runs `program` on this machine, a process per node, every server on
  loopback, until it stops. Raises NodeFailure."""
  handles = {(label, index): NodeProcess(f'{label}/{index}')
             for label, members in program.groups.items()
             for index in range(len(members))}
  call = local_call(handles)
  hosts = {key: LOCAL_IP for key in handles}
  try:
    bind_and_initialise(program, hosts, call, environments)
    with sigterm_as_ctrl_c():
      Supervisor(program, hosts, call, environments, notice_secs,
                 max_restarts).run()
  finally:
    for handle in handles.values():  # nodes never started: their folders
      handle.kill()
