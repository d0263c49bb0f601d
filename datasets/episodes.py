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
import logging
import os
import re
import shutil
import sys
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import dm_env
from dm_env import specs
import numpy as np

DATASET_FILE = 'dataset.json'
EPISODES_DIR = 'episodes'
PARTIAL_SUFFIX = '.partial'
FORMAT_VERSION = 1


class DatasetError(ValueError):
  """A dataset directory that is missing, empty, corrupt or mismatched."""


class BadEpisode(DatasetError):
  """One episode that cannot be read: `reason` says why, in a few words
  (unreadable directory, missing metadata, missing file, truncated or
  corrupt file)."""

  def __init__(self, path: str, reason: str):
    super().__init__(f'{path}: {reason}')
    self.path = path
    self.reason = reason


class DiskWriteError(RuntimeError):
  """An episode could not be written whole (disk full, I/O error); it was
  removed, never renamed complete. `written`: whole episodes the command
  had written before (set by the command)."""

  def __init__(self, directory: str, reason: str, written: int = 0):
    super().__init__(directory, reason)
    self.directory = directory
    self.reason = reason
    self.written = written

  def __str__(self) -> str:
    return (f'writing to {self.directory} failed: {self.reason}; '
            f'{self.written} whole episode(s) were written (the unfinished '
            'one was removed)')


def _write_failure(path: str, error: Optional[BaseException]) -> str:
  """Why writing under `path` failed, in a few words."""
  if isinstance(error, OSError) and error.strerror:
    return error.strerror
  try:
    stats = os.statvfs(path)
    if stats.f_bavail * stats.f_frsize < 1 << 20:
      return 'No space left on device'
  except OSError:
    pass
  return (f'the episode did not read back whole ({error})' if error
          else 'the episode did not read back whole')


# What EnvLogger's Riegeli backend writes: in the episode directory, the
# writer's metadata; in its one timestamped folder, the step data and
# indices (envlogger/backends/riegeli_backend_writer).
_METADATA_FILE = 'metadata.riegeli'
_SHARD_FILES = ('episode_index.riegeli', 'episode_metadata.riegeli',
                'step_offsets.riegeli', 'steps.riegeli')


def _quiet_envlogger_reader(unraisable) -> None:
  """EnvLogger's Reader.__del__ fails with a traceback on stderr whenever
  its constructor failed (no backend to close); those say nothing the
  BadEpisode does not, so they are dropped. Anything else goes on."""
  function = getattr(unraisable.object, '__qualname__', '')
  if function == 'Reader.__del__' and isinstance(unraisable.exc_value,
                                                 AttributeError):
    return
  _previous_unraisablehook(unraisable)


_previous_unraisablehook = sys.unraisablehook
sys.unraisablehook = _quiet_envlogger_reader


class _NotEnvLogger(logging.Filter):
  """EnvLogger's reader logs each damaged file it meets with a traceback
  and a banner ('You likely forgot to call close() on your env'); the
  BadEpisode it then raises names the episode and the reason, once."""

  def filter(self, record: logging.LogRecord) -> bool:
    # By its message: absl records its own module as the caller.
    return 'empty step offset file' not in str(record.msg)


logging.getLogger('absl').addFilter(_NotEnvLogger())


def check_episode_files(path: str) -> None:
  """BadEpisode unless the episode directory holds EnvLogger's files."""
  try:
    names = os.listdir(path)
  except OSError as e:
    raise BadEpisode(path, f'unreadable directory ({e.strerror})') from None
  if _METADATA_FILE not in names:
    raise BadEpisode(path, f'missing metadata ({_METADATA_FILE})')
  shards = [n for n in names if os.path.isdir(os.path.join(path, n))]
  if len(shards) != 1:
    raise BadEpisode(path, f'{len(shards)} step folders, expected 1')
  shard = os.path.join(path, shards[0])
  try:
    present = set(os.listdir(shard))
  except OSError as e:
    raise BadEpisode(path, f'unreadable directory {shards[0]} '
                     f'({e.strerror})') from None
  for name in _SHARD_FILES:
    if name not in present:
      kind = 'metadata' if 'metadata' in name or 'index' in name else 'file'
      raise BadEpisode(path, f'missing {kind} ({shards[0]}/{name})')
    if not os.access(os.path.join(shard, name), os.R_OK):
      raise BadEpisode(path, f'unreadable file ({shards[0]}/{name})')


