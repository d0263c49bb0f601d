"""`abmrl dataset import` and `export`: the community's layouts (written here
with h5py and NumPy as their libraries write them), episodes split at
terminals and timeouts, bad input refused in one line naming file and
field, and a round trip through D4RL's arrays."""

import json
import os

import h5py
import numpy as np
import pytest

from abmrl.datasets import episodes
from abmrl.launch import cli
from tests.conftest import ENV_ID  # point_mass: observation 4, action 2

OBS, ACT = 4, 2


def _flat(n=25, terminal_at=(9,), timeout_at=(17,), seed=0):
  """D4RL's flat arrays: episodes end at the terminals and timeouts (and
  the last row)."""
  rng = np.random.default_rng(seed)
  terminals = np.zeros(n, bool)
  terminals[list(terminal_at)] = True
  timeouts = np.zeros(n, bool)
  timeouts[list(timeout_at)] = True
  return {'observations': rng.normal(size=(n, OBS)).astype(np.float32),
          'actions': rng.uniform(-1, 1, (n, ACT)).astype(np.float32),
          'rewards': rng.uniform(0, 1, n).astype(np.float32),
          'terminals': terminals, 'timeouts': timeouts}


def _write_h5(path, arrays):
  with h5py.File(path, 'w') as h5:
    for key, value in arrays.items():
      h5.create_dataset(key, data=value)
  return str(path)


def _import(tmp_path, source, fmt, *extra):
  out = str(tmp_path / 'imported')
  code = cli.main(['dataset', 'import', source, '--format', fmt, '--env',
                   ENV_ID, '--out', out, *extra])
  return code, out


def _read_all(directory):
  return [episodes.read_episode(p) for p in episodes.list_episodes(directory)]


def test_d4rl_file_splits_at_terminals_and_timeouts(tmp_path, capsys):
  arrays = _flat()
  source = _write_h5(tmp_path / 'd4rl.hdf5', arrays)
  code, out = _import(tmp_path, source, 'd4rl')
  assert code == 0
  assert 'wrote 3 episodes' in capsys.readouterr().out
  got = sorted(_read_all(out), key=lambda e: e.metadata['source_rows'])
  assert [e.metadata['source_rows'] for e in got] == [[0, 10], [10, 18],
                                                      [18, 25]]
  # Rows 0-9 end in a terminal: all 10 transitions kept, the terminal state
  # the last observation repeated, discount 0. Rows 10-17 end in a timeout:
  # the last transition has no next state in the file, 7 kept. The file's
  # end is a timeout too: 6 of 7.
  assert [e.num_transitions for e in got] == [10, 7, 6]
  first = got[0]
  np.testing.assert_allclose(first.observation[:10], arrays['observations'][:10])
  np.testing.assert_allclose(first.observation[10], arrays['observations'][9])
  np.testing.assert_allclose(first.action[:10], arrays['actions'][:10])
  np.testing.assert_allclose(first.reward[:10], arrays['rewards'][:10])
  assert first.discount[9] == 0 and np.all(first.discount[:9] == 1)
  second = got[1]
  np.testing.assert_allclose(second.observation[:8],
                             arrays['observations'][10:18])
  assert np.all(second.discount[:7] == 1)  # truncated, not terminated
  assert first.metadata['return'] == pytest.approx(
      float(arrays['rewards'][:10].sum()), rel=1e-5)
  assert first.metadata['behaviour'] == 'd4rl'  # the file's name
  assert first.metadata['source_format'] == 'd4rl'


def test_next_observations_and_behaviour_tags_from_the_file(tmp_path):
  arrays = _flat(n=20, terminal_at=(), timeout_at=(11,))
  arrays['next_observations'] = np.random.default_rng(1).normal(
      size=(20, OBS)).astype(np.float32)
  arrays['infos/behaviour'] = np.array([b'expert'] * 12 + [b'random'] * 8)
  npz = str(tmp_path / 'data.npz')
  np.savez(npz, **arrays)
  code, out = _import(tmp_path, npz, 'npz')
  assert code == 0
  got = {e.metadata['behaviour']: e for e in _read_all(out)}
  assert sorted(got) == ['expert', 'random']
  assert got['expert'].num_transitions == 12  # nothing dropped
  np.testing.assert_allclose(got['expert'].observation[12],
                             arrays['next_observations'][11])


