"""Launching a training program and reading back what it logged."""

import csv
import dataclasses
import glob
import os
import time
from typing import Dict, List

from absl import flags
import launchpad as lp
from launchpad.nodes.python import local_multi_processing

from abmrl.datasets import collect as collect_lib
from abmrl.datasets import episodes
from abmrl.datasets import statistics
from abmrl import environments
from abmrl.launch import config as config_lib
from abmrl.launch import program as program_lib


@dataclasses.dataclass
class TrainResult:
  run_dir: str
  learner_steps: int
  final_return: float  # mean over evaluators of their final evaluation
  final_returns: Dict[str, float]  # per evaluator label
  seconds: float


def _node_resources():
  """Process settings per group: the GPU (if any) is the learner's alone;
  every other node gets one TF thread, and the rate limiter paces them."""
  one_thread = {'CUDA_VISIBLE_DEVICES': '', 'TF_NUM_INTRAOP_THREADS': '1',
                'TF_NUM_INTEROP_THREADS': '1', 'OMP_NUM_THREADS': '1'}
  quiet = {'TF_CPP_MIN_LOG_LEVEL': '2', 'GLOG_minloglevel': '1',
           'MUJOCO_GL': os.environ.get('MUJOCO_GL', 'egl')}
  resources = {group: local_multi_processing.PythonProcess(
      env={**quiet, **one_thread}) for group in
               ('replay', 'counter', 'restorer', 'evaluator', 'stopper',
                'actor', 'monitor')}
  resources['learner'] = local_multi_processing.PythonProcess(env=quiet)
  return resources


def _ensure_absl_flags_parsed():
  # Launchpad reads absl flags (e.g. lp_termination_notice_secs).
  if not flags.FLAGS.is_parsed():
    flags.FLAGS(['abmrl'], known_only=True)


def _launch(program: lp.Program, launch_type: str) -> None:
  """Launches a program and waits until it stops."""
  _ensure_absl_flags_parsed()
  if launch_type == 'local_mp':
    manager = lp.launch(program,
                        launch_type=lp.LaunchType.LOCAL_MULTI_PROCESSING,
                        terminal='current_terminal',
                        local_resources=_node_resources())
    # Launchpad 0.5 arms its stop deadline (SIGTERM to every node, SIGKILL
    # after --lp_termination_notice_secs) only in the first program a process
    # launches. A later one (benchmarks run several) whose node failed would
    # wait forever on nodes blocked in C++ calls, e.g. a learner sampling an
    # empty table; arm it for every program.
    # pylint: disable=protected-access
    if manager._termination_notice_secs < 0:
      manager._termination_notice_secs = flags.FLAGS.lp_termination_notice_secs
    # pylint: enable=protected-access
  elif launch_type == 'test_mt':
    manager = lp.launch(program, launch_type=lp.LaunchType.TEST_MULTI_THREADING,
                        serialize_py_nodes=False)
  else:
    raise ValueError(f'unknown launch type {launch_type!r}')
  manager.wait()


def whole_episode_rows(config: config_lib.TrainConfig) -> int:
  """Rows of a whole-episode snippet: the longest episode in the data, and
  when online actors run, the environment's longest episode too."""
  rows = episodes.longest_episode(config.dataset_dir, config.first_episodes)
  if config.offline_steps is not None:
    limit = environments.step_limit(config.env_id)
    if limit is None:
      raise ValueError(f'{config.env_id} has no time limit: online episodes '
                       'cannot be stored whole')
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
  observation_fn = (relabellings[0][0] if relabellings and config.relabel
                    else None)
  print(f'[train] observation statistics of {config.dataset_dir}')
  return statistics.save(path, statistics.observation_stats(
      config.dataset_dir, config.first_episodes, observation_fn,
      progress=print))


def train(config: config_lib.TrainConfig, spec: episodes.DatasetSpec,
          launch_type: str = 'local_mp') -> TrainResult:
  """Launches the program, waits until it stops, returns the final figures."""
  if config.whole_episodes:
    config = dataclasses.replace(config, snippet_length=whole_episode_rows(
        config))
  if config.offline_steps is not None and os.path.isdir(config.online_data_dir):
    # Online actors' episodes left unfinished by an interrupted run.
    episodes.remove_partials(config.online_data_dir)
  if config.normalise_observations:
    save_observation_stats(config)
  config.save()
  start = time.time()
  _launch(program_lib.build_program(config, spec), launch_type)
  return read_result(config.run_dir, time.time() - start)


@dataclasses.dataclass
class CollectResult:
  seed: int
  episodes_before: int
  episodes_after: int
  target: int
  first_returns: List[float]  # of the seed's first episodes
  last_returns: List[float]  # of its last episodes
  seconds: float


def collect(config: config_lib.CollectConfig, spec: episodes.DatasetSpec,
            launch_type: str = 'local_mp') -> CollectResult:
  """Runs (or resumes) one seed's collection until it holds its target."""
  tag = collect_lib.seed_tag(config.seed)
  before = episodes.count_episodes(config.dataset_dir, tag)
  start = time.time()
  if before < config.episodes:
    # Interrupted writes of an earlier collection into this dataset (no other
    # collection may write into it meanwhile).
    episodes.remove_partials(config.dataset_dir)
    config.save()
    _launch(program_lib.build_collect_program(config, spec, before),
            launch_type)
  return read_collect_result(config, before, time.time() - start)


def read_collect_result(config: config_lib.CollectConfig, before: int,
                        seconds: float, shown: int = 10) -> CollectResult:
  paths = [p for p in episodes.list_episodes(config.dataset_dir)
           if os.path.basename(os.path.dirname(p)) ==
           collect_lib.seed_tag(config.seed)]
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


def read_result(run_dir: str, seconds: float = float('nan')) -> TrainResult:
  final_returns, learner_steps = {}, 0
  for path in sorted(glob.glob(os.path.join(run_dir, 'logs', 'evaluator_*',
                                            'logs.csv'))):
    rows = [r for r in read_csv(path) if r.get('final')]
    if rows:
      label = os.path.basename(os.path.dirname(path))
      final_returns[label] = rows[-1]['evaluation_return']
      learner_steps = max(learner_steps, int(rows[-1]['learner_steps']))
  values = list(final_returns.values())
  return TrainResult(run_dir, learner_steps,
                     sum(values) / len(values) if values else float('nan'),
                     final_returns, seconds)


def format_summary(result: TrainResult) -> str:
  per = ', '.join(f'{k} {v:.1f}' for k, v in sorted(result.final_returns.items()))
  return (f'[train] done in {result.seconds:.0f}s: {result.learner_steps} '
          f'learner steps; final evaluation return {result.final_return:.1f}'
          f'{" (" + per + ")" if per else ""}; run dir {result.run_dir}')
