"""Logged episodes on disk: an EnvLogger (Riegeli) directory per episode.

Layout of a dataset directory:

  DIR/dataset.json                 environment id and observation/action specs
  DIR/episodes/<behaviour>/<n>/    one EnvLogger directory holding one episode

Each episode is written into `<n>.partial/` and renamed when complete, so an
interrupted write never leaves an episode that looks valid but is not: readers
ignore `*.partial`, and the next writer removes them. Several processes can
append to one behaviour tag (the actors of a collection): each writes
`pending-<uuid>.partial/` and claims the tag's next index only when its
episode is complete, under a lock file in the tag's directory. Episode metadata
(environment id, behaviour tag, episode index, return, length) is stored as
EnvLogger episode metadata.

Steps follow EnvLogger's convention: step 0 holds the first timestep, step t
holds timestep t and the action that produced it.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import shutil
import uuid
from typing import Any, Callable, Dict, List, Optional

import dm_env
from dm_env import specs
import numpy as np

DATASET_FILE = 'dataset.json'
EPISODES_DIR = 'episodes'
PARTIAL_SUFFIX = '.partial'
FORMAT_VERSION = 1


class DatasetError(ValueError):
  """A dataset directory that is missing, empty, corrupt or mismatched."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What a dataset's episodes look like; must match the environment's."""
  env_id: str
  observation_shape: tuple
  action_shape: tuple
  action_minimum: tuple
  action_maximum: tuple

  @classmethod
  def from_environment(cls, env_id: str, env: dm_env.Environment):
    obs_spec, action_spec = env.observation_spec(), env.action_spec()
    return cls(
        env_id=env_id,
        observation_shape=tuple(obs_spec.shape),
        action_shape=tuple(action_spec.shape),
        action_minimum=tuple(np.broadcast_to(
            action_spec.minimum, action_spec.shape).astype(float).tolist()),
        action_maximum=tuple(np.broadcast_to(
            action_spec.maximum, action_spec.shape).astype(float).tolist()))

  def to_json(self) -> Dict[str, Any]:
    return dict(dataclasses.asdict(self), format_version=FORMAT_VERSION)

  @classmethod
  def from_json(cls, data: Dict[str, Any]) -> 'DatasetSpec':
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v
                  for k, v in data.items() if k in fields})

  def mismatch(self, other: 'DatasetSpec',
               same_env: bool = True) -> Optional[str]:
    """Describes how `other` (an environment's or another dataset's spec)
    differs, or None; with `same_env`, a different environment id is a
    difference too."""
    if same_env and self.env_id != other.env_id:
      return f'it holds {self.env_id} data, not {other.env_id}'
    for name in ('observation_shape', 'action_shape'):
      if getattr(self, name) != getattr(other, name):
        return (f'{name.replace("_", " ")} {getattr(self, name)} in the data '
                f'but {getattr(other, name)} in {other.env_id}')
    if not (np.allclose(self.action_minimum, other.action_minimum) and
            np.allclose(self.action_maximum, other.action_maximum)):
      return f'action bounds differ from those of {other.env_id}'
    return None

  def require_match(self, other: 'DatasetSpec', action: str,
                    same_env: bool = True) -> None:
    """Raises DatasetError '<action>: <what differs>' unless `other` matches
    (the one check every reader, writer and merge of a dataset makes)."""
    problem = self.mismatch(other, same_env)
    if problem:
      raise DatasetError(f'{action}: {problem}')


@dataclasses.dataclass
class Episode:
  """One episode as arrays; row t is the state s_t and what followed it.

  observation[t] is s_t (T+1 rows); action[t], reward[t], discount[t] are
  a_t, r(s_t, a_t) and the discount on reaching s_{t+1}. The last row has
  zero action, reward and discount (there is no transition out of s_T).
  """
  observation: np.ndarray  # [T+1, O]
  action: np.ndarray  # [T+1, A]
  reward: np.ndarray  # [T+1]
  discount: np.ndarray  # [T+1]
  metadata: Dict[str, Any]

  @property
  def num_transitions(self) -> int:
    return len(self.observation) - 1

  @classmethod
  def from_transitions(cls, observation, action, reward, discount,
                       metadata: Dict[str, Any]) -> 'Episode':
    """An episode from its T+1 observations and T transitions' actions,
    rewards and discounts: the last row gets the zero placeholders."""
    action = np.asarray(action, np.float32)
    return cls(observation=np.asarray(observation, np.float32),
               action=np.concatenate([action, np.zeros_like(action[:1])]),
               reward=np.append(np.asarray(reward, np.float32),
                                np.float32(0)),
               discount=np.append(np.asarray(discount, np.float32),
                                  np.float32(0)),
               metadata=metadata)


