"""The offline-RL community's dataset files in and out of abmrl datasets.

Import (`abmrl dataset import SRC --format F --env ID --out DIR`):

  d4rl     one HDF5 file of flat arrays, one row per transition:
           observations [N, O], actions [N, A], rewards [N], terminals [N],
           optional timeouts [N], next_observations [N, O] and infos/*
           (D4RL's layout; `infos/behaviour` [N], if present, tags each
           episode by its first row)
  npz      the same flat arrays in a NumPy .npz file
  minari   a Minari dataset directory (data/main_data.hdf5, metadata.json) or
           its main_data.hdf5: groups episode_<i> of observations [T+1, O],
           actions [T, A], rewards [T], terminations [T], truncations [T]
  d3rlpy   d3rlpy's own dump (ReplayBuffer.dump, dataset version 2.1):
           observations_<i> [T, O], actions_<i> [T, A], rewards_<i> [T, 1],
           terminated_<i>, with columns, num_episodes and version

Flat arrays end an episode at each terminal or timeout (and at the last
row). Without next_observations an episode's last next state is not in the
file: an episode ending in a terminal keeps its last transition with the
last observation repeated as the terminal state (its discount is 0, so no
value is ever read there), and one ending in a timeout drops its last
transition (it could not be bootstrapped). With next_observations nothing
is lost.

Every file is checked whole before anything is written (keys, lengths,
shapes against the environment, finite values, action bounds), in a first
pass over its episodes; a second pass writes each episode atomically with
the project's EnvLogger writer, so an interrupted import leaves only whole
episodes. HDF5 files are read an episode at a time (memory: one episode,
plus the per-row end flags); NumPy loads a .npz's arrays whole.

Export (`abmrl dataset export DIR --format d4rl|npz|rlds --out PATH`): the
inverse. d4rl and npz: D4RL's flat arrays with next_observations, so the
file round-trips. rlds: a TensorFlow Datasets directory in RLDS's episode
layout (each example an episode: `steps` of observation, action, reward,
discount, is_first, is_last, is_terminal; and its behaviour, index and
return), which `tfds.builder_from_directory(PATH/abmrl_episodes/1.0.0)`
reads. It is made with TFDS 4.4.0 (the version Acme 0.4 pins, which has no
`tfds.rlds` yet) by a generator builder of that layout.
"""

import dataclasses
import json
import os
from typing import Callable, Dict, FrozenSet, Iterator, List, Optional

import numpy as np

from abmrl.datasets import episodes as episodes_lib

IMPORT_FORMATS = ('d4rl', 'npz', 'minari', 'd3rlpy')
EXPORT_FORMATS = ('d4rl', 'npz', 'rlds')
RLDS_NAME = 'abmrl_episodes'  # the TFDS dataset name of an rlds export
_FLAT_REQUIRED = ('observations', 'actions', 'rewards', 'terminals')


class ImportFailure(episodes_lib.DatasetError):
  """A source file that cannot be imported: names the file and the field."""

  def __init__(self, path: str, problem: str):
    super().__init__(f'{path}: {problem}')


@dataclasses.dataclass
class SourceEpisode:
  """One episode of a source file, before it is written."""
  observations: np.ndarray  # [T+1, O], s_0 … s_T
  actions: np.ndarray  # [T, A]
  rewards: np.ndarray  # [T]
  terminated: bool  # ended in a terminal state (else a timeout)
  behaviour: Optional[str]
  rows: tuple  # (first, last + 1) rows of the source it came from


# --- reading -----------------------------------------------------------------


def _h5py_file(path: str):
  import h5py  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(path):
    raise ImportFailure(path, 'no such file')
  if os.path.getsize(path) == 0:
    raise ImportFailure(path, 'empty file')
  try:
    return h5py.File(path, 'r')
  except OSError as e:
    raise ImportFailure(path, 'not a readable HDF5 file (truncated or '
                        f'corrupt): {e}') from None


