"""The run configuration: one tree of dataclasses, saved as `config.json`.

  TrainConfig                       abmrl train
    data        DataConfig          the dataset and how restorers read it
    replay      ReplayConfig        snippets and the Reverb table
    online      OnlineConfig        offline→online fine-tuning
    evaluation  EvaluationConfig    evaluators
    launch      LaunchConfig        how the program's nodes are started
    agent_config                    the agent's own dataclass (agents/*/config.py)
  CollectConfig                     abmrl collect (replay, launch, MPO's config)

Every default is written once, here (or, for an agent's hyperparameters, in
its config dataclass; for what an agent needs of the data path, in its
builder's `run_defaults`). A field with `help` in its metadata is a command
line flag: launch/flags.py derives the flags, their defaults and help from
these fields, so nothing restates them.
"""

import dataclasses
import json
import os
import typing
from typing import Any, Dict, Iterable, List, Mapping, Optional

from abmrl.agents import registry
from abmrl.agents.abm import config as abm_config
from abmrl.datasets import episodes
from abmrl.datasets import statistics

ONLINE_BUFFERS = ('separate', 'shared')
LAUNCH_TYPES = ('local_mp', 'test_mt', 'ray')


class ConfigError(ValueError):
  """A run configuration that cannot run: one line naming the flag."""


def _option(default=dataclasses.MISSING, help: Optional[str] = None,  # pylint: disable=redefined-builtin
            flag: Optional[str] = None, choices: Optional[Iterable[str]] = None,
            metavar: Optional[str] = None, factory=dataclasses.MISSING):
  """A configuration field; with `help`, also a command-line flag (`flag`,
  default --<field-name>)."""
  metadata = {}
  if help is not None:
    metadata = dict(help=help, flag=flag, metavar=metavar,
                    choices=tuple(choices or ()) or None)
  return dataclasses.field(default=default, default_factory=factory,
                           metadata=metadata)


def flag_name(config_class, name: str) -> str:
  """The command-line flag of a field (for messages)."""
  field = {f.name: f for f in dataclasses.fields(config_class)}[name]
  return field.metadata.get('flag') or '--' + name.replace('_', '-')


@dataclasses.dataclass
class DataConfig:
  """The logged episodes and the restorers that replay them."""
  dataset_dir: str = _option('', 'dataset directory', flag='--dataset',
                             metavar='DIR')
  first_episodes: Optional[int] = _option(
      None, "restore only the first N episodes of each behaviour tag (seed): "
      "the paper's data regimes as views")
  relabel: bool = _option(
      False, "recompute the data's rewards for --env's task from the "
      'observations as restorers read them (e.g. learn '
      'sawyer:bring_to_corner from sawyer:lift data)')
  normalise_observations: bool = _option(
      False, "standardise every network's input with the data's "
      'per-dimension mean and std, computed once at launch and saved in the '
      'run directory as observation_stats.npz (recommended for sawyer:*, '
      'whose observations mix N·m torques with mm offsets)')
  restorers: int = _option(2, 'restorer processes')
  holdout_fraction: float = _option(
      0.0, 'share of the episodes kept from the restorers as a validation '
      "set for the learner (model-based agents' model and prior stages; "
      "the ABM family's critic against Monte-Carlo returns); every "
      '1/X-th episode of the sorted list')
  # Episodes each restorer has open at once, drawing snippets from them in
  # turn (datasets/restorer.py): decorrelates what goes into the table.
  restorer_interleave: int = 8


@dataclasses.dataclass
class ReplayConfig:
  """Trajectory snippets and the Reverb table the learner samples."""
  snippet_length: int = _option(
      2, 'rows per snippet N, i.e. N-1 transitions (agents that learn from '
      'whole episodes set it to the longest episode)')
  snippets_per_item: int = _option(
      16, 'snippets packed in one Reverb item; divides the batch size')
  replay_size: int = _option(1_000_000, 'replay table size in snippets (the '
                             'paper: 2e6 transitions)')
  min_replay_size: int = _option(10_000, 'snippets in replay before learning '
                                 'starts')
  samples_per_insert: float = _option(
      8.0, 'rate limiter: learner samples per inserted snippet')