def _safe_tag(tag: str) -> str:
  return re.sub(r'[^A-Za-z0-9_.=-]+', '_', tag) or 'untagged'


def read_spec(directory: str) -> DatasetSpec:
  """Reads a dataset's spec; DatasetError names the problem."""
  path = os.path.join(directory, DATASET_FILE)
  if not os.path.isdir(directory):
    raise DatasetError(f'dataset directory {directory} does not exist')
  if not os.path.exists(path):
    raise DatasetError(f'{directory} is not a dataset: {DATASET_FILE} missing')
  try:
    with open(path) as f:
      return DatasetSpec.from_json(json.load(f))
  except (ValueError, TypeError) as e:
    raise DatasetError(f'{path} is corrupt: {e}') from e


def list_episodes(directory: str,
                  first_episodes: Optional[int] = None) -> List[str]:
  """Paths of all complete episodes, in a stable order (behaviour, index).

  With `first_episodes` N, only the first N episodes of each behaviour tag
  (e.g. of each seed of a logged learning run): a view, not a copy, as the
  ABM paper's high-data and low-quality regimes are (§5.1).
  """
  root = os.path.join(directory, EPISODES_DIR)
  if not os.path.isdir(root):
    return []
  paths = []
  for tag in sorted(os.listdir(root)):
    tag_dir = os.path.join(root, tag)
    if not os.path.isdir(tag_dir):
      continue
    paths.extend(os.path.join(tag_dir, n)
                 for n in _episode_names(tag_dir)[:first_episodes])
  return paths


def _episode_names(tag_dir: str) -> List[str]:
  """Names of a tag's complete episodes (zero-padded indices), in order."""
  return sorted(n for n in os.listdir(tag_dir) if n.isdigit())


def seed_tag(seed: int) -> str:
  """The behaviour tag of one seed's episodes (of a logged learning run)."""
  return f'seed{seed}'


def count_episodes(directory: str, behaviour: str) -> int:
  """How many complete episodes a behaviour tag holds."""
  tag_dir = os.path.join(directory, EPISODES_DIR, _safe_tag(behaviour))
  return len(_episode_names(tag_dir)) if os.path.isdir(tag_dir) else 0


def list_partial_episodes(directory: str) -> List[str]:
  root = os.path.join(directory, EPISODES_DIR)
  if not os.path.isdir(root):
    return []
  return sorted(
      os.path.join(root, tag, n) for tag in os.listdir(root)
      if os.path.isdir(os.path.join(root, tag))
      for n in os.listdir(os.path.join(root, tag)) if n.endswith(PARTIAL_SUFFIX))


def read_episode(path: str) -> Episode:
  """Reads one episode directory. Raises on a corrupt or truncated episode."""
  import envlogger  # pylint: disable=g-import-not-at-top
  with envlogger.Reader(data_directory=path) as reader:
    episodes = reader.episodes
    if len(episodes) != 1:
      raise DatasetError(f'{path}: expected 1 episode, found {len(episodes)}')
    steps = list(episodes[0])
    metadata = reader.episode_metadata()[0]
  if len(steps) < 2:
    raise DatasetError(f'{path}: episode has {len(steps)} steps')
  if not isinstance(metadata, dict) or 'return' not in metadata:
    raise DatasetError(f'{path}: episode metadata missing')
  if metadata.get('length', len(steps) - 1) != len(steps) - 1:
    raise DatasetError(f'{path}: {len(steps) - 1} transitions, metadata says '
                       f'{metadata["length"]}')
  return Episode.from_transitions(
      observation=np.stack([s.timestep.observation for s in steps]),
      action=np.stack([s.action for s in steps[1:]]),
      reward=[s.timestep.reward for s in steps[1:]],
      discount=[s.timestep.discount for s in steps[1:]], metadata=metadata)


def relabelled(episode: Episode, reward_fn: Callable[[np.ndarray], Any],
               observation_fn: Optional[Callable[[np.ndarray], Any]] = None
               ) -> Episode:
  """The episode with rewards recomputed for another task: r_t is the task's
  reward of the observation reached, reward_fn(s_{t+1}), as the Sawyer
  environments compute it online (ABM paper §5.2: tasks never executed in
  the data can be learned from it). `observation_fn` first maps the
  observations to the task's (e.g. sets a multi-task one-hot input)."""
  observation = episode.observation
  if observation_fn is not None:
    observation = np.asarray(observation_fn(observation), np.float32)
  reward = np.zeros_like(episode.reward)
  reward[:-1] = np.asarray(reward_fn(observation[1:]), np.float32)
  return dataclasses.replace(episode, observation=observation, reward=reward)