def _read_array(path: str, group, key: str) -> np.ndarray:
  if key not in group:
    raise ImportFailure(path, f'missing key {key!r} (it has '
                        + ', '.join(sorted(group.keys())) + ')')
  return _rows(path, key, group[key])


def _rows(path: str, key: str, array, start=None, stop=None) -> np.ndarray:
  """array[start:stop] (all of it by default) from an open HDF5 dataset or
  a NumPy array; ImportFailure where the file cannot give it."""
  try:
    if start is None and stop is None:
      return np.asarray(array[()])
    return np.asarray(array[start:stop])
  except (OSError, KeyError, ValueError) as e:
    raise ImportFailure(path, f'cannot read {key!r} (truncated or corrupt '
                        f'file): {e}') from None


_FLAT_OPTIONAL = ('timeouts', 'next_observations', 'infos/behaviour')


def _flat_source(path: str, fmt: str) -> Iterator[SourceEpisode]:
  """D4RL's flat arrays, from an HDF5 file (d4rl: read an episode's rows at
  a time) or a .npz file (npz: NumPy loads each array whole)."""
  if fmt == 'npz':
    if not os.path.isfile(path):
      raise ImportFailure(path, 'no such file')
    try:
      with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        missing = [k for k in _FLAT_REQUIRED if k not in keys]
        if missing:
          raise ImportFailure(path, f'missing key {missing[0]!r} (it has '
                              + ', '.join(sorted(keys)) + ')')
        arrays = {k: np.asarray(data[k]) for k in _FLAT_REQUIRED
                  + _FLAT_OPTIONAL if k in keys}
    except (OSError, ValueError, EOFError) as e:
      raise ImportFailure(path, f'not a readable .npz file (truncated or '
                          f'corrupt): {e}') from None
    yield from _flat_episodes(path, arrays)
    return
  with _h5py_file(path) as h5:
    for key in _FLAT_REQUIRED:
      if key not in h5:
        raise ImportFailure(path, f'missing key {key!r} (it has '
                            + ', '.join(sorted(h5.keys())) + ')')
    yield from _flat_episodes(path, {k: h5[k] for k in _FLAT_REQUIRED
                                     + _FLAT_OPTIONAL if k in h5})


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def _flat_episodes(path: str, arrays) -> Iterator[SourceEpisode]:
  """The episodes of flat arrays (HDF5 datasets or NumPy arrays), each
  read when it is reached; only the per-row end flags are read whole."""
  n = len(arrays['observations'])
  if n == 0:
    raise ImportFailure(path, "empty: no rows in 'observations'")
  for key, array in arrays.items():
    if len(array) != n:
      raise ImportFailure(path, f'{key!r} has {len(array)} rows, '
                          f"'observations' {n}")
  terminals = _rows(path, 'terminals', arrays['terminals']).astype(
      bool).reshape(n)
  timeouts = (_rows(path, 'timeouts', arrays['timeouts']).astype(
      bool).reshape(n) if 'timeouts' in arrays else np.zeros(n, bool))
  ends = np.flatnonzero(terminals | timeouts)
  if not len(ends) or ends[-1] != n - 1:
    ends = np.append(ends, n - 1)
  def rows(key, start, stop):
    return _rows(path, key, arrays[key], start, stop)
  start = 0
  for stop in ends:  # rows start … stop, inclusive
    terminal = bool(terminals[stop])
    observations = rows('observations', start, stop + 1)
    if 'next_observations' in arrays:
      observations = np.concatenate(
          [observations, rows('next_observations', stop, stop + 1)])
      last = stop + 1
    elif terminal:
      observations = np.concatenate([observations, observations[-1:]])
      last = stop + 1
    else:
      last = stop
    if last > start:
      yield SourceEpisode(
          observations=observations, actions=rows('actions', start, last),
          rewards=rows('rewards', start, last).reshape(-1),
          terminated=terminal,
          behaviour=(_text(rows('infos/behaviour', start, start + 1)[0])
                     if 'infos/behaviour' in arrays else None),
          rows=(start, stop + 1))
    start = stop + 1