@contextlib.contextmanager
def _reading(path: str):
  """Checks the episode's files, then opens EnvLogger's Reader on them; any
  failure reading is a BadEpisode that names what broke."""
  import envlogger  # pylint: disable=g-import-not-at-top
  check_episode_files(path)
  try:
    with envlogger.Reader(data_directory=path) as reader:
      yield reader
  except BadEpisode:
    raise
  except (RuntimeError, TypeError, ValueError, IndexError, OSError) as e:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if isinstance(e, TypeError) or 'DATA_LOSS' in text:
      # A truncated or overwritten steps.riegeli: EnvLogger's reader gets no
      # record where its index says one is (`a bytes-like object is
      # required, not 'NoneType'`), or Riegeli finds no valid chunk.
      reason = 'truncated or corrupt step data (steps.riegeli)'
    else:
      reason = f'corrupt file ({text})'
    raise BadEpisode(path, reason) from None


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
  for tag in behaviour_tags(directory):
    tag_dir = os.path.join(root, tag)
    paths.extend(os.path.join(tag_dir, n)
                 for n in _episode_names(tag_dir)[:first_episodes])
  return paths


def behaviour_tags(directory: str) -> List[str]:
  """The dataset's behaviour tags (their directory names), sorted: a row's
  behaviour index in replay items indexes this list."""
  root = os.path.join(directory, EPISODES_DIR)
  if not os.path.isdir(root):
    return []
  return sorted(tag for tag in os.listdir(root)
                if os.path.isdir(os.path.join(root, tag)))


def episode_behaviour(path: str) -> str:
  """The behaviour tag (directory name) of an episode path from
  `list_episodes`."""
  return os.path.basename(os.path.dirname(os.path.normpath(path)))


def holdout_split(paths: List[str], fraction: float
                  ) -> Tuple[List[str], List[str]]:
  """(kept, held out): every ⌈1/fraction⌉-th episode of the sorted list
  `paths` is held out (at least one, never all), so every behaviour tag
  gives its share and the split is the same in every node and rerun."""
  if not fraction or len(paths) < 2:
    return list(paths), []
  stride = max(1, int(np.ceil(1. / fraction)))
  held = set(range(0, len(paths), stride))
  if len(held) == len(paths):
    held.discard(len(paths) - 1)
  return ([p for i, p in enumerate(paths) if i not in held],
          [p for i, p in enumerate(paths) if i in held])


def _held_out_episodes(directory: str, fraction: float,
                       first_episodes: Optional[int], relabelling
                       ) -> Iterator[Tuple[str, Episode]]:
  """(path, episode) of each readable, finite held-out episode, relabelled
  with the (observation_fn, reward_fn) pair `relabelling` if given; raises
  DatasetError if there is none."""
  _, held = holdout_split(list_episodes(directory, first_episodes), fraction)
  found = False
  for path in held:
    try:
      episode = read_episode(path)
    except BadEpisode:
      continue  # the restorers name it; validation does without
    if relabelling is not None:
      episode = relabelled(episode, relabelling[1], relabelling[0])
    if non_finite_rows(episode):
      continue
    found = True
    yield path, episode
  if not found:
    raise DatasetError(f'{directory}: no readable held-out episode (of '
                       f'{len(held)}) to validate on')


