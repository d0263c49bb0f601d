"""Launching a training program and reading back what it logged."""

import csv
import dataclasses
import glob
import os
import time
from typing import Dict, List, Optional, Tuple

from absl import flags
import launchpad as lp
from launchpad.nodes.python import local_multi_processing
import numpy as np

from abmrl.agents import base
from abmrl.datasets import episodes
from abmrl.datasets import statistics
from abmrl import environments
from abmrl.launch import config as config_lib
from abmrl.launch import processes
from abmrl.launch import program as program_lib


@dataclasses.dataclass
class TrainResult:
  run_dir: str
  learner_steps: int
  final_return: float  # mean over evaluators of their final evaluation
  final_returns: Dict[str, float]  # per evaluator label
  seconds: float
  # What restorers left out (from the shared counter, as the learner logged
  # it last): unreadable episode files, and snippets holding NaN/inf.
  files_skipped: int = 0
  nonfinite_snippets: int = 0


def _node_resources():
  """Process settings per group: the GPU (if any) is the learner's alone;
  every other node gets one TF thread, and the rate limiter paces them."""
  one_thread = {'CUDA_VISIBLE_DEVICES': '', 'TF_NUM_INTRAOP_THREADS': '1',
                'TF_NUM_INTEROP_THREADS': '1', 'OMP_NUM_THREADS': '1'}
  quiet = {'TF_CPP_MIN_LOG_LEVEL': '2', 'GLOG_minloglevel': '1',
           'MUJOCO_GL': os.environ.get('MUJOCO_GL', 'egl'),
           # TF sets this when it is imported, so local_mp's nodes inherit it
           # from the launcher. A node started on another host does not, and
           # TF 2.8 first imported inside absl's app.run (Launchpad's process
           # entry) then builds Sonnet's optimiser slots inside the traced
           # step ("... is out of scope": found with --launch ray).
           'TF2_BEHAVIOR': '1'}
  resources = {group: local_multi_processing.PythonProcess(
      env={**quiet, **one_thread}) for group in
               ('replay', 'counter', 'restorer', 'evaluator', 'stopper',
                'actor', 'monitor', 'rollout')}
  resources['learner'] = local_multi_processing.PythonProcess(
      env={**quiet, **cuda_library_env()})
  return resources


def cuda_library_env(site_packages: Optional[str] = None) -> Dict[str, str]:
  """LD_LIBRARY_PATH for the learner, if NVIDIA's CUDA 11 / cuDNN 8 wheels
  (`abmrl[gpu]`) are installed: their lib folders, before what was set."""
  if site_packages is None:
    site_packages = os.path.dirname(os.path.dirname(np.__file__))
  folders = sorted(glob.glob(os.path.join(site_packages, 'nvidia', '*',
                                          'lib')))
  if not folders:
    return {}
  inherited = os.environ.get('LD_LIBRARY_PATH')
  return {'LD_LIBRARY_PATH': os.pathsep.join(
      folders + ([inherited] if inherited else []))}


def _ensure_absl_flags_parsed():
  # Launchpad reads absl flags (e.g. lp_termination_notice_secs).
  if not flags.FLAGS.is_parsed():
    flags.FLAGS(['abmrl'], known_only=True)


def _launch(program: lp.Program, launch: config_lib.LaunchConfig,
            shared_dirs: List[str] = ()) -> None:
  """Launches a program and waits until it stops (`shared_dirs`: what
  every host of a cluster must see). Raises processes.NodeFailure when a
  node fails (launch/processes.py)."""
  _ensure_absl_flags_parsed()
  notice = flags.FLAGS.lp_termination_notice_secs
  environments = {group: dict(process.env)
                  for group, process in _node_resources().items()}
  if launch.launch_type == 'ray':
    from abmrl.launch import cluster  # pylint: disable=g-import-not-at-top
    from abmrl.launch import ray_launch  # pylint: disable=g-import-not-at-top
    try:
      ray_launch.launch(program, launch.cluster_address, launch.placement,
                        environments, list(shared_dirs), notice,
                        launch.max_node_restarts)
    except cluster.PlacementError as e:
      raise config_lib.ConfigError(str(e)) from None
  elif launch.launch_type == 'local_mp':
    processes.launch_local(program, environments, notice,
                           launch.max_node_restarts)
  elif launch.launch_type == 'test_mt':
    lp.launch(program, launch_type=lp.LaunchType.TEST_MULTI_THREADING,
              serialize_py_nodes=False).wait()
  else:
    raise config_lib.ConfigError(
        f'unknown launch type {launch.launch_type!r}; valid: '
        + ', '.join(config_lib.LAUNCH_TYPES))