def _minari_file(path: str) -> str:
  return (os.path.join(path, 'data', 'main_data.hdf5') if os.path.isdir(path)
          else path)


def _minari_metadata(path: str) -> Dict:
  metadata_path = os.path.join(os.path.dirname(_minari_file(path)),
                               'metadata.json')
  if not os.path.exists(metadata_path):
    return {}
  try:
    with open(metadata_path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise ImportFailure(metadata_path, f'not readable JSON: {e}') from None


def source_env_name(path: str, fmt: str) -> Optional[str]:
  """The environment the file says its data came from, if it says:
  Minari's env_spec id, or a D4RL file's `env`/`env_name` attribute."""
  try:
    if fmt == 'minari':
      spec = _minari_metadata(path).get('env_spec')
      if isinstance(spec, str):
        spec = json.loads(spec)
      return spec.get('id') if isinstance(spec, dict) else None
    if fmt == 'd4rl':
      with _h5py_file(path) as h5:
        for key in ('env', 'env_name', 'env_id'):
          if key in h5.attrs:
            return _text(h5.attrs[key])
  except (ImportFailure, ValueError, AttributeError):
    return None
  return None


def _minari_episodes(path: str) -> Iterator[SourceEpisode]:
  path = _minari_file(path)
  tag = _minari_metadata(path).get('dataset_id')
  row = 0
  with _h5py_file(path) as h5:
    names = sorted((k for k in h5.keys() if k.startswith('episode_')),
                   key=lambda k: int(k.split('_')[-1]))
    if not names:
      raise ImportFailure(path, 'empty: no episode_<i> groups')
    for name in names:
      group = h5[name]
      where = f'{path}:{name}'
      arrays = {k: _read_array(where, group, k) for k in (
          'observations', 'actions', 'rewards', 'terminations',
          'truncations')}
      t = len(arrays['actions'])
      if len(arrays['observations']) != t + 1:
        raise ImportFailure(where, f"'observations' has "
                            f"{len(arrays['observations'])} rows, expected "
                            f"{t + 1} (one more than 'actions')")
      for key in ('rewards', 'terminations', 'truncations'):
        if len(arrays[key]) != t:
          raise ImportFailure(where, f'{key!r} has {len(arrays[key])} rows, '
                              f"'actions' {t}")
      behaviour = group.attrs.get('behaviour', tag)
      yield SourceEpisode(
          observations=arrays['observations'], actions=arrays['actions'],
          rewards=arrays['rewards'].reshape(-1),
          terminated=bool(t and arrays['terminations'][-1]),
          behaviour=None if behaviour is None else _text(behaviour),
          rows=(row, row + t))
      row += t


def _d3rlpy_episodes(path: str) -> Iterator[SourceEpisode]:
  row = 0
  with _h5py_file(path) as h5:
    version = _text(_read_array(path, h5, 'version')[()])
    if version != '2.1':
      raise ImportFailure(path, f"'version' is {version!r}; d3rlpy's dataset "
                          'version 2.1 is read')
    count = int(_read_array(path, h5, 'num_episodes'))
    if count == 0:
      raise ImportFailure(path, "empty: 'num_episodes' is 0")
    for i in range(count):
      observations = _read_array(path, h5, f'observations_{i}')
      actions = _read_array(path, h5, f'actions_{i}')
      rewards = _read_array(path, h5, f'rewards_{i}').reshape(-1)
      terminated = bool(_read_array(path, h5, f'terminated_{i}'))
      t = len(observations)
      for key, array in (('actions', actions), ('rewards', rewards)):
        if len(array) != t:
          raise ImportFailure(path, f"'{key}_{i}' has {len(array)} rows, "
                              f"'observations_{i}' {t}")
      # d3rlpy keeps no state after the last action: as D4RL without
      # next_observations.
      if terminated:
        observations = np.concatenate([observations, observations[-1:]])
        last = t
      else:
        last = t - 1
      if last > 0:
        yield SourceEpisode(observations, actions[:last], rewards[:last],
                            terminated, None, (row, row + t))
      row += t


class Source:
  """A source file's episodes, read one at a time on each pass over it (an
  import checks every episode before it writes the first)."""

  def __init__(self, path: str, fmt: str):
    if fmt not in IMPORT_FORMATS:
      raise ValueError(f'unknown format {fmt!r}; one of '
                       + ', '.join(IMPORT_FORMATS))
    self.path, self.fmt = path, fmt

  def __iter__(self) -> Iterator[SourceEpisode]:
    if self.fmt in ('d4rl', 'npz'):
      return _flat_source(self.path, self.fmt)
    if self.fmt == 'minari':
      return _minari_episodes(self.path)
    return _d3rlpy_episodes(self.path)


# --- checking ----------------------------------------------------------------


@dataclasses.dataclass
class Checked:
  """What the checks found: the episodes to write and what changes."""
  kept: int
  dropped: FrozenSet[int]  # episodes (by order in the file) to leave out
  clipped_actions: int  # action values outside the bounds, to clip


def check(source: Source, spec: episodes_lib.DatasetSpec,
          drop_nonfinite: bool = False, clip_actions: bool = False) -> Checked:
  """One pass over the source: refuses (ImportFailure) episodes that do not
  fit the environment's spec, non-finite episodes unless `drop_nonfinite`,
  actions out of bounds unless `clip_actions`."""
  path = source.path
  low = np.asarray(spec.action_minimum, np.float32)
  high = np.asarray(spec.action_maximum, np.float32)
  count, dropped = 0, set()
  bad_count, bad_field, bad_row = 0, None, None
  outside, outside_row = 0, None
  for index, episode in enumerate(source):
    count += 1
    for name, shape in (('observations', spec.observation_shape),
                        ('actions', spec.action_shape)):
      got = tuple(getattr(episode, name).shape[1:])
      if got != tuple(shape):
        raise ImportFailure(path, f'{name!r} rows have shape {got} (row '
                            f'{episode.rows[0]} on), but {spec.env_id} has '
                            f'{tuple(shape)}')
    for name in ('observations', 'actions', 'rewards'):
      values = getattr(episode, name)
      try:
        finite = np.isfinite(values.astype(np.float64))
      except (TypeError, ValueError):
        raise ImportFailure(path, f'{name!r} is not numeric '
                            f'({values.dtype})') from None
      if not finite.all():
        dropped.add(index)
        bad_count += int((~finite).sum())
        row = episode.rows[0] + int(np.argwhere(~finite)[0][0])
        if bad_row is None or row < bad_row:
          bad_field, bad_row = name, row
    if index not in dropped:
      out = (episode.actions < low - 1e-6) | (episode.actions > high + 1e-6)
      if out.any():
        outside += int(out.sum())
        if outside_row is None:
          outside_row = episode.rows[0] + int(np.argwhere(out)[0][0])
  if not count:
    raise ImportFailure(path, 'no episode with a transition in it')
  if bad_count and not drop_nonfinite:
    raise ImportFailure(path, f'{bad_count} NaN or infinite values, the '
                        f'first in {bad_field!r} at row {bad_row} '
                        '(--drop-nonfinite drops those episodes)')
  if len(dropped) == count:
    raise ImportFailure(path, 'every episode holds NaN or infinite values')
  if outside and not clip_actions:
    raise ImportFailure(path, f"{outside} 'actions' values outside "
                        f'{spec.env_id}\'s bounds [{low.min():g}, '
                        f'{high.max():g}], the first at row {outside_row} '
                        '(--clip-actions clips them)')
  return Checked(count - len(dropped), frozenset(dropped), outside)


# --- writing -----------------------------------------------------------------


def _require_new_output(out: str) -> None:
  if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
    raise episodes_lib.DatasetError(
        f'{out} already holds other data; import writes a new dataset (give '
        'an empty or new directory)')


def import_file(path: str, fmt: str, env_id: str, out: str,
                behaviour: Optional[str] = None, drop_nonfinite: bool = False,
                clip_actions: bool = False,
                progress: Optional[Callable[[str], None]] = print) -> Checked:
  """Reads, checks and writes a source file as a new dataset in `out`.

  Episode tags: the file's own, else `behaviour`, else the file's name.
  """
  import dm_env  # pylint: disable=g-import-not-at-top
  from abmrl import environments  # pylint: disable=g-import-not-at-top
  _require_new_output(out)
  env = environments.make(env_id, seed=0)
  spec = episodes_lib.DatasetSpec.from_environment(env_id, env)
  source = Source(path, fmt)
  checked = check(source, spec, drop_nonfinite, clip_actions)
  named = source_env_name(path, fmt)
  if progress and named and env_id.startswith('gym:') and (
      named.split('-')[0].lower() == env_id[4:].split('-')[0].lower()
      and named != env_id[4:]):
    progress(f'note: the data names {named}; {env_id} is used, and returns '
             f'(and scores) may differ from those of {named}')
  default_tag = behaviour or os.path.splitext(
      os.path.basename(os.path.normpath(path)))[0]
  low = np.asarray(spec.action_minimum, np.float32)
  high = np.asarray(spec.action_maximum, np.float32)
  writer = episodes_lib.EpisodeWriter(out, env_id, env)
  total, i = checked.kept, 0
  report_every = max(1, total // 10)
  try:
    for index, episode in enumerate(source):
      if index in checked.dropped:
        continue
      observations = episode.observations.astype(np.float32)
      actions = np.clip(episode.actions, low, high).astype(np.float32)
      writer.begin_episode(dm_env.restart(observations[0]),
                           behaviour=episode.behaviour or default_tag)
      t = len(episode.actions)
      for step in range(t):
        reward = np.float32(episode.rewards[step])
        observation = observations[step + 1]
        if step < t - 1:
          timestep = dm_env.transition(reward, observation)
        elif episode.terminated:
          timestep = dm_env.termination(reward, observation)
        else:
          timestep = dm_env.truncation(reward, observation)
        writer.append(actions[step], timestep)
      writer.end_episode(source=os.path.abspath(path), source_format=fmt,
                         source_rows=list(map(int, episode.rows)))
      i += 1
      if progress and (i % report_every == 0 or i == total):
        progress(f'imported {i}/{total} episodes')
  finally:
    writer.close()
  return checked


def export(directory: str, fmt: str, out: str,
           progress: Optional[Callable[[str], None]] = print) -> int:
  """Writes every episode of a dataset to `out`, atomically: D4RL's flat
  arrays (with next_observations and infos/behaviour) as an HDF5 file
  (d4rl, appended an episode at a time) or .npz (npz, held whole: np.savez
  takes whole arrays), or an RLDS directory (rlds, an episode at a time).
  Returns the number of transitions."""
  if fmt not in EXPORT_FORMATS:
    raise ValueError(f'unknown export format {fmt!r}; one of '
                     + ', '.join(EXPORT_FORMATS))
  spec = episodes_lib.read_spec(directory)
  paths = episodes_lib.list_episodes(directory)
  if not paths:
    raise episodes_lib.DatasetError(f'{directory} holds no episodes')
  if os.path.exists(out):
    raise episodes_lib.DatasetError(f'{out} already exists; export writes a '
                                    'new file or directory')
  if fmt == 'rlds':
    return _export_rlds(spec, paths, out)
  partial = out + '.partial'
  if fmt == 'npz':  # np.savez takes whole arrays: they are held
    parts = {}
    for rows in _flat_rows_of(paths, progress):
      for key, value in rows.items():
        parts.setdefault(key, []).append(value)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    with open(partial, 'wb') as f:
      np.savez(f, **arrays)
    os.replace(partial, out)
    return len(arrays['rewards'])
  import h5py  # pylint: disable=g-import-not-at-top
  total = 0
  with h5py.File(partial, 'w') as h5:  # appended an episode at a time
    h5.attrs['env_id'] = spec.env_id
    for rows in _flat_rows_of(paths, progress):
      t = len(rows['rewards'])
      for key, value in rows.items():
        if key not in h5:
          h5.create_dataset(
              key, shape=(0,) + value.shape[1:],
              maxshape=(None,) + value.shape[1:], chunks=True,
              dtype=(h5py.string_dtype() if key == 'infos/behaviour'
                     else value.dtype))
        h5[key].resize(total + t, axis=0)
        h5[key][total:total + t] = value
      total += t
  os.replace(partial, out)
  return total


def _flat_rows_of(paths: List[str], progress) -> Iterator[Dict[str, np.ndarray]]:
  """D4RL's flat arrays of each episode in turn."""
  for i, path in enumerate(paths):
    episode = episodes_lib.read_episode(path)
    t = episode.num_transitions
    terminals = episode.discount[:-1] == 0
    timeouts = np.zeros(t, bool)
    timeouts[-1] = not terminals[-1]
    yield {'observations': episode.observation[:-1],
           'next_observations': episode.observation[1:],
           'actions': episode.action[:-1], 'rewards': episode.reward[:-1],
           'terminals': terminals, 'timeouts': timeouts,
           'infos/behaviour': np.array(
               [episode.metadata.get('behaviour', '')] * t, dtype='S')}
    if progress and (i + 1) % max(1, len(paths) // 10) == 0:
      progress(f'read {i + 1}/{len(paths)} episodes')


def _export_rlds(spec: episodes_lib.DatasetSpec, paths: List[str],
                 out: str) -> int:
  """An RLDS episode dataset of TFDS's layout in `out` (written beside it,
  renamed when complete)."""
  import shutil  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  observation_size, = spec.observation_shape
  action_size, = spec.action_shape
  transitions = [0]

  # Not registered by name: an export is read back from its directory.
  class AbmrlEpisodes(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """The dataset's episodes, one example each (RLDS's layout)."""
    VERSION = tfds.core.Version('1.0.0')
    # Nothing to download: no checksums file to look for beside this module
    # (TFDS would resolve the module's folder, which fails for abmrl's
    # namespace package).
    url_infos = None

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self,
          description=f'abmrl episodes of {spec.env_id}',
          features=tfds.features.FeaturesDict({
              'steps': tfds.features.Dataset({
                  'observation': tfds.features.Tensor(
                      shape=(observation_size,), dtype=tf.float32),
                  'action': tfds.features.Tensor(shape=(action_size,),
                                                 dtype=tf.float32),
                  'reward': tf.float32, 'discount': tf.float32,
                  'is_first': tf.bool, 'is_last': tf.bool,
                  'is_terminal': tf.bool}),
              'behaviour': tfds.features.Text(),
              'episode_index': tf.int64,
              'episode_return': tf.float32}))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {'train': self._generate_examples()}

    def _generate_examples(self):
      for key, path in enumerate(paths):
        episode = episodes_lib.read_episode(path)
        rows = len(episode.observation)
        transitions[0] += rows - 1
        # RLDS's step t: s_t, a_t and the r_t, d_t that followed it; the last
        # step holds s_T, zero action, reward and discount (as our rows).
        yield key, {
            'steps': {
                'observation': episode.observation,
                'action': episode.action, 'reward': episode.reward,
                'discount': episode.discount,
                'is_first': np.arange(rows) == 0,
                'is_last': np.arange(rows) == rows - 1,
                'is_terminal': (np.arange(rows) == rows - 1)
                               & (episode.discount[-2] == 0)},
            'behaviour': str(episode.metadata.get('behaviour', '')),
            'episode_index': int(episode.metadata.get('episode_index', key)),
            'episode_return': float(episode.metadata['return'])}

  partial = out + '.partial'
  shutil.rmtree(partial, ignore_errors=True)
  builder = AbmrlEpisodes(data_dir=partial)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      compute_stats=tfds.download.ComputeStatsMode.SKIP))
  shutil.rmtree(os.path.join(partial, 'downloads'), ignore_errors=True)
  os.replace(partial, out)
  return transitions[0]