def _joined(parts: Dict[str, List[np.ndarray]], max_rows: int,
            seed: int) -> Dict[str, np.ndarray]:
  """The parts' arrays concatenated, at most `max_rows` rows of them (a
  random subset, in order)."""
  joined = {name: np.concatenate(p) for name, p in parts.items()}
  rows = len(next(iter(joined.values())))
  if rows > max_rows:
    keep = np.sort(np.random.default_rng(seed).choice(
        rows, max_rows, replace=False))
    joined = {name: x[keep] for name, x in joined.items()}
  return joined


def held_out_transitions(directory: str, fraction: float,
                         first_episodes: Optional[int] = None,
                         relabelling=None,
                         max_transitions: int = 20_000,
                         seed: int = 0) -> Dict[str, np.ndarray]:
  """The held-out episodes' transitions {observation, action, reward,
  discount, next_observation}, [V, ...], at most `max_transitions` of them
  (a random subset), for a learner's validation (MABE's model and prior).
  `relabelling`: an (observation_fn, reward_fn) pair applied first."""
  parts = {name: [] for name in ('observation', 'action', 'reward',
                                 'discount', 'next_observation')}
  for _, episode in _held_out_episodes(directory, fraction, first_episodes,
                                       relabelling):
    parts['observation'].append(episode.observation[:-1])
    parts['next_observation'].append(episode.observation[1:])
    for name in ('action', 'reward', 'discount'):
      parts[name].append(getattr(episode, name)[:-1])
  return _joined(parts, max_transitions, seed)


def discounted_returns(reward: np.ndarray, discount: np.ndarray,
                       gamma: float) -> np.ndarray:
  """G_t = r_t + γ d_t G_{t+1} over an episode's T transitions, G_T = 0."""
  returns = np.zeros(len(reward) + 1, np.float64)
  for t in reversed(range(len(reward))):
    returns[t] = reward[t] + gamma * discount[t] * returns[t + 1]
  return returns[:-1].astype(np.float32)


def held_out_returns(directory: str, fraction: float, gamma: float,
                     first_episodes: Optional[int] = None,
                     relabelling=None, max_tail_weight: float = 0.05,
                     max_transitions: int = 4_000,
                     seed: int = 0) -> Dict[str, np.ndarray]:
  """The held-out episodes' states and actions with their Monte-Carlo
  discounted returns G_t and behaviour tag indices (`behaviour_tags`),
  {observation, action, return, behaviour}, [V, ...]: what a learner's
  value estimates are compared with.

  Only rows whose return the episode determines are kept: where the episode
  terminates, every row; where a time limit cut it, the rows whose
  unobserved tail weighs γ^(T−t) ≤ `max_tail_weight`. At most
  `max_transitions` of them (a random subset). Empty arrays where no row
  qualifies (episodes shorter than the discount's horizon).
  """
  tags = {tag: i for i, tag in enumerate(behaviour_tags(directory))}
  parts = {name: [] for name in ('observation', 'action', 'return',
                                 'behaviour')}
  for path, episode in _held_out_episodes(directory, fraction,
                                          first_episodes, relabelling):
    rows = episode.num_transitions
    returns = discounted_returns(episode.reward[:-1], episode.discount[:-1],
                                 gamma)
    terminated = episode.discount[rows - 1] == 0
    tail = gamma ** (rows - np.arange(rows))
    keep = np.ones(rows, bool) if terminated else tail <= max_tail_weight
    parts['observation'].append(episode.observation[:-1][keep])
    parts['action'].append(episode.action[:-1][keep])
    parts['return'].append(returns[keep])
    parts['behaviour'].append(
        np.full(int(keep.sum()), tags[episode_behaviour(path)], np.int32))
  return _joined(parts, max_transitions, seed)


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
  """Reads one episode directory. BadEpisode names what is wrong with a
  missing, corrupt or truncated one."""
  with _reading(path) as reader:
    episodes = reader.episodes
    if len(episodes) != 1:
      raise BadEpisode(path, 'truncated or corrupt episode index (it '
                       f'records {len(episodes)} episodes, not 1)')
    steps = list(episodes[0])
    metadata = list(reader.episode_metadata())
  metadata = metadata[0] if len(metadata) == 1 else None
  if len(steps) < 2:
    raise BadEpisode(path, f'episode has {len(steps)} steps')
  if not isinstance(metadata, dict) or 'return' not in metadata:
    raise BadEpisode(path, 'missing metadata (no episode return)')
  if metadata.get('length', len(steps) - 1) != len(steps) - 1:
    raise BadEpisode(path, f'{len(steps) - 1} transitions, metadata says '
                     f'{metadata["length"]}')
  return Episode.from_transitions(
      observation=np.stack([s.timestep.observation for s in steps]),
      action=np.stack([s.action for s in steps[1:]]),
      reward=[s.timestep.reward for s in steps[1:]],
      discount=[s.timestep.discount for s in steps[1:]], metadata=metadata)