def test_minari_dataset_directory(tmp_path):
  root = tmp_path / 'minari' / 'data'
  root.mkdir(parents=True)
  (root / 'metadata.json').write_text(json.dumps(
      {'dataset_id': 'pointmass/mixed-v0'}))
  rng = np.random.default_rng(2)
  with h5py.File(root / 'main_data.hdf5', 'w') as h5:
    for i, (t, terminated) in enumerate([(6, True), (4, False)]):
      group = h5.create_group(f'episode_{i}')
      group.attrs['id'] = i
      group.create_dataset('observations', data=rng.normal(size=(t + 1, OBS)))
      group.create_dataset('actions', data=rng.uniform(-1, 1, (t, ACT)))
      group.create_dataset('rewards', data=rng.uniform(size=t))
      ends = np.zeros(t, bool)
      ends[-1] = True
      group.create_dataset('terminations', data=ends & terminated)
      group.create_dataset('truncations', data=ends & (not terminated))
      if i == 1:
        group.attrs['behaviour'] = 'scripted'
  code, out = _import(tmp_path, str(tmp_path / 'minari'), 'minari')
  assert code == 0
  got = sorted(_read_all(out), key=lambda e: e.metadata['source_rows'])
  assert [e.num_transitions for e in got] == [6, 4]
  assert [e.metadata['behaviour'] for e in got] == ['pointmass/mixed-v0',
                                                    'scripted']
  assert got[0].discount[5] == 0 and got[1].discount[3] == 1


def test_d3rlpy_dump(tmp_path):
  """d3rlpy 2.x's ReplayBuffer.dump layout (d3rlpy/dataset/io.py)."""
  rng = np.random.default_rng(3)
  path = tmp_path / 'd3rlpy.h5'
  with h5py.File(path, 'w') as h5:
    h5.create_dataset('columns', data=['observations', 'actions', 'rewards',
                                       'terminated'])
    h5.create_dataset('num_episodes', data=2)
    for i, (t, terminated) in enumerate([(5, True), (8, False)]):
      h5.create_dataset(f'observations_{i}', data=rng.normal(size=(t, OBS)))
      h5.create_dataset(f'actions_{i}', data=rng.uniform(-1, 1, (t, ACT)))
      h5.create_dataset(f'rewards_{i}', data=rng.uniform(size=(t, 1)))
      h5.create_dataset(f'terminated_{i}', data=terminated)
    h5.create_dataset('version', data='2.1')
  code, out = _import(tmp_path, str(path), 'd3rlpy', '--behaviour', 'logged')
  assert code == 0
  got = sorted(_read_all(out), key=lambda e: e.metadata['source_rows'])
  assert [e.num_transitions for e in got] == [5, 7]
  assert {e.metadata['behaviour'] for e in got} == {'logged'}


def _error(capsys, code):
  assert code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith('abmrl: error: '), err
  return err[0]


def _bad(tmp_path, name, **changes):
  arrays = _flat()
  for key, value in changes.items():
    if value is None:
      del arrays[key]
    else:
      arrays[key] = value
  return _write_h5(tmp_path / name, arrays)


@pytest.mark.parametrize('changes, expected', [
    (dict(actions=None), "missing key 'actions'"),
    (dict(rewards=np.zeros(24, np.float32)), "'rewards' has 24 rows"),
    (dict(observations=np.zeros((25, 5), np.float32)),
     "'observations' rows have shape (5,)"),
    (dict(actions=np.zeros((25, 3), np.float32)),
     "'actions' rows have shape (3,)"),
    (dict(observations=np.zeros((0, OBS)), actions=np.zeros((0, ACT)),
          rewards=np.zeros(0), terminals=np.zeros(0), timeouts=np.zeros(0)),
     'empty'),
])
def test_bad_files_are_refused_in_one_line_and_nothing_is_written(
    tmp_path, capsys, changes, expected):
  source = _bad(tmp_path, 'bad.hdf5', **changes)
  code, out = _import(tmp_path, source, 'd4rl')
  line = _error(capsys, code)
  assert source in line and expected in line, line
  assert not os.path.exists(out)


def test_nonfinite_values_are_refused_or_their_episodes_dropped(tmp_path,
                                                                capsys):
  arrays = _flat()
  arrays['rewards'][12] = np.nan
  arrays['observations'][13, 1] = np.inf
  source = _write_h5(tmp_path / 'nan.hdf5', arrays)
  code, out = _import(tmp_path, source, 'd4rl')
  line = _error(capsys, code)
  assert "2 NaN or infinite values, the first in 'rewards' at row 12" in line
  assert not os.path.exists(out)
  code, out = _import(tmp_path, source, 'd4rl', '--drop-nonfinite')
  assert code == 0
  assert 'dropped 1 episodes' in capsys.readouterr().out
  assert sorted(e.metadata['source_rows'] for e in _read_all(out)) == [
      [0, 10], [18, 25]]