def check_dataset(dataset_dir: str, env_id: str, relabel: bool = False
                  ) -> Tuple[episodes.DatasetSpec, episodes.DatasetSpec]:
  """The data's spec and the environment's, after checking the dataset
  exists, has episodes, and matches the environment (after relabelling, if
  asked). Raises DatasetError, or UnknownEnvironmentError, in one line."""
  env = environments.make(env_id)
  spec = episodes.read_spec(dataset_dir)
  if not episodes.list_episodes(dataset_dir):
    raise episodes.DatasetError(f'dataset {dataset_dir} has no complete '
                                'episodes')
  env_spec = episodes.DatasetSpec.from_environment(env_id, env)
  restored = spec
  if relabel:
    relabellings = environments.relabellings(env_id)
    if not relabellings:
      raise config_lib.ConfigError(
          f'--relabel: {env_id} has no reward defined on observations (the '
          'sawyer:* environments have)')
    observation_fn = relabellings[0][0]
    try:
      shape = np.shape(observation_fn(np.zeros((2,) + spec.observation_shape,
                                               np.float32)))[1:]
    except ValueError:
      shape = spec.observation_shape
    restored = dataclasses.replace(spec, observation_shape=tuple(shape))
  restored.require_match(
      env_spec, f'dataset {dataset_dir} does not match {env_id}'
      + (' after relabelling' if relabel else ''), same_env=False)
  if spec.env_id != env_id and not relabel:
    if environments.relabellings(env_id):
      advice = (f'to train for {env_id}, add --relabel (rewards recomputed '
                'from observations)')
    else:
      advice = (f'train with --env {spec.env_id}, or give a dataset of '
                f'{env_id} ({env_id} has no reward to relabel with)')
    raise episodes.DatasetError(
        f'dataset {dataset_dir} holds {spec.env_id} data; {advice}')
  return spec, env_spec


def whole_episode_rows(config: config_lib.TrainConfig) -> int:
  """Rows of a whole-episode snippet: the longest episode in the data, and
  when online actors run, the environment's longest episode too."""
  rows = episodes.longest_episode(config.data.dataset_dir,
                                  config.data.first_episodes)
  if config.online.enabled:
    limit = environments.step_limit(config.env_id)
    if limit is None:
      raise config_lib.ConfigError(
          f'{config.env_id} has no time limit: online episodes cannot be '
          'stored whole')
    rows = max(rows, limit + 1)
  return rows


def save_observation_stats(config: config_lib.TrainConfig) -> str:
  """The data's observation statistics, as the networks will see the data
  (after the environment's relabelling, if the run relabels), in run_dir.
  A resumed run keeps the ones it started with."""
  path = os.path.join(config.run_dir, statistics.FILENAME)
  os.makedirs(config.run_dir, exist_ok=True)
  if os.path.exists(path):
    statistics.load(path)  # fails clearly on a damaged file
    return path
  relabellings = environments.relabellings(config.env_id)
  observation_fn = (relabellings[0][0] if relabellings and config.data.relabel
                    else None)
  print(f'[train] observation statistics of {config.data.dataset_dir}')
  return statistics.save(path, statistics.observation_stats(
      config.data.dataset_dir, config.data.first_episodes, observation_fn,
      progress=print))