@dataclasses.dataclass
class OnlineConfig:
  """Offline→online fine-tuning: after `offline_steps` learner steps, online
  actors act with the policy and insert into an online table; each batch then
  takes `fraction` of its snippets from it. With buffer 'shared' (AWAC's
  single buffer) restorers load the dataset once into the replay table,
  actors append to that same table, and batches sample the union uniformly
  (--replay-size should hold both: the oldest snippets are evicted first)."""
  offline_steps: Optional[int] = _option(
      None, 'offline→online fine-tuning: after N learner steps on the '
      'dataset, online actors act with the policy, log their episodes to '
      'RUN_DIR/online_data and feed an online table; the run continues to '
      '--steps without a restart')
  buffer: str = _option(
      'separate', 'separate: online snippets go to a table of their own and '
      "make up --online-fraction of each batch; shared: AWAC's single "
      'buffer, the dataset loaded once (one restorer pass) and online '
      'snippets appended to the same table, sampled uniformly',
      flag='--online-buffer', choices=ONLINE_BUFFERS)
  actors: int = _option(1, 'online actor processes', flag='--online-actors')
  fraction: float = _option(
      0.5, 'share of each batch from the online table in the online phase, '
      'with --online-buffer separate', flag='--online-fraction')
  replay_size: int = _option(1_000_000, 'online table size in snippets',
                             flag='--online-replay-size')
  min_replay_size: int = _option(
      1_000, 'online snippets before the online phase samples',
      flag='--online-min-replay-size')
  samples_per_insert: float = _option(
      32.0, 'online table rate limiter: samples per inserted snippet',
      flag='--online-samples-per-insert')

  @property
  def enabled(self) -> bool:
    return self.offline_steps is not None

  @property
  def shared_buffer(self) -> bool:
    return self.enabled and self.buffer == 'shared'

  def batch_size(self, batch_size: int, snippets_per_item: int) -> int:
    """Snippets per batch from the online table: the fraction, rounded to
    whole items."""
    k = snippets_per_item
    return max(k, int(round(self.fraction * batch_size / k)) * k)


@dataclasses.dataclass
class EvaluationConfig:
  evaluators: int = _option(1, 'evaluators per evaluated policy')
  episodes: int = _option(5, 'episodes per evaluation', flag='--eval-episodes')
  every_learner_steps: int = _option(
      1_000, 'learner steps between evaluations, the first at the first '
      'step; there is always a final one', flag='--eval-every')


@dataclasses.dataclass
class LaunchConfig:
  """How the program's nodes are started, and where."""
  launch_type: str = _option(
      'local_mp', 'local_mp: one process per node; test_mt: threads in this '
      'process (fast, for tests); ray: one process per node on the hosts of '
      'a Ray cluster (--ray-address)', flag='--launch', choices=LAUNCH_TYPES)
  ray_address: str = _option(
      '', "with --launch ray: the cluster, its head's IP:PORT (default "
      '$RAY_ADDRESS)', metavar='IP:PORT')
  placement: str = _option(
      '', 'with --launch ray: node groups on the cluster nodes that have a '
      'Ray resource, GROUP=RESOURCE,... (groups: replay, counter, restorer, '
      'learner, evaluator, actor, stopper, monitor). Default: the learner '
      'on a node with a GPU, else the head; replay with the learner; '
      'restorers spread over every node; the rest on the head',
      metavar='GROUP=RESOURCE,...')
  max_node_restarts: int = _option(
      3, 'times a stateless node (restorer, evaluator, actor) that dies is '
      'started again before the program stops; any other node that dies '
      'stops the program at once (not for --launch test_mt)')
  checkpoint_minutes: float = _option(
      5.0, 'minutes between learner checkpoints during training (besides '
      'the one at the end and the one on a stop: Ctrl-C, SIGTERM, a failed '
      'node); a rerun resumes from the last')

  @property
  def cluster_address(self) -> str:
    """The Ray cluster's address (the flag, else $RAY_ADDRESS)."""
    return self.ray_address or os.environ.get('RAY_ADDRESS', '')

  def validate(self) -> None:
    _require(self.launch_type in LAUNCH_TYPES, f'--launch '
             f'{self.launch_type!r}: one of ' + ', '.join(LAUNCH_TYPES))
    _require(self.max_node_restarts >= 0, '--max-node-restarts '
             f'{self.max_node_restarts}: 0 or more')
    _require(self.checkpoint_minutes > 0, '--checkpoint-minutes '
             f'{self.checkpoint_minutes}: more than 0')
    if self.launch_type == 'ray':
      _require(bool(self.cluster_address), '--launch ray needs the '
               "cluster's address: --ray-address IP:PORT or RAY_ADDRESS")
    else:
      _require(not self.placement, '--placement is for --launch ray')