def relabelled_views(episode: Episode, relabellings) -> List[Episode]:
  """The episode once per (observation_fn, reward_fn) pair, relabelled with
  it; [episode] when `relabellings` is None (restorers and actors insert
  every view: a multi-task environment's transitions once per task)."""
  if relabellings is None:
    return [episode]
  return [relabelled(episode, reward_fn, observation_fn)
          for observation_fn, reward_fn in relabellings]


def read_episode_metadata(path: str) -> Dict[str, Any]:
  """Episode metadata alone (no steps decoded)."""
  import envlogger  # pylint: disable=g-import-not-at-top
  with envlogger.Reader(data_directory=path) as reader:
    metadata = list(reader.episode_metadata())
  if len(metadata) != 1 or not isinstance(metadata[0], dict):
    raise DatasetError(f'{path}: episode metadata missing')
  return metadata[0]


def longest_episode(directory: str,
                    first_episodes: Optional[int] = None) -> int:
  """Rows (observations) of the dataset's longest episode, from metadata."""
  return 1 + max(int(read_episode_metadata(path)['length'])
                 for path in list_episodes(directory, first_episodes))


class EpisodeWriter:
  """Appends whole episodes to a dataset directory, each atomically.

  Usage:
    writer = EpisodeWriter(directory, env_id, env)
    writer.begin_episode(first_timestep, behaviour='noise=0.3')
    writer.append(action, timestep)  # for each step
    writer.end_episode(extra_metadata)  # renames <n>.partial -> <n>

  With `shared=True` several writers (processes) may append to one tag: the
  index is claimed at `end_episode`, under the tag's lock, and leftover
  partial episodes are not removed (another writer may be writing them;
  whoever starts the writers removes them first with `remove_partials`).
  """

  def __init__(self, directory: str, env_id: str, env: dm_env.Environment,
               shared: bool = False):
    self._directory = directory
    self._spec = DatasetSpec.from_environment(env_id, env)
    self._action_spec: specs.BoundedArray = env.action_spec()
    os.makedirs(os.path.join(directory, EPISODES_DIR), exist_ok=True)
    spec_path = os.path.join(directory, DATASET_FILE)
    if os.path.exists(spec_path):
      read_spec(directory).require_match(
          self._spec, f'cannot add {env_id} episodes to {directory}')
    else:
      _write_json_atomically(spec_path, self._spec.to_json())
    self._shared = shared
    if not shared:
      remove_partials(directory)
    self._backend = None
    self._path = None
    self._next_index: Dict[str, int] = {}  # behaviour tag -> next free index
    self._metadata: Dict[str, Any] = {}
    self._return = 0.0
    self._length = 0

  def next_episode_index(self, behaviour: str) -> int:
    """The next free index of a behaviour tag (the disk is read once per tag:
    a seed of a long collection holds thousands of episodes)."""
    tag = _safe_tag(behaviour)
    if tag not in self._next_index:
      self._next_index[tag] = _next_free_index(
          os.path.join(self._directory, EPISODES_DIR, tag))
    return self._next_index[tag]

  def begin_episode(self, timestep: dm_env.TimeStep, behaviour: str,
                    episode_index: Optional[int] = None) -> None:
    from envlogger import step_data  # pylint: disable=g-import-not-at-top
    from envlogger.backends import riegeli_backend_writer  # pylint: disable=g-import-not-at-top
    if self._backend is not None:
      raise RuntimeError('begin_episode called twice without end_episode')
    tag_dir = os.path.join(self._directory, EPISODES_DIR, _safe_tag(behaviour))
    if self._shared:
      if episode_index is not None:
        raise ValueError('a shared writer claims indices itself')
      self._path = os.path.join(tag_dir, f'pending-{uuid.uuid4().hex}')
    else:
      if episode_index is None:
        episode_index = self.next_episode_index(behaviour)
      self._path = os.path.join(tag_dir, f'{episode_index:07d}')
      if os.path.exists(self._path):
        raise DatasetError(f'episode {self._path} already exists')
    os.makedirs(self._path + PARTIAL_SUFFIX)
    self._backend = riegeli_backend_writer.RiegeliBackendWriter(
        data_directory=self._path + PARTIAL_SUFFIX,
        metadata={'env_id': self._spec.env_id})
    self._metadata = {'env_id': self._spec.env_id, 'behaviour': behaviour,
                      'episode_index': episode_index}
    self._return, self._length = 0.0, 0
    zero_action = np.zeros(self._action_spec.shape, self._action_spec.dtype)
    self._backend.record_step(
        step_data.StepData(timestep, zero_action), is_new_episode=True)

  def append(self, action: np.ndarray, timestep: dm_env.TimeStep) -> None:
    from envlogger import step_data  # pylint: disable=g-import-not-at-top
    self._backend.record_step(
        step_data.StepData(timestep, np.asarray(action, np.float32)),
        is_new_episode=False)
    self._return += float(timestep.reward or 0.0)
    self._length += 1

  @property
  def episode_return(self) -> float:
    return self._return

  def end_episode(self, max_episodes: Optional[int] = None,
                  **extra_metadata) -> Optional[str]:
    """Completes the episode and makes it visible; returns its path.

    With `max_episodes` (shared writers), an episode that would be the tag's
    max_episodes+1-th is discarded instead, and None returned.
    """
    metadata = dict(self._metadata, **extra_metadata)
    metadata.update({'return': self._return, 'length': self._length})
    if not self._shared:
      self._complete(metadata, self._path)
      tag = os.path.basename(os.path.dirname(self._path))
      self._next_index[tag] = max(self.next_episode_index(tag),
                                  metadata['episode_index'] + 1)
      return self._path
    tag_dir = os.path.dirname(self._path)
    with _locked(tag_dir):
      index = _next_free_index(tag_dir)
      if max_episodes is not None and index >= max_episodes:
        self.abort_episode()
        return None
      metadata['episode_index'] = index
      final = os.path.join(tag_dir, f'{index:07d}')
      self._complete(metadata, final)
    return final

  def _complete(self, metadata: Dict[str, Any], final: str) -> None:
    self._backend.set_episode_metadata(metadata)
    self._backend.close()
    self._backend = None
    os.rename(self._path + PARTIAL_SUFFIX, final)

  def abort_episode(self) -> None:
    if self._backend is not None:
      self._backend.close()
      self._backend = None
      shutil.rmtree(self._path + PARTIAL_SUFFIX, ignore_errors=True)

  def close(self) -> None:
    self.abort_episode()