def prepare(config: config_lib.TrainConfig
            ) -> Tuple[config_lib.TrainConfig, episodes.DatasetSpec]:
  """Everything a run needs before any process starts, each problem one
  line (ConfigError, DatasetError, UnknownEnvironmentError): the config
  checked, the dataset checked against the environment, a multi-task
  environment's data relabelled per task, whole-episode snippets sized,
  observation statistics saved. Returns the config to run and the spec
  its networks are sized by."""
  config.validate()
  if environments.tasks(config.env_id) is not None and not config.data.relabel:
    # Multi-task training always restores the data once per task.
    config = dataclasses.replace(config, data=dataclasses.replace(
        config.data, relabel=True))
  _, spec = check_dataset(config.data.dataset_dir, config.env_id,
                          config.data.relabel)
  if config.whole_episodes:
    config = dataclasses.replace(config, replay=dataclasses.replace(
        config.replay, snippet_length=whole_episode_rows(config)))
  if config.data.normalise_observations:
    save_observation_stats(config)
  return config, spec


def train(config: config_lib.TrainConfig) -> TrainResult:
  """Checks the run (`prepare`), launches its program, waits until it
  stops, returns the final figures."""
  config, spec = prepare(config)
  done = int(learner_state(config.run_dir).get('learner_steps', 0))
  if done >= config.steps:
    print(f'[train] {config.run_dir} has finished its {config.steps} learner '
          f'steps (its checkpoint is at step {done}); nothing to do. Give '
          'more --steps to continue it, or another --run-dir.', flush=True)
    return read_result(config.run_dir, 0.)
  if config.online.enabled and os.path.isdir(config.online_data_dir):
    # Online actors' episodes left unfinished by an interrupted run.
    episodes.remove_partials(config.online_data_dir)
  config.save()
  start = time.time()
  _launch(program_lib.build_program(config, spec), config.launch,
          [config.data.dataset_dir, config.run_dir])
  return read_result(config.run_dir, time.time() - start)


def load_run(run_dir: str) -> config_lib.TrainConfig:
  """The configuration of a run directory (ConfigError if it is none)."""
  path = os.path.join(run_dir, 'config.json')
  if not os.path.isfile(path):
    raise config_lib.ConfigError(f'{run_dir} is not a run directory (no '
                                 'config.json)')
  return config_lib.load_train_config(path)


def network_spec(config: config_lib.TrainConfig, environment):
  """What sizes the run's networks, for `environment` (one of the run's
  evaluation environments)."""
  spec = episodes.DatasetSpec.from_environment(config.env_id, environment)
  return program_lib.network_spec(config.env_id, spec,
                                  config.observation_stats())


def restore_policy(config: config_lib.TrainConfig, variable_key: str,
                   environment):
  """The run's network `variable_key` ('policy', 'prior') with the weights
  of its latest checkpoint, sized for `environment`. FileNotFoundError
  without a checkpoint."""
  return config.builder.restore_policy(
      config.agent_config, variable_key, network_spec(config, environment),
      environment.observation_spec(),
      os.path.join(config.run_dir, 'checkpoints', 'learner'))


@dataclasses.dataclass
class CollectResult:
  seed: int
  episodes_before: int
  episodes_after: int
  target: int
  first_returns: List[float]  # of the seed's first episodes
  last_returns: List[float]  # of its last episodes
  seconds: float


def collect_spec(config: config_lib.CollectConfig) -> episodes.DatasetSpec:
  """The spec of the collected episodes, after checking the config and that
  a dataset already at `dataset_dir` holds the same environment."""
  config.validate()
  spec = episodes.DatasetSpec.from_environment(
      config.env_id, environments.make(config.env_id))
  out = config.dataset_dir
  if os.path.exists(os.path.join(out, episodes.DATASET_FILE)):
    episodes.read_spec(out).require_match(
        spec, f'cannot collect {config.env_id} into {out}')
  elif os.path.exists(out) and not os.path.isdir(out):
    raise config_lib.ConfigError(f'--out {out} is a file, not a directory')
  return spec


def collected_episodes(config: config_lib.CollectConfig) -> int:
  """How many episodes of the config's seed its dataset holds."""
  return episodes.count_episodes(config.dataset_dir,
                                 episodes.seed_tag(config.seed))