def test_actions_out_of_bounds_are_refused_or_clipped(tmp_path, capsys):
  arrays = _flat()
  arrays['actions'][3, 0] = 1.5
  arrays['actions'][20, 1] = -2.0
  source = _write_h5(tmp_path / 'wide.hdf5', arrays)
  line = _error(capsys, _import(tmp_path, source, 'd4rl')[0])
  assert "2 'actions' values outside" in line and 'row 3' in line
  code, out = _import(tmp_path, source, 'd4rl', '--clip-actions')
  assert code == 0 and 'clipped 2 action values' in capsys.readouterr().out
  first = min(_read_all(out), key=lambda e: e.metadata['source_rows'])
  assert first.action[3, 0] == 1.0


def test_truncated_and_missing_files_and_a_used_output(tmp_path, capsys):
  source = _write_h5(tmp_path / 'whole.hdf5', _flat())
  with open(source, 'rb') as f:
    head = f.read(os.path.getsize(source) // 3)
  truncated = tmp_path / 'truncated.hdf5'
  truncated.write_bytes(head)
  line = _error(capsys, _import(tmp_path, str(truncated), 'd4rl')[0])
  assert 'truncated.hdf5' in line and 'truncated or corrupt' in line
  (tmp_path / 'empty.hdf5').write_bytes(b'')
  assert 'empty file' in _error(
      capsys, _import(tmp_path, str(tmp_path / 'empty.hdf5'), 'd4rl')[0])
  assert 'no such file' in _error(
      capsys, _import(tmp_path, str(tmp_path / 'gone.hdf5'), 'd4rl')[0])
  used = tmp_path / 'imported'
  used.mkdir()
  (used / 'notes.txt').write_text('mine')
  line = _error(capsys, _import(tmp_path, source, 'd4rl')[0])
  assert 'already holds other data' in line
  assert os.listdir(used) == ['notes.txt']


@pytest.mark.parametrize('fmt, name', [('d4rl', 'out.hdf5'),
                                       ('npz', 'out.npz')])
def test_export_then_import_gives_the_same_episodes(small_dataset, tmp_path,
                                                    capsys, fmt, name):
  exported = str(tmp_path / name)
  assert cli.main(['dataset', 'export', small_dataset, '--format', fmt,
                   '--out', exported]) == 0
  assert 'wrote 960 transitions' in capsys.readouterr().out
  code, out = _import(tmp_path, exported, fmt)
  assert code == 0
  before = sorted(_read_all(small_dataset),
                  key=lambda e: (e.metadata['behaviour'],
                                 e.metadata['episode_index']))
  after = sorted(_read_all(out), key=lambda e: e.metadata['source_rows'])
  assert len(after) == len(before) == 8
  # Export writes the dataset's episodes in list_episodes order.
  order = [episodes.read_episode(p) for p in
           episodes.list_episodes(small_dataset)]
  for original, imported in zip(order, after):
    np.testing.assert_allclose(imported.observation, original.observation)
    np.testing.assert_allclose(imported.action, original.action)
    np.testing.assert_allclose(imported.reward, original.reward)
    np.testing.assert_allclose(imported.discount, original.discount)
    assert imported.metadata['behaviour'] == original.metadata['behaviour']
  del before


def test_rlds_export_reads_back_with_tfds(small_dataset, tmp_path, capsys):
  """TensorFlow Datasets' own reader loads the export as RLDS episodes."""
  from tensorflow_datasets.core import read_only_builder  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / 'rlds')
  assert cli.main(['dataset', 'export', small_dataset, '--format', 'rlds',
                   '--out', out]) == 0
  assert 'wrote 960 transitions' in capsys.readouterr().out
  builder = read_only_builder.builder_from_directory(
      os.path.join(out, 'abmrl_episodes', '1.0.0'))
  read = list(builder.as_dataset(split='train'))
  assert len(read) == 8
  originals = {(e.metadata['behaviour'], e.metadata['episode_index']): e
               for e in _read_all(small_dataset)}
  for example in read:
    key = (example['behaviour'].numpy().decode(),
           int(example['episode_index'].numpy()))
    original = originals[key]
    steps = list(example['steps'])
    assert len(steps) == len(original.observation)
    observation = np.stack([s['observation'].numpy() for s in steps])
    np.testing.assert_allclose(observation, original.observation)
    np.testing.assert_allclose([s['reward'].numpy() for s in steps],
                               original.reward)
    flags = [(bool(s['is_first']), bool(s['is_last'])) for s in steps]
    assert flags[0] == (True, False) and flags[-1] == (False, True)
    assert float(example['episode_return']) == pytest.approx(
        original.metadata['return'], rel=1e-5)
  # A second export to the same place is refused, the first left whole.
  assert cli.main(['dataset', 'export', small_dataset, '--format', 'rlds',
                   '--out', out]) == 2
  assert 'already exists' in capsys.readouterr().err
