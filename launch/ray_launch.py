"""A Launchpad program on the hosts of a Ray cluster (`--launch ray`).

Launchpad 0.5's only multi-host launch is Vertex AI. This launches the very
program launch/program.py builds, unchanged, doing per host what Launchpad's
`local_mp` does on one machine:

  1. each program node gets a `NodeProcess`, a Ray actor pinned to the
     cluster node `launch/cluster.py:place` chose for its group;
  2. every address is bound to its node's host: the host's cluster IP and a
     port free there (Launchpad's handles connect to `ip:port` as they do to
     `localhost:port`);
  3. each node's function is pickled with cloudpickle, as `local_mp` does,
     and sent to its actor, which writes it to a temporary file on its host
     and runs it with Launchpad's own entry point
     (launchpad/nodes/python/process_entry.py), in a process group of its
     own, with its group's environment (launch/run.py:_node_resources);
  4. `lp.stop()` in any node asks its actor, through a stop file on its host
     (Launchpad's own stopper signals the launcher's PID, which on another
     host is the wrong process), and the launcher stops every node: SIGTERM
     to each process group, SIGKILL after the termination notice;
  5. a node that exits non-zero or by a signal, or a host that is lost,
     stops the program, with one line naming the node, its host and its
     status.

Ray is imported only when a program is launched this way.
"""

import ctypes
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

import launchpad as lp
from launchpad import address as lp_address
from launchpad import context as lp_context

from abmrl.launch import cluster

# Set in each node's process: the file whose creation asks for the stop.
STOP_FILE_ENV = 'ABMRL_STOP_FILE'
_POLL_SECONDS = 0.5
_ENTRY = os.path.join(os.path.dirname(lp.__file__), 'nodes', 'python',
                      'process_entry.py')


def request_stop() -> None:
  """The program stopper of every node launched here (`lp.stop()`)."""
  path = os.environ.get(STOP_FILE_ENV)
  if path:
    with open(path, 'a'):
      pass


class _HostAddress(lp_address.AbstractAddressBuilder):
  """`ip:port` on the host that runs the address's node."""

  def __init__(self, ip: str, port: int):
    self._address = f'{ip}:{port}'

  def build(self) -> str:
    return self._address


@dataclasses.dataclass(frozen=True)
class NodeStatus:
  returncode: Optional[int]  # None while running
  stop_requested: bool


