"""Environments by id: `control:<domain>-<task>` for the DeepMind control
suite, `sawyer:<task>` for the Sawyer stacking tasks, `sawyer:multitask`
for all of them behind a task input (ABM paper §5.2), and `gym:<Name>-v5`
for gymnasium's MuJoCo tasks (environments/gym.py).

Every environment is a `dm_env.Environment` with one flat float32 observation
vector and float32 actions, so learners, restorers and datasets never need to
know which suite a task comes from. Other suites register themselves with
`register()`.
"""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
import dataclasses

import dm_env

EnvFactory = Callable[[Optional[int]], dm_env.Environment]
# (observation_fn, reward_fn): observations [T, O'] -> this environment's
# observations [T, O], and observations reached [T, O'] -> rewards [T].
Relabelling = Tuple[Callable[[Any], Any], Callable[[Any], Any]]


@dataclasses.dataclass(frozen=True)
class _Entry:
  factory: EnvFactory
  relabellings: Optional[Sequence[Relabelling]] = None
  tasks: Optional[Sequence[str]] = None
  evaluation_ids: Optional[Dict[str, str]] = None
  score: Optional[Callable[[float], Optional[float]]] = None


_ENTRIES: Dict[str, _Entry] = {}


class UnknownEnvironmentError(ValueError):
  """An environment id that is not in the registry."""


def register(env_id: str, factory: EnvFactory,
             relabellings: Optional[Sequence[Relabelling]] = None,
             tasks: Optional[Sequence[str]] = None,
             evaluation_ids: Optional[Dict[str, str]] = None,
             score: Optional[Callable[[float], Optional[float]]] = None
             ) -> None:
  """Adds `env_id` to the registry; `factory(seed)` builds the environment.

  `relabellings`: where rewards are functions of the observation, how logged
  data of a related environment is restored for this one — once per entry,
  so a multi-task environment lists one per task (`abmrl train --relabel`,
  and always for multi-task training). `tasks`: the task set, when the last
  len(tasks) observation values are a one-hot task input (task-conditioned
  networks read it). `evaluation_ids`: task -> the id of an environment
  that keeps that task (what evaluators run). `score`: a mean return ->
  the task's normalised score (D4RL's for the gym tasks), logged beside
  it."""
  if env_id in _ENTRIES:
    raise ValueError(f'environment id registered twice: {env_id}')
  _ENTRIES[env_id] = _Entry(factory, relabellings, tasks, evaluation_ids,
                            score)


def _entry(env_id: str) -> _Entry:
  _ensure_registered()
  if env_id not in _ENTRIES:
    raise UnknownEnvironmentError(
        f'unknown environment id {env_id!r}; valid ids: '
        + ', '.join(sorted(_ENTRIES)))
  return _ENTRIES[env_id]


def relabellings(env_id: str) -> Optional[Sequence[Relabelling]]:
  """How logged data is restored for this environment's task(s), if its
  rewards are functions of the observation."""
  return _entry(env_id).relabellings


def tasks(env_id: str) -> Optional[Sequence[str]]:
  """The task set behind the observation's one-hot task input, if any."""
  return _entry(env_id).tasks


def evaluation_ids(env_id: str) -> Dict[str, str]:
  """Task -> environment id evaluators run; {'': env_id} for one task."""
  return dict(_entry(env_id).evaluation_ids or {'': env_id})


def score(env_id: str) -> Optional[Callable[[float], Optional[float]]]:
  """The environment's normalised score of a mean return, if it has one."""
  return _entry(env_id).score


def step_limit(env_id: str) -> Optional[int]:
  """Steps per episode at the environment's time limit; None if it has none."""
  env = make(env_id)
  # dm_control keeps its limit private (control.Environment._step_limit; the
  # Acme wrappers forward attributes); ours is public.
  limit = getattr(env, 'step_limit', getattr(env, '_step_limit', None))
  return None if limit is None or limit == float('inf') else int(limit)


def _control_suite_factory(domain: str, task: str) -> EnvFactory:

  def make(seed: Optional[int]) -> dm_env.Environment:
    from acme import wrappers  # pylint: disable=g-import-not-at-top
    from dm_control import suite  # pylint: disable=g-import-not-at-top
    env = suite.load(domain, task, task_kwargs={'random': seed})
    # Acme's wrappers already do exactly this: flatten the observation dict
    # and cast float64 to float32.
    env = wrappers.ConcatObservationWrapper(env)
    return wrappers.SinglePrecisionWrapper(env)

  return make


def _register_sawyer() -> None:
  from abmrl.environments.sawyer import multitask  # pylint: disable=g-import-not-at-top
  from abmrl.environments.sawyer import rewards  # pylint: disable=g-import-not-at-top

  def single(task):
    def make(seed: Optional[int]) -> dm_env.Environment:
      from abmrl.environments.sawyer import env  # pylint: disable=g-import-not-at-top
      return env.SawyerStacking(task=task, seed=seed)
    return make

  def multi(task=None):
    return lambda seed: multitask.MultiTaskSawyer(task=task, seed=seed)

  for task, reward in {**rewards.TASKS, **rewards.NEW_TASKS}.items():
    register(f'sawyer:{task}', single(task),
             relabellings=[(multitask.base_observation,
                            lambda o, r=reward: r(multitask.base_observation(o)))])
  per_task = {task: f'sawyer:multitask/{task}' for task in multitask.TASK_SET}
  register('sawyer:multitask', multi(), tasks=multitask.TASK_SET,
           relabellings=multitask.task_relabellings(),
           evaluation_ids=per_task)
  for task, env_id in per_task.items():
    register(env_id, multi(task), tasks=multitask.TASK_SET,
             relabellings=multitask.task_relabellings([task]))


def _register_control_suite() -> None:
  from dm_control import suite  # pylint: disable=g-import-not-at-top
  for domain, task in suite.ALL_TASKS:
    register(f'control:{domain}-{task}', _control_suite_factory(domain, task))


def env_ids() -> List[str]:
  """All registered environment ids, sorted."""
  _ensure_registered()
  return sorted(_ENTRIES)


def make(env_id: str, seed: Optional[int] = None) -> dm_env.Environment:
  """Builds the environment `env_id`; raises UnknownEnvironmentError if unknown."""
  return _entry(env_id).factory(seed)


_registered = False


def _ensure_registered() -> None:
  global _registered
  if not _registered:
    _registered = True
    _register_control_suite()
    _register_sawyer()
    from abmrl.environments import gym  # pylint: disable=g-import-not-at-top
    gym.register_all(register)
