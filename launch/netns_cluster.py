"""Simulated hosts on one machine: a Ray cluster whose nodes are Linux
network namespaces on a bridge (for the tests and benchmarks of
`--launch ray`; root only).

The network rule of these tests: traffic goes only to loopback and to these
namespace hosts. So the bridge gets an address in the hosts' /24 before
anything is sent, the namespaces get no default route, and before any
traffic `ip route get HOST_IP` must name the bridge (else nothing starts).
Everything is torn down, by process group, then the namespaces and the
bridge, even when the caller fails.

  with NamespaceCluster(hosts=3) as cluster:
    cluster.run(1, ['abmrl', 'train', '--launch', 'ray',
                    '--ray-address', cluster.address, ...])

Host i has the address `cluster.ip(i)` and the Ray resource `host<i>`; host
1 runs the head.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

RAY_PORT = 6379
# Each probe of the cluster's node count waits this long, so a host whose Ray
# died while starting (a raylet that crashed on a loaded machine) is seen
# and started again within the start-up timeout.
_PROBE_SECONDS = 15
# Fixed agent ports: on a loaded 2-core machine the raylet times out
# waiting for a dashboard agent that picks its own (ray#65983). Each host
# is its own network stack, so every host uses the same ports.
_AGENT_PORTS = ['--dashboard-agent-grpc-port=52365',
                '--dashboard-agent-listen-port=52366',
                '--metrics-export-port=52367',
                '--runtime-env-agent-port=52368']


class NamespaceError(RuntimeError):
  """The simulated hosts could not be made here (not root, no iproute2)."""


def available() -> Optional[str]:
  """Why namespace hosts cannot be made here, or None if they can."""
  if os.geteuid() != 0:
    return 'network namespaces need root'
  if shutil.which('ip') is None:
    return "no 'ip' command (iproute2)"
  probe = f'abmrlprobe{os.getpid()}'
  made = subprocess.run(['ip', 'netns', 'add', probe], capture_output=True,
                        text=True)
  if made.returncode:
    return f'cannot create a network namespace: {made.stderr.strip()}'
  subprocess.run(['ip', 'netns', 'delete', probe], capture_output=True)
  return None


def _ip(*args: str, namespace: Optional[str] = None,
        check: bool = True) -> subprocess.CompletedProcess:
  command = ['ip'] + (['netns', 'exec', namespace, 'ip'] if namespace
                      else []) + list(args)
  done = subprocess.run(command, capture_output=True, text=True)
  if check and done.returncode:
    raise NamespaceError(f'{" ".join(command)}: {done.stderr.strip()}')
  return done


class NamespaceCluster:
  """`hosts` network namespaces on a bridge, a Ray node in each."""

  def __init__(self, hosts: int = 3, subnet: Optional[int] = None,
               num_cpus: int = 2, gpu_hosts: Sequence[int] = (),
               log_dir: Optional[str] = None, ray_timeout: float = 180.0):
    # A /24 per process (10.231.N.0/24), so parallel test workers never
    # share one.
    self.subnet = subnet if subnet is not None else 100 + os.getpid() % 100
    self.tag = f'{self.subnet}'
    self.hosts = hosts
    self.bridge = f'abr{self.tag}'
    self._num_cpus = num_cpus
    self._gpu_hosts = set(gpu_hosts)
    self._log_dir = log_dir
    self._ray_timeout = ray_timeout
    self._retries: Dict[int, int] = {}  # host -> ray starts it needed again
    self._groups: Dict[int, subprocess.Popen] = {}
    self._routes_checked = False  # set by _check_routes; popen needs it
    # Token authentication (Ray >= 2.52): every Ray process of this cluster
    # and every driver it runs gets the same random token.
    self.auth_env = {'RAY_AUTH_MODE': 'token',
                     'RAY_AUTH_TOKEN': secrets.token_hex(16)}
    self.start_seconds = float('nan')

  def ip(self, host: int) -> str:
    return f'10.231.{self.subnet}.{host}'

  @property
  def bridge_ip(self) -> str:
    return f'10.231.{self.subnet}.254'

  @property
  def address(self) -> str:
    return f'{self.ip(1)}:{RAY_PORT}'

  def namespace(self, host: int) -> str:
    return f'abmrl{self.tag}h{host}'

  def netns_inode(self, host: int) -> int:
    """The namespace's identity, as /proc/PID/ns/net shows it (net:[N])."""
    return os.stat(f'/run/netns/{self.namespace(host)}').st_ino

  def __enter__(self) -> 'NamespaceCluster':
    try:
      self._make_network()
      self._check_routes()
      start = time.time()
      self._start_ray()
      self.start_seconds = time.time() - start
    except BaseException:
      self.close()
      raise
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  # --- the network ----------------------------------------------------------

  def _make_network(self) -> None:
    self.close_network()  # leftovers of an earlier run with the same tag
    # The bridge first, with its address in the hosts' /24, so the route
    # to every host IP is the bridge before anything can be sent.
    _ip('link', 'add', self.bridge, 'type', 'bridge')
    _ip('addr', 'add', f'{self.bridge_ip}/24', 'dev', self.bridge)
    _ip('link', 'set', self.bridge, 'up')
    for host in range(1, self.hosts + 1):
      ns, veth = self.namespace(host), f'av{self.tag}h{host}'
      _ip('netns', 'add', ns)
      _ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0',
          'netns', ns)
      _ip('link', 'set', veth, 'master', self.bridge, 'up')
      _ip('addr', 'add', f'{self.ip(host)}/24', 'dev', 'eth0', namespace=ns)
      _ip('link', 'set', 'eth0', 'up', namespace=ns)
      _ip('link', 'set', 'lo', 'up', namespace=ns)
      # No default route, ever: only the /24 and loopback are reachable.

  def _check_routes(self) -> None:
    """Before any traffic: every host IP routes through the bridge, and no
    namespace has a default route. Anything else aborts."""
    for host in range(1, self.hosts + 1):
      route = _ip('route', 'get', self.ip(host)).stdout
      if f'dev {self.bridge}' not in route:
        raise NamespaceError(f'{self.ip(host)} routes {route.strip()!r}, not '
                             f'through {self.bridge}: not starting')
      default = _ip('route', 'show', 'default',
                    namespace=self.namespace(host)).stdout.strip()
      if default:
        raise NamespaceError(f'{self.namespace(host)} has a default route '
                             f'({default}): not starting')
    self._routes_checked = True

  def close_network(self) -> None:
    self._routes_checked = False
    for host in range(1, self.hosts + 1):
      _ip('netns', 'delete', self.namespace(host), check=False)
    _ip('link', 'delete', self.bridge, check=False)

  # --- Ray --------------------------------------------------------------------

  def _ray_command(self, host: int) -> List[str]:
    ray = os.path.join(os.path.dirname(sys.executable), 'ray')
    resources = json.dumps({f'host{host}': 1})
    command = [ray, 'start', '--block', '--disable-usage-stats',
               f'--node-ip-address={self.ip(host)}',
               f'--temp-dir=/tmp/ar{self.tag}h{host}',
               f'--num-cpus={self._num_cpus}', f'--resources={resources}',
               *_AGENT_PORTS]
    if host in self._gpu_hosts:
      command.append('--num-gpus=1')  # declared, for placement tests
    else:
      command.append('--num-gpus=0')
    if host == 1:
      command += ['--head', f'--port={RAY_PORT}', '--include-dashboard=false']
    else:
      command.append(f'--address={self.address}')
    return command

  def popen(self, host: int, command: Sequence[str], **kwargs
            ) -> subprocess.Popen:
    """`command` in host's namespace, in a process group of its own; only
    once the routes have been checked (nothing is sent before)."""
    if not self._routes_checked:
      raise NamespaceError('the routes to the hosts are not checked: use the '
                           'cluster inside `with NamespaceCluster(...)`')
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED='0', **self.auth_env,
               **kwargs.pop('env', {}))
    return subprocess.Popen(
        ['ip', 'netns', 'exec', self.namespace(host), *command], env=env,
        start_new_session=True, **kwargs)

  def run(self, host: int, command: Sequence[str], timeout: float = 600,
          **kwargs) -> subprocess.CompletedProcess:
    """Runs `command` in host's namespace to its end (killed, with its
    process group, after `timeout`)."""
    process = self.popen(host, command, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, **kwargs)
    try:
      out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
      _kill_group(process)
      out, err = process.communicate()
      err += f'\n[netns_cluster] killed after {timeout} s'
    return subprocess.CompletedProcess(process.args, process.returncode, out,
                                       err)

  def _log(self, name: str):
    if self._log_dir is None:
      return subprocess.DEVNULL
    os.makedirs(self._log_dir, exist_ok=True)
    return open(os.path.join(self._log_dir, name), 'w')

  def _start_host(self, host: int) -> None:
    self._groups[host] = self.popen(
        host, self._ray_command(host), stdout=self._log(f'ray-host{host}.log'),
        stderr=subprocess.STDOUT)

  def _start_ray(self) -> None:
    self._start_host(1)
    self._wait_for_nodes(1)
    for host in range(2, self.hosts + 1):
      self._start_host(host)
    self._wait_for_nodes(self.hosts)

  def _wait_for_nodes(self, count: int) -> None:
    probe = ('import ray, sys, time\n'
             f'ray.init(address={self.address!r}, logging_level="ERROR")\n'
             f'deadline = time.time() + {_PROBE_SECONDS}\n'
             f'while sum(n["Alive"] for n in ray.nodes()) < {count}:\n'
             '  if time.time() > deadline: sys.exit(1)\n'
             '  time.sleep(0.5)\n')
    deadline = time.time() + self._ray_timeout
    while True:
      for host, group in list(self._groups.items()):
        if group.poll() is None:
          continue
        # Ray gives a node's raylet a fixed 30 s to register ("timed out
        # during startup"), which a loaded 2-core machine can miss: start
        # that host again, from a clean temp dir, twice at most.
        self._retries[host] = self._retries.get(host, 0) + 1
        if self._retries[host] > 2:
          raise NamespaceError(f'ray start on host {host} exited with '
                               f'{group.returncode} (3 times)')
        _kill_group(group)
        subprocess.run(['rm', '-rf', f'/tmp/ar{self.tag}h{host}'], check=False)
        self._start_host(host)
      done = self.run(1, [sys.executable, '-c', probe],
                      timeout=self._ray_timeout)
      if done.returncode == 0:
        return
      if time.time() > deadline:
        raise NamespaceError(f'the Ray cluster did not reach {count} '
                             f'node(s): {done.stderr[-500:]}')
      time.sleep(1)

  def kill_host(self, host: int) -> None:
    """The host's Ray node, lost at once (its process group, SIGKILL)."""
    group = self._groups.pop(host, None)
    if group is not None:
      _kill_group(group, signal.SIGKILL)

  def close(self) -> None:
    for host in sorted(self._groups, reverse=True):
      _kill_group(self._groups[host], signal.SIGTERM, wait=10)
    self._groups.clear()
    # Anything still running in the namespaces (node processes started by
    # Ray's workers are in their own process groups).
    for host in range(1, self.hosts + 1):
      pids = subprocess.run(['ip', 'netns', 'pids', self.namespace(host)],
                            capture_output=True, text=True).stdout.split()
      for pid in pids:
        try:
          os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
          pass
    self.close_network()
    for host in range(1, self.hosts + 1):
      shutil.rmtree(f'/tmp/ar{self.tag}h{host}', ignore_errors=True)


def _kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL,
                wait: float = 0) -> None:
  try:
    os.killpg(process.pid, sig)
  except ProcessLookupError:
    return
  try:
    process.wait(wait or 5)
  except subprocess.TimeoutExpired:
    try:
      os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
    process.wait()