def check_writable_dir(directory: str, flag: str) -> None:
  """ConfigError in one line unless `directory` is a directory this process
  can write in, or can be made one (nothing is created: its nearest
  existing ancestor is tried with a file written and removed)."""
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise ConfigError(f'{flag} {directory} is a file, not a directory')
  existing = os.path.abspath(directory)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise ConfigError(f'{flag} {directory}: {existing} is a file, not a '
                      'directory')
  try:
    probe = os.path.join(existing, f'.abmrl-write-check-{os.getpid()}')
    with open(probe, 'w'):
      pass
    os.remove(probe)
  except OSError as e:
    raise ConfigError(f'{flag} {directory}: cannot write in {existing} '
                      f'({e.strerror})') from None


def check_dataset_dir(directory: str, flag: str = '--dataset') -> None:
  """ConfigError or DatasetError in one line unless `directory` holds a
  dataset (its spec readable; no episode is read)."""
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise ConfigError(f'{flag} {directory} is a file, not a dataset '
                      'directory')
  episodes.read_spec(directory)


# --- training -----------------------------------------------------------------


@dataclasses.dataclass
class TrainConfig:
  """One training run: an agent on a dataset, evaluated in an environment."""
  agent: str = _option('', 'agent: ' + ', '.join(registry.names()),
                       metavar='NAME')
  env_id: str = _option('', 'environment id, e.g. control:cheetah-run',
                        flag='--env', metavar='ID')
  run_dir: str = _option(
      '', metavar='DIR', help='run directory (config, logs, checkpoints); a '
      'run restarted with it resumes. Default runs/<agent>-<env>')
  steps: int = _option(10_000, 'learner steps')
  seed: int = _option(0, 'seed of restorers, evaluators and actors')
  data: DataConfig = _option(factory=DataConfig)
  replay: ReplayConfig = _option(factory=ReplayConfig)
  online: OnlineConfig = _option(factory=OnlineConfig)
  evaluation: EvaluationConfig = _option(factory=EvaluationConfig)
  launch: LaunchConfig = _option(factory=LaunchConfig)
  rollout_nodes: int = _option(
      1, 'model-based agents (mabe, mopo): model-rollout processes writing '
      'model transitions to the model table')
  # The agent's hyperparameters: an instance of its builder's config_class
  # (None: the agent's defaults).
  agent_config: Any = None

  def __post_init__(self):
    if self.agent_config is None and self.agent in registry.names():
      self.agent_config = self.builder.make_config()

  @classmethod
  def for_agent(cls, agent: str, sections: Mapping[str, Mapping[str, Any]]
                = None, agent_overrides: Mapping[str, Any] = None,
                preset: str = '', **fields) -> 'TrainConfig':
    """A config whose sections take the agent's defaults (its builder's
    `run_defaults`, e.g. AWR's replay sizes in episodes), then its `preset`'s
    (e.g. the ABM variants' 'paper'), then `sections` ({'replay':
    {'snippet_length': 10}, ...}); its agent_config the agent's defaults
    (`builder.make_config()`), then the preset's 'agent' values, then
    `agent_overrides`."""
    builder = agent_builder(agent)
    try:
      preset_values = dict(builder.preset(preset))
    except ValueError as error:
      raise ConfigError(str(error)) from None
    preset_agent = preset_values.pop('agent', {})
    merged = {}
    run_defaults = {section: values for section, values
                    in builder.run_defaults.items() if section != 'agent'}
    for layer in (run_defaults, preset_values, sections or {}):
      for section, values in layer.items():
        merged[section] = {**merged.get(section, {}), **values}
    return cls(agent=agent, agent_config=builder.make_config(
        **{**preset_agent, **(agent_overrides or {})}),
               **_sections(cls, merged), **fields)

  @property
  def builder(self):
    return agent_builder(self.agent)

  @property
  def whole_episodes(self) -> bool:
    """Snippets are whole episodes (the agent's choice, e.g. AWR's); the
    snippet length is then the data's longest episode, set at launch."""
    return self.builder.whole_episodes

  @property
  def batch_size(self) -> int:
    return self.agent_config.batch_size

  def agent_overrides(self) -> Dict[str, Any]:
    """The agent's hyperparameters that differ from its defaults."""
    defaults = dataclasses.asdict(self.builder.make_config())
    return {name: value for name, value in
            dataclasses.asdict(self.agent_config).items()
            if value != defaults[name]}

  @property
  def online_data_dir(self) -> str:
    """Where online actors log their episodes (a dataset of its own)."""
    return os.path.join(self.run_dir, 'online_data')

  def observation_stats(self):
    """(mean, std) the run's networks standardise with, or None."""
    if not self.data.normalise_observations:
      return None
    return statistics.load(os.path.join(self.run_dir, statistics.FILENAME))

  def check_paths(self) -> 'TrainConfig':
    """The dataset and the run directory, checked before anything heavy is
    imported (ConfigError, DatasetError)."""
    check_dataset_dir(self.data.dataset_dir)
    check_writable_dir(self.run_dir, '--run-dir')
    return self

  def validate(self) -> 'TrainConfig':
    """Raises ConfigError naming the first flag whose value cannot run."""
    flag = lambda cls, name: flag_name(cls, name)
    _require(self.agent in registry.names(), f'unknown agent {self.agent!r}; '
             'valid agents: ' + ', '.join(registry.names()))
    _require(bool(self.env_id), '--env is required')
    _require(bool(self.data.dataset_dir), '--dataset is required')
    self.launch.validate()
    _positive(self.steps, '--steps')
    _positive(self.data.restorers, '--restorers')
    _positive(self.evaluation.evaluators, '--evaluators', zero_ok=True)
    _positive(self.evaluation.episodes, '--eval-episodes')
    _positive(self.evaluation.every_learner_steps, '--eval-every')
    if self.data.first_episodes is not None:
      _positive(self.data.first_episodes, '--first-episodes')
    _require(0 <= self.data.holdout_fraction < 1, '--holdout-fraction must '
             f'be in [0, 1), got {self.data.holdout_fraction}')
    _positive(self.rollout_nodes, '--rollout-nodes')
    _require(not self.online.enabled or not self.builder.model_based,
             f'--offline-steps: {self.agent} learns offline only')
    _require(self.builder.model_based or self.builder.logs_behaviours
             or not self.data.holdout_fraction,
             f'--holdout-fraction: {self.agent} has no use for held-out '
             'episodes (model-based agents and the ABM family do)')
    message = self.builder.check(self)
    _require(not message, message)
    replay, online = self.replay, self.online
    k = replay.snippets_per_item
    _require(replay.snippet_length >= 2, '--snippet-length must be at least '
             f'2, got {replay.snippet_length}')
    for name in ('replay_size', 'min_replay_size', 'samples_per_insert'):
      _positive(getattr(replay, name), flag(ReplayConfig, name))
    _require(k > 0 and self.batch_size % k == 0, f'--snippets-per-item {k} '
             f'must be positive and divide the batch size {self.batch_size}')
    _require(online.enabled or online.buffer == 'separate',
             '--online-buffer is for offline→online runs: add '
             '--offline-steps')
    if online.enabled:
      _require(0 <= online.offline_steps < self.steps, '--offline-steps must '
               f'be in [0, --steps), got {online.offline_steps}')
      _require(0 < online.fraction < 1, '--online-fraction must be in (0, 1), '
               f'got {online.fraction}')
      for name in ('actors', 'replay_size', 'min_replay_size',
                   'samples_per_insert'):
        _positive(getattr(online, name), flag(OnlineConfig, name))
      _require(online.buffer != 'separate' or self.batch_size >= 2 * k,
               f'batch size {self.batch_size} leaves no room for both an '
               f'offline and an online part of {k} snippets '
               '(--snippets-per-item)')
    return self

  def to_json(self) -> Dict[str, Any]:
    return _to_json(self)

  @classmethod
  def from_json(cls, data: Mapping[str, Any]) -> 'TrainConfig':
    data = dict(data)
    builder = agent_builder(data.get('agent', ''))
    agent_config = _from_json(builder.config_class,
                              data.pop('agent_config', None) or {},
                              'agent_config')
    return _from_json(cls, dict(data, agent_config=agent_config))

  def save(self) -> str:
    return _save(self, os.path.join(self.run_dir, 'config.json'))


