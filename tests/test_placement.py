"""Where `--launch ray` puts each node group (launch/cluster.py), on
described clusters: no Ray needed."""

import pytest

from abmrl.launch import cluster

GROUPS = {'replay': 1, 'counter': 1, 'restorer': 4, 'learner': 1,
          'evaluator': 2, 'stopper': 1}


def _node(ip, head=False, **resources):
  return cluster.ClusterNode(node_id=f'id-{ip}', ip=ip, is_head=head,
                             resources={'CPU': 2.0, **resources})


HEAD = _node('10.0.0.1', head=True, host1=1)
WORKERS = [_node('10.0.0.2', host2=1), _node('10.0.0.3', host3=1)]


def test_defaults_learner_and_replay_on_the_head_restorers_spread():
  placed = cluster.place(GROUPS, [WORKERS[1], HEAD, WORKERS[0]], {})
  assert placed[('learner', 0)] == HEAD and placed[('replay', 0)] == HEAD
  assert [placed[('restorer', i)].ip for i in range(4)] == [
      '10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1']
  assert [placed[('evaluator', i)] for i in range(2)] == [HEAD, HEAD]
  assert placed[('counter', 0)] == HEAD == placed[('stopper', 0)]


def test_the_learner_goes_to_a_gpu_and_replay_with_it():
  """A fake GPU resource (as `ray start --num-gpus=1` declares one)."""
  gpu = _node('10.0.0.9', GPU=1.0)
  placed = cluster.place(GROUPS, [HEAD, *WORKERS, gpu], {})
  assert placed[('learner', 0)] == gpu and placed[('replay', 0)] == gpu
  assert placed[('evaluator', 0)] == HEAD


def test_requested_resources_place_and_spread_groups():
  placed = cluster.place(GROUPS, [HEAD, *WORKERS],
                         cluster.parse('restorer=host2, evaluator=CPU,'
                                       'replay=host3'))
  assert {placed[('restorer', i)].ip for i in range(4)} == {'10.0.0.2'}
  assert [placed[('evaluator', i)].ip for i in range(2)] == [
      '10.0.0.1', '10.0.0.2']
  assert placed[('replay', 0)].ip == '10.0.0.3'  # asked for: not with the learner
  assert placed[('learner', 0)] == HEAD


@pytest.mark.parametrize('text, expected', [
    ('learner=gpu_box', "no node of the cluster has resource 'gpu_box'"),
    ('learnr=host1', 'the program has no group learnr'),
    ('learner', 'expected GROUP=RESOURCE'),
])
def test_a_placement_that_cannot_be_met_is_one_clear_error(text, expected):
  with pytest.raises(cluster.PlacementError, match=expected):
    cluster.place(GROUPS, [HEAD, *WORKERS], cluster.parse(text))


def test_the_learner_finds_cuda_wheels_where_installed(tmp_path):
  from abmrl.launch import run as run_lib
  assert run_lib.cuda_library_env(str(tmp_path)) == {}
  for name in ('cudnn', 'cublas'):
    (tmp_path / 'nvidia' / name / 'lib').mkdir(parents=True)
  path = run_lib.cuda_library_env(str(tmp_path))['LD_LIBRARY_PATH']
  assert path.split(':')[:2] == [str(tmp_path / 'nvidia' / 'cublas' / 'lib'),
                                 str(tmp_path / 'nvidia' / 'cudnn' / 'lib')]


def test_hosts_without_the_same_abmrl_or_the_shared_folders_are_one_line(
    tmp_path):
  # The checks `--launch ray` makes before it starts a node, on real node
  # processes of this host (no Ray: called directly, as local_mp does).
  from abmrl.launch import processes  # pylint: disable=g-import-not-at-top
  from abmrl.launch import ray_launch  # pylint: disable=g-import-not-at-top
  handles = {('learner', 0): processes.NodeProcess('learner/0'),
             ('restorer', 0): processes.NodeProcess('restorer/0')}
  try:
    call = processes.local_call(handles)
    hosts = dict(zip(handles, call('host', list(handles), '10.0.0.2')))
    version = processes.abmrl_version()
    assert all(host['version'] == version for host in hosts.values())
    ray_launch.check_hosts(hosts, call, [str(tmp_path)], version)
    with pytest.raises(cluster.ClusterError,
                       match=r"^host 10\.0\.0\.2 \(node learner/0\) cannot see "
                       rf"{tmp_path}/gone: the hosts must share a filesystem"):
      ray_launch.check_hosts(hosts, call, [str(tmp_path), str(tmp_path / 'gone')],
                             version)
    hosts[('restorer', 0)] = dict(hosts[('restorer', 0)], version='0.0.9+old')
    with pytest.raises(cluster.ClusterError,
                       match=r'^host 10\.0\.0\.2 \(node restorer/0\) has abmrl '
                       r'0\.0\.9\+old, the launcher .*: every host needs the '
                       'same version'):
      ray_launch.check_hosts(hosts, call, [str(tmp_path)], version)
  finally:
    for handle in handles.values():
      handle.kill()