def collect(config: config_lib.CollectConfig) -> CollectResult:
  """Runs (or resumes) one seed's collection until it holds its target."""
  spec = collect_spec(config)
  before = collected_episodes(config)
  start = time.time()
  if before < config.episodes:
    # Interrupted writes of an earlier collection into this dataset (no other
    # collection may write into it meanwhile).
    episodes.remove_partials(config.dataset_dir)
    config.save()
    _launch(program_lib.build_collect_program(config, spec, before),
            config.launch, [config.dataset_dir])
  return read_collect_result(config, before, time.time() - start)


def read_collect_result(config: config_lib.CollectConfig, before: int,
                        seconds: float, shown: int = 10) -> CollectResult:
  paths = [p for p in episodes.list_episodes(config.dataset_dir)
           if os.path.basename(os.path.dirname(p)) ==
           episodes.seed_tag(config.seed)]
  returns = lambda ps: [episodes.read_episode_metadata(p)['return'] for p in ps]
  return CollectResult(config.seed, before, len(paths), config.episodes,
                       returns(paths[:shown]), returns(paths[-shown:]),
                       seconds)


def format_collect_summary(result: CollectResult) -> str:
  mean = lambda xs: f'{sum(xs) / len(xs):.1f}' if xs else '-'
  return (f'[collect seed {result.seed}] {result.episodes_after}/'
          f'{result.target} episodes ({result.episodes_after - result.episodes_before} '
          f'new) in {result.seconds:.0f}s; mean return of the first '
          f'{len(result.first_returns)} {mean(result.first_returns)}, of the '
          f'last {len(result.last_returns)} {mean(result.last_returns)}')


def read_csv(path: str) -> List[Dict[str, float]]:
  with open(path) as f:
    return [{k: float(v) for k, v in row.items() if v not in ('', None)}
            for row in csv.DictReader(f)]


def learner_state(run_dir: str) -> Dict[str, object]:
  """The learner's last checkpoint: {'learner_steps', 'finished'}, or {}."""
  return base.read_state(os.path.join(run_dir, 'checkpoints', 'learner'))


def read_result(run_dir: str, seconds: float = float('nan')) -> TrainResult:
  """The run's figures: its learner steps (of its last checkpoint, or its
  evaluators' last row) and each evaluator's final evaluation."""
  final_returns = {}
  learner_steps = int(learner_state(run_dir).get('learner_steps', 0))
  for path in sorted(glob.glob(os.path.join(run_dir, 'logs', 'evaluator_*',
                                            'logs.csv'))):
    rows = [r for r in read_csv(path) if r.get('final')]
    if rows:
      label = os.path.basename(os.path.dirname(path))
      final_returns[label] = rows[-1]['evaluation_return']
      learner_steps = max(learner_steps, int(rows[-1]['learner_steps']))
  values = list(final_returns.values())
  learner_log = os.path.join(run_dir, 'logs', 'learner', 'logs.csv')
  last = read_csv(learner_log)[-1:] if os.path.exists(learner_log) else []
  last = last[0] if last else {}
  return TrainResult(run_dir, learner_steps,
                     sum(values) / len(values) if values else float('nan'),
                     final_returns, seconds,
                     int(last.get('restorer_files_skipped', 0)),
                     int(last.get('restorer_nonfinite_snippets', 0)))


def format_summary(result: TrainResult) -> str:
  per = ', '.join(f'{k} {v:.1f}' for k, v in sorted(result.final_returns.items()))
  return (f'[train] done in {result.seconds:.0f}s: {result.learner_steps} '
          f'learner steps; final evaluation return {result.final_return:.1f}'
          f'{" (" + per + ")" if per else ""}; run dir {result.run_dir}'
          + (f'; restorers skipped {result.files_skipped} bad episode '
             f'file(s) and {result.nonfinite_snippets} snippet(s) holding '
             'NaN/inf (named above)'
             if result.files_skipped or result.nonfinite_snippets else ''))