# --- collection ---------------------------------------------------------------


def _collect_replay() -> ReplayConfig:
  # A fed-by-actors table: learning starts sooner and reuses each snippet
  # more than offline training does.
  return ReplayConfig(min_replay_size=2_000, samples_per_insert=16.0)


def _collect_agent_config() -> abm_config.ABMConfig:
  # MPO as the ABM paper's data came from (§5.1), with a smaller batch than
  # offline training so the learner keeps pace with the actors on a small
  # machine (more updates per collected step at the same sample reuse).
  # (Its config directly, not through the builder: building the command
  # line's defaults must not load the learners and TensorFlow.)
  return abm_config.ABMConfig(**abm_config.VARIANTS[CollectConfig.agent],
                              batch_size=256)


@dataclasses.dataclass
class CollectConfig:
  """One seed of an online MPO run whose actors log every episode."""
  agent: typing.ClassVar[str] = 'mpo'
  env_id: str = _option('', 'environment id, e.g. control:cheetah-run',
                        flag='--env', metavar='ID')
  dataset_dir: str = _option('', 'dataset directory (created, or appended '
                             'to)', flag='--out', metavar='DIR')
  seed: int = _option(0, "the run's seed; its episodes are tagged seed<S>")
  episodes: int = _option(0, 'target number of episodes of this seed in DIR')
  actors: int = _option(1, 'actor processes')
  progress_seconds: float = _option(10.0, 'seconds between progress lines')
  replay: ReplayConfig = _option(factory=_collect_replay)
  launch: LaunchConfig = _option(factory=LaunchConfig)
  agent_config: Any = _option(factory=_collect_agent_config)

  @property
  def builder(self):
    return agent_builder(self.agent)

  @property
  def whole_episodes(self) -> bool:
    return self.builder.whole_episodes

  @property
  def run_dir(self) -> str:
    """Config, logs and learner checkpoints of the seed's run (resumed)."""
    return os.path.join(self.dataset_dir, 'collector',
                        episodes.seed_tag(self.seed))

  @property
  def batch_size(self) -> int:
    return self.agent_config.batch_size

  def validate(self) -> 'CollectConfig':
    _require(bool(self.env_id), '--env is required')
    _require(bool(self.dataset_dir), '--out is required')
    _positive(self.episodes, '--episodes')
    _positive(self.actors, '--actors')
    _require(self.seed >= 0, f'--seed must be non-negative, got {self.seed}')
    self.launch.validate()
    for name in ('samples_per_insert', 'min_replay_size', 'replay_size',
                 'snippets_per_item'):
      _positive(getattr(self.replay, name), flag_name(ReplayConfig, name))
    k = self.replay.snippets_per_item
    _require(self.batch_size % k == 0, f'--snippets-per-item {k} must divide '
             f'the batch size {self.batch_size}')
    return self

  def to_json(self) -> Dict[str, Any]:
    return _to_json(self)

  def save(self) -> str:
    return _save(self, os.path.join(self.run_dir, 'config.json'))