class NodeProcess:
  """One program node's process on its host (a Ray actor)."""

  def __init__(self, name: str):
    self._name = name
    self._dir = tempfile.mkdtemp(prefix='abmrl-node-')
    self._stop_file = os.path.join(self._dir, 'stop')
    self._process: Optional[subprocess.Popen] = None

  def host(self) -> Dict[str, Any]:
    """The host's cluster IP (Ray's view of it), network namespace and
    abmrl version."""
    import ray  # pylint: disable=g-import-not-at-top
    return dict(ip=ray.util.get_node_ip_address(),
                netns=_netns(os.getpid()), version=abmrl_version())

  def free_port(self, ip: str) -> int:
    """A port free on this host's cluster address (bound, then released:
    the node binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
      s.bind((ip, 0))
      return s.getsockname()[1]

  def missing(self, paths: List[str]) -> List[str]:
    """Those of `paths` this host cannot see."""
    return [p for p in paths if not os.path.isdir(p)]

  def start(self, payload: bytes, env: Mapping[str, str],
            notice_secs: float) -> Dict[str, Any]:
    """Runs the pickled node function; returns its PID and network
    namespace."""
    data_file = os.path.join(self._dir, 'job.pkl')
    with open(data_file, 'wb') as f:
      f.write(payload)
    self._process = subprocess.Popen(
        [sys.executable, _ENTRY, '--data_file', data_file, '--lp_task_id',
         '0', f'--lp_termination_notice_secs={int(notice_secs)}'],
        env={**os.environ, **env, STOP_FILE_ENV: self._stop_file},
        start_new_session=True,  # its own process group, killed as one
        preexec_fn=_die_with_parent)
    return dict(pid=self._process.pid, netns=_netns(self._process.pid))

  def poll(self) -> NodeStatus:
    return NodeStatus(self._process.poll() if self._process else None,
                      os.path.exists(self._stop_file))

  def stop(self, notice_secs: float) -> Optional[int]:
    """SIGTERM to the node's process group, SIGKILL after the notice; then
    removes its files. Returns its exit status."""
    if self._process is not None and self._process.poll() is None:
      _signal_group(self._process.pid, signal.SIGTERM)
      try:
        self._process.wait(notice_secs)
      except subprocess.TimeoutExpired:
        pass
    if self._process is not None:
      _signal_group(self._process.pid, signal.SIGKILL)  # children too
      self._process.wait()
    subprocess.run(['rm', '-rf', self._dir], check=False)
    return self._process.returncode if self._process else None


def _die_with_parent() -> None:
  """In the node's process before it starts: SIGKILL when its actor's
  process dies (a lost host, a killed worker), so no node outlives it."""
  libc = ctypes.CDLL(None, use_errno=True)
  libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _signal_group(pid: int, sig: int) -> None:
  try:
    os.killpg(pid, sig)
  except (ProcessLookupError, PermissionError):
    pass


def _netns(pid: int) -> str:
  try:
    return os.readlink(f'/proc/{pid}/ns/net')
  except OSError:
    return ''


def describe_exit(returncode: int) -> str:
  if returncode < 0:
    try:
      return f'signal {signal.Signals(-returncode).name}'
    except ValueError:
      return f'signal {-returncode}'
  return f'status {returncode}'


def cluster_nodes() -> List[cluster.ClusterNode]:
  """The live nodes of the connected Ray cluster."""
  import ray  # pylint: disable=g-import-not-at-top
  return [cluster.ClusterNode(
      node_id=n['NodeID'], ip=n['NodeManagerAddress'],
      resources=dict(n['Resources']),
      is_head='node:__internal_head__' in n['Resources'])
          for n in ray.nodes() if n['Alive']]


def launch(program: lp.Program, address: str, placement_text: str,
           environments: Mapping[str, Mapping[str, str]],
           required_dirs: List[str], notice_secs: float = 10.0) -> None:
  """Runs `program` on the Ray cluster at `address` until it stops.

  Args:
    address: the cluster's `ip:port` (its head's GCS address).
    placement_text: --placement, `group=RESOURCE,...` ('' for the defaults).
    environments: group -> environment variables of its processes.
    required_dirs: directories every host must see (dataset, run dir).
    notice_secs: SIGTERM to SIGKILL, for every node at the end.
  Raises:
    cluster.ClusterError: a node failed, a host was lost, or a precondition does
      not hold; the message names it.
  """
  import ray  # pylint: disable=g-import-not-at-top
  from ray.util import scheduling_strategies  # pylint: disable=g-import-not-at-top
  ray.init(address=address, logging_level='WARNING', log_to_driver=True,
           configure_logging=True)
  actors: Dict[Tuple[str, int], Any] = {}
  hosts: Dict[Tuple[str, int], Dict[str, Any]] = {}
  try:
    nodes = cluster_nodes()
    groups = {label: len(members) for label, members in
              program.groups.items()}
    placed = cluster.place(groups, nodes,
                                 cluster.parse(placement_text))
    gpu_learner = placed[('learner', 0)].num_gpus >= 1 if (
        'learner', 0) in placed else False
    remote = ray.remote(NodeProcess)
    for (label, index), node in placed.items():
      options = dict(num_cpus=0, scheduling_strategy=(
          scheduling_strategies.NodeAffinitySchedulingStrategy(
              node.node_id, soft=False)))
      if label == 'learner' and gpu_learner:
        options['num_gpus'] = 1  # Ray then sets CUDA_VISIBLE_DEVICES
      actors[(label, index)] = remote.options(**options).remote(
          f'{label}/{index}')
    hosts = dict(zip(actors, ray.get([a.host.remote()
                                      for a in actors.values()])))
    _check_hosts(actors, hosts, required_dirs, abmrl_version())
    _bind_and_initialise(program, actors, hosts, environments)
    for (label, index), actor in actors.items():
      node = program.groups[label][index]
      payload = _pickled(node)
      env = dict(environments.get(label, {}))
      if label == 'learner' and gpu_learner:
        env.pop('CUDA_VISIBLE_DEVICES', None)
      started = ray.get(actor.start.remote(payload, env, notice_secs))
      print(f'[ray] {label}/{index} on host {hosts[(label, index)]["ip"]}: '
            f'pid {started["pid"]}, {started["netns"]}', flush=True)
    _wait(actors, hosts)
  finally:
    if actors:
      _stop_all(actors, notice_secs)
    ray.shutdown()


def _check_hosts(actors, hosts, required_dirs, expected_version) -> None:
  import ray  # pylint: disable=g-import-not-at-top
  for key, host in hosts.items():
    if host['version'] != expected_version:
      raise cluster.ClusterError(
          f'host {host["ip"]} (node {key[0]}/{key[1]}) has abmrl '
          f'{host["version"]}, the launcher {expected_version}: every host '
          'needs the same version')
  checks = {key: actors[key].missing.remote(list(required_dirs))
            for key in actors}
  for key, missing in zip(checks, ray.get(list(checks.values()))):
    if missing:
      raise cluster.ClusterError(
          f'host {hosts[key]["ip"]} (node {key[0]}/{key[1]}) cannot see '
          f'{missing[0]}: the hosts must share a filesystem with the '
          'launcher (the same paths for the dataset and the run directory)')


def _bind_and_initialise(program, actors, hosts, environments) -> None:
  """Launch contexts, handles and addresses, as Launchpad's local launch
  sets them, but each address on its node's host and each node's stopper
  `request_stop`."""
  import ray  # pylint: disable=g-import-not-at-top
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
  for (label, index), actor in actors.items():
    node = program.groups[label][index]
    ip = hosts[(label, index)]['ip']
    ports = ray.get([actor.free_port.remote(ip) for _ in node.addresses])
    for address, port in zip(node.addresses, ports):
      address.bind(_HostAddress(ip, port))


def _pickled(node) -> bytes:
  """The node's function as local_mp's process entry reads it: a
  cloudpickled list of functions, this one at index 0."""
  import cloudpickle  # pylint: disable=g-import-not-at-top
  return cloudpickle.dumps([node.function])


def _wait(actors, hosts) -> None:
  """Until every node has exited, or one asks for the stop; raises
  cluster.ClusterError naming a node that failed or a host that was lost."""
  import ray  # pylint: disable=g-import-not-at-top
  running = dict(actors)
  while running:
    keys = list(running)
    try:
      statuses = ray.get([running[k].poll.remote() for k in keys])
    except ray.exceptions.RayActorError as e:
      lost = _lost(running, hosts)
      raise cluster.ClusterError(f'lost {lost}: its Ray worker died '
                         f'({type(e).__name__}); stopping the program') from None
    for key, status in zip(keys, statuses):
      if status.stop_requested:
        return
      if status.returncode is not None:
        del running[key]
        if status.returncode != 0:
          raise cluster.ClusterError(
              f'node {key[0]}/{key[1]} on host {hosts[key]["ip"]} exited '
              f'with {describe_exit(status.returncode)}; stopping the '
              'program')
    time.sleep(_POLL_SECONDS)


def _lost(running, hosts) -> str:
  """Which node (and host) no longer answers."""
  import ray  # pylint: disable=g-import-not-at-top
  for key, actor in running.items():
    try:
      ray.get(actor.poll.remote(), timeout=5)
    except Exception:  # pylint: disable=broad-except
      return f'node {key[0]}/{key[1]} on host {hosts.get(key, {}).get("ip")}'
  return 'a node'


def _stop_all(actors, notice_secs) -> None:
  """Every node stopped (SIGTERM, SIGKILL after the notice), in parallel,
  then their actors."""
  import ray  # pylint: disable=g-import-not-at-top
  refs = [a.stop.remote(notice_secs) for a in actors.values()]
  try:
    ray.get(refs, timeout=notice_secs + 30)
  except Exception:  # pylint: disable=broad-except
    pass  # a lost host's nodes went with it
  for actor in actors.values():
    try:
      ray.kill(actor)
    except Exception:  # pylint: disable=broad-except
      pass



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
      for name in sorted(f for f in files if f.endswith('.py')):
        path = os.path.join(folder, name)
        digest.update(os.path.relpath(path, root).encode())
        with open(path, 'rb') as f:
          digest.update(f.read())
  return f'{metadata.version("abmrl")}+{digest.hexdigest()[:12]}'
