"""A Ray cluster as the launcher sees it (`--launch ray`): its nodes, which
of them runs each program node, and how a cluster run fails.

Placement is pure logic over a description of the cluster, so it is tested without one.
Defaults: the learner on a node with a GPU if the cluster has one, else on
the head; replay with the learner; restorers spread over every node (each
reads its shard of the episode files), and so are model-rollout nodes
(more of them, more model data per learner step); everything else on the
head.
`--placement group=RESOURCE,...` puts a group on the nodes that have that
Ray resource (e.g. a custom resource per host, `ray start --resources
'{"host2": 1}'`), spread over them when there are several.
"""

import dataclasses
from typing import Dict, List, Mapping, Sequence, Tuple


class PlacementError(ValueError):
  """A placement the cluster cannot satisfy: one line naming it."""


class ClusterError(RuntimeError):
  """A cluster that cannot run the program (a host without the same abmrl
  or the shared directories): one line naming it."""


@dataclasses.dataclass(frozen=True)
class ClusterNode:
  node_id: str
  ip: str
  resources: Mapping[str, float]
  is_head: bool = False

  @property
  def num_gpus(self) -> float:
    return self.resources.get('GPU', 0.)


def parse(text: str) -> Dict[str, str]:
  """'learner=host1,restorer=host2' -> {'learner': 'host1', ...}."""
  placement = {}
  for item in filter(None, (part.strip() for part in text.split(','))):
    group, sep, resource = item.partition('=')
    if not sep or not group or not resource:
      raise PlacementError(f'--placement {text!r}: expected '
                           'GROUP=RESOURCE[,GROUP=RESOURCE...]')
    placement[group.strip()] = resource.strip()
  return placement


def place(groups: Mapping[str, int], nodes: Sequence[ClusterNode],
          requested: Mapping[str, str]) -> Dict[Tuple[str, int], ClusterNode]:
  """(group, index) -> the cluster node that runs it.

  Args:
    groups: the program's node groups and how many nodes each has.
    nodes: the cluster's live nodes.
    requested: group -> the Ray resource its nodes must have.
  """
  if not nodes:
    raise PlacementError('the Ray cluster has no live nodes')
  unknown = sorted(set(requested) - set(groups))
  if unknown:
    raise PlacementError(f'--placement: the program has no group '
                         f'{", ".join(unknown)}; its groups: '
                         + ', '.join(groups))
  ordered = sorted(nodes, key=lambda n: (not n.is_head, n.ip))
  head = ordered[0]
  gpus = [n for n in ordered if n.num_gpus >= 1]

  def candidates(group: str) -> List[ClusterNode]:
    if group in requested:
      resource = requested[group]
      having = [n for n in ordered if n.resources.get(resource, 0) > 0]
      if not having:
        names = sorted({r for n in nodes for r in n.resources
                        if not r.startswith('node:')})
        raise PlacementError(
            f'--placement {group}={resource}: no node of the cluster has '
            f'resource {resource!r}; its resources: ' + ', '.join(names))
      return having
    if group == 'learner':
      return gpus[:1] or [head]
    if group in ('restorer', 'rollout'):
      return ordered
    return [head]

  placed = {}
  for group, count in groups.items():
    if group == 'replay' and group not in requested and 'learner' in groups:
      continue  # with the learner, below
    options = candidates(group)
    for index in range(count):
      placed[(group, index)] = options[index % len(options)]
  if 'replay' in groups and 'replay' not in requested:
    learner = placed.get(('learner', 0), head)
    for index in range(groups['replay']):
      placed[('replay', index)] = learner
  return placed