def unoptional(kind):
  """T of Optional[T] (else `kind`)."""
  args = [a for a in typing.get_args(kind) if a is not type(None)]
  if typing.get_origin(kind) is typing.Union and len(args) == 1:
    return args[0]
  return kind


# --- helpers ------------------------------------------------------------------


def agent_builder(agent: str):
  """The agent's builder; an unknown agent is a ConfigError."""
  try:
    return registry.get(agent)
  except ValueError as e:
    raise ConfigError(str(e)) from None


def _require(condition: bool, message: str) -> None:
  if not condition:
    raise ConfigError(message)


def _positive(value, flag: str, zero_ok: bool = False) -> None:
  ok = value >= 0 if zero_ok else value > 0
  _require(ok, f'{flag} must be {"non-negative" if zero_ok else "positive"},'
           f' got {value}')


def _sections(cls, values: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
  """Section dataclasses of `cls` built from {section: {field: value}}."""
  types = typing.get_type_hints(cls)
  out = {}
  for section, fields in values.items():
    if section not in types or not dataclasses.is_dataclass(types[section]):
      raise ConfigError(f'{cls.__name__} has no section {section!r}')
    out[section] = _from_json(types[section], fields, section)
  return out


def _to_json(config) -> Dict[str, Any]:
  return json.loads(json.dumps(dataclasses.asdict(config), default=list))


def _from_json(cls, data: Mapping[str, Any], where: str = ''):
  """`cls` from a config.json dict: sections recursively, lists as tuples
  where a field is a tuple; an unknown field is a ConfigError."""
  types = typing.get_type_hints(cls)
  known = {f.name for f in dataclasses.fields(cls) if f.init}
  unknown = sorted(set(data) - known)
  if unknown:
    raise ConfigError(f'{where or cls.__name__}: unknown field(s) '
                      + ', '.join(unknown))
  values = {}
  for name, value in data.items():
    kind = unoptional(types[name])
    if dataclasses.is_dataclass(kind) and isinstance(value, Mapping):
      value = _from_json(kind, value, f'{where}.{name}'.strip('.'))
    elif typing.get_origin(kind) is tuple and isinstance(value, List):
      value = tuple(value)
    values[name] = value
  return cls(**values)


def load_train_config(path: str) -> TrainConfig:
  """A run's saved config.json; ConfigError names what is wrong with it."""
  try:
    with open(path) as f:
      data = json.load(f)
  except OSError as e:
    raise ConfigError(f'cannot read {path}: {e.strerror}') from None
  except ValueError as e:
    raise ConfigError(f'{path} is not valid JSON: {e}') from None
  if not isinstance(data, dict) or 'data' not in data:
    raise ConfigError(f'{path} is not a run configuration of this version '
                      '(no "data" section)')
  try:
    return TrainConfig.from_json(data)
  except (TypeError, ConfigError) as e:
    raise ConfigError(f'{path}: {e}') from None


def _save(config, path: str) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(config.to_json(), f, indent=1)
  os.replace(tmp, path)
  return path
