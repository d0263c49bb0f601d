"""A Launchpad program on the hosts of a Ray cluster (`--launch ray`).

Launchpad 0.5's only multi-host launch is Vertex AI. This launches the very
program launch/program.py builds, unchanged, with the same node processes
and supervision as the local launch (launch/processes.py), across hosts:

  1. each program node's `NodeProcess` is a Ray actor pinned to the cluster
     node `launch/cluster.py:place` chose for its group;
  2. every address is bound to its node's host: the host's cluster IP and a
     port free there (Launchpad's handles connect to `ip:port`), and its
     servers listen on that IP only;
  3. before anything starts, every host is checked: the same abmrl, and the
     dataset and run directories visible (a shared filesystem);
  4. `lp.stop()` in any node reaches the launcher through a stop file on its
     node's host, and the launcher stops every node;
  5. a host that is lost (its actors die with it) stops the program, with
     one line naming a node of it and the host.

Ray is imported only when a program is launched this way.
"""

from typing import Any, Dict, List, Mapping

import launchpad as lp

from abmrl.launch import cluster
from abmrl.launch import processes


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
           required_dirs: List[str], notice_secs: float,
           max_restarts: int) -> None:
  """Runs `program` on the Ray cluster at `address` until it stops.

  Args:
    address: the cluster's `ip:port` (its head's GCS address).
    placement_text: --placement, `group=RESOURCE,...` ('' for the defaults).
    environments: group -> environment variables of its processes.
    required_dirs: directories every host must see (dataset, run dir).
    notice_secs: SIGTERM to SIGKILL, for each stage of the stop.
    max_restarts: of each stateless node (launch/processes.py).
  Raises:
    cluster.ClusterError: a precondition does not hold.
    cluster.PlacementError: the placement cannot be met.
    processes.NodeFailure: a node failed or a host was lost.
  """
  import ray  # pylint: disable=g-import-not-at-top
  from ray.util import scheduling_strategies  # pylint: disable=g-import-not-at-top
  ray.init(address=address, logging_level='WARNING', log_to_driver=True,
           configure_logging=True)
  actors: Dict[processes.Key, Any] = {}
  try:
    groups = {label: len(members) for label, members in
              program.groups.items()}
    placed = cluster.place(groups, cluster_nodes(),
                           cluster.parse(placement_text))
    gpu_learner = ('learner', 0) in placed and (
        placed[('learner', 0)].num_gpus >= 1)
    environments = {label: dict(env) for label, env in environments.items()}
    if gpu_learner:  # Ray sets the learner's CUDA_VISIBLE_DEVICES
      environments.get('learner', {}).pop('CUDA_VISIBLE_DEVICES', None)
    remote = ray.remote(processes.NodeProcess)
    for (label, index), node in placed.items():
      options = dict(num_cpus=0, scheduling_strategy=(
          scheduling_strategies.NodeAffinitySchedulingStrategy(
              node.node_id, soft=False)))
      if label == 'learner' and gpu_learner:
        options['num_gpus'] = 1
      actors[(label, index)] = remote.options(**options).remote(
          f'{label}/{index}')
    ips: Dict[processes.Key, str] = {}  # known once the actors answer
    call = _ray_call(actors, ips)
    hosts = dict(zip(actors, call('host', list(actors))))
    check_hosts(hosts, call, required_dirs, processes.abmrl_version())
    ips.update({key: host['ip'] for key, host in hosts.items()})
    processes.bind_and_initialise(program, ips, call, environments)

    def started(key, info):
      print(f'[ray] {key[0]}/{key[1]} on host {ips[key]}: pid {info["pid"]}, '
            f'{info["netns"]}', flush=True)

    with processes.sigterm_as_ctrl_c():
      processes.Supervisor(program, ips, call, environments, notice_secs,
                           max_restarts, started).run()
  finally:
    for actor in actors.values():
      try:
        ray.kill(actor)
      except Exception:  # pylint: disable=broad-except
        pass
    ray.shutdown()


def _ray_call(actors: Mapping[processes.Key, Any],
              ips: Mapping[processes.Key, str]) -> processes.Call:
  """Calls on the nodes' actors; a dead actor (its host lost) is a
  NodeFailure naming its node and host."""
  import ray  # pylint: disable=g-import-not-at-top
  lost_errors = tuple(getattr(ray.exceptions, name) for name in (
      'RayActorError', 'ActorUnavailableError')
                      if hasattr(ray.exceptions, name))

  def call(method: str, keys: List[processes.Key], *args):
    refs = [getattr(actors[key], method).remote(*args) for key in keys]
    results = []
    for key, ref in zip(keys, refs):
      try:
        results.append(ray.get(ref))
      except lost_errors as e:
        raise processes.NodeFailure(
            f'lost node {key[0]}/{key[1]} on host {ips.get(key, "?")}: its '
            'Ray worker died '
            f'({type(e).__name__}: its host is gone or unreachable); '
            'stopping the program') from None
    return results
  return call


def check_hosts(hosts: Mapping[processes.Key, Mapping[str, Any]],
                call: processes.Call, required_dirs: List[str],
                expected_version: str) -> None:
  """ClusterError in one line unless every node's host runs
  `expected_version` and sees `required_dirs`."""
  for key, host in hosts.items():
    if host['version'] != expected_version:
      raise cluster.ClusterError(
          f'host {host["ip"]} (node {key[0]}/{key[1]}) has abmrl '
          f'{host["version"]}, the launcher {expected_version}: every host '
          'needs the same version')
  keys = list(hosts)
  for key, missing in zip(keys, call('missing', keys, list(required_dirs))):
    if missing:
      raise cluster.ClusterError(
          f'host {hosts[key]["ip"]} (node {key[0]}/{key[1]}) cannot see '
          f'{missing[0]}: the hosts must share a filesystem with the '
          'launcher (the same paths for the dataset and the run directory)')