def remove_partials(directory: str) -> int:
  """Removes the leftovers of interrupted writes; returns how many."""
  partials = list_partial_episodes(directory)
  for partial in partials:
    shutil.rmtree(partial, ignore_errors=True)
  return len(partials)


@contextlib.contextmanager
def _locked(tag_dir: str):
  """An exclusive lock on a tag's directory, across processes (flock)."""
  with open(os.path.join(tag_dir, '.lock'), 'a') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def _next_free_index(tag_dir: str) -> int:
  if not os.path.isdir(tag_dir):
    return 0
  return max((int(n) for n in os.listdir(tag_dir) if n.isdigit()),
             default=-1) + 1


def _write_json_atomically(path: str, data: Dict[str, Any]) -> None:
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(data, f, indent=1)
  os.replace(tmp, path)



def merge(sources: List[str], out: str) -> int:
  """Copies every complete episode of `sources` into the dataset `out`.

  All datasets must hold the same environment. Episodes keep their behaviour
  tags and get the next free index of their tag in `out`; each is copied to
  `<n>.partial/` and renamed, so an interrupted merge leaves whole episodes.
  Returns the number of episodes copied.
  """
  specs = [(source, read_spec(source)) for source in sources]
  first_source, first = specs[0]
  for source, spec in specs[1:]:
    first.require_match(spec, f'cannot merge {source} with {first_source}')
  spec_path = os.path.join(out, DATASET_FILE)
  if os.path.exists(spec_path):
    read_spec(out).require_match(first, f'cannot merge into {out}')
  else:
    os.makedirs(out, exist_ok=True)
    _write_json_atomically(spec_path, first.to_json())
  remove_partials(out)
  copied = 0
  next_index: Dict[str, int] = {}  # tag -> next free index in `out`
  for source, _ in specs:
    for path in list_episodes(source):
      tag = os.path.basename(os.path.dirname(path))
      tag_dir = os.path.join(out, EPISODES_DIR, tag)
      if tag not in next_index:
        os.makedirs(tag_dir, exist_ok=True)
        next_index[tag] = _next_free_index(tag_dir)
      index = next_index[tag]
      next_index[tag] += 1
      final = os.path.join(tag_dir, f'{index:07d}')
      shutil.copytree(path, final + PARTIAL_SUFFIX)
      os.rename(final + PARTIAL_SUFFIX, final)
      copied += 1
  return copied