def non_finite_rows(episode: Episode) -> Dict[str, np.ndarray]:
  """field -> the rows where it holds NaN or inf (only fields that do)."""
  found = {}
  for name in ('observation', 'action', 'reward', 'discount'):
    values = getattr(episode, name)
    finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if not finite.all():
      found[name] = np.flatnonzero(~finite)
  return found


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
  """Episode metadata alone (no steps decoded); BadEpisode if missing."""
  with _reading(path) as reader:
    metadata = list(reader.episode_metadata())
  if len(metadata) != 1 or not isinstance(metadata[0], dict):
    raise BadEpisode(path, 'missing metadata (no episode metadata record)')
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
    try:
      os.makedirs(self._path + PARTIAL_SUFFIX)
      self._backend = riegeli_backend_writer.RiegeliBackendWriter(
          data_directory=self._path + PARTIAL_SUFFIX,
          metadata={'env_id': self._spec.env_id})
    except (OSError, RuntimeError) as e:
      self._fail(e)
    self._metadata = {'env_id': self._spec.env_id, 'behaviour': behaviour,
                      'episode_index': episode_index}
    self._return, self._length = 0.0, 0
    zero_action = np.zeros(self._action_spec.shape, self._action_spec.dtype)
    self._record(step_data.StepData(timestep, zero_action), new_episode=True)

  def append(self, action: np.ndarray, timestep: dm_env.TimeStep) -> None:
    from envlogger import step_data  # pylint: disable=g-import-not-at-top
    self._record(step_data.StepData(timestep, np.asarray(action, np.float32)),
                 new_episode=False)
    self._return += float(timestep.reward or 0.0)
    self._length += 1

  def _record(self, data, new_episode: bool) -> None:
    """One step to the episode's files. A full disk shows here when Riegeli
    reports it (RuntimeError), else only when the episode is read back
    (`_complete`)."""
    try:
      self._backend.record_step(data, is_new_episode=new_episode)
    except (OSError, RuntimeError) as e:
      self._fail(e)

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
    """Closes the episode's files, reads them back, and only then renames
    them complete: Riegeli's writer does not report a full disk (it wrote
    empty files and closed without error), so the check is the read."""
    partial = self._path + PARTIAL_SUFFIX
    try:
      self._backend.set_episode_metadata(metadata)
      self._backend.close()
      self._backend = None
      written = read_episode(partial)
      if written.num_transitions != metadata['length']:
        raise BadEpisode(partial, f'{written.num_transitions} transitions '
                         f'read back, {metadata["length"]} written')
      os.rename(partial, final)
    except (OSError, RuntimeError, BadEpisode) as e:
      self._fail(e)

  def _fail(self, error: BaseException) -> None:
    """Removes the unfinished episode; DiskWriteError saying why."""
    reason = _write_failure(self._directory, error)
    self._backend = None
    if self._path:
      shutil.rmtree(self._path + PARTIAL_SUFFIX, ignore_errors=True)
    raise DiskWriteError(self._directory, reason) from None

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
