"""Environments by id: `control:<domain>-<task>` for the DeepMind control
suite, `sawyer:<task>` for the Sawyer stacking tasks (ABM paper §5.2).

Every environment is a `dm_env.Environment` with one flat float32 observation
vector and float32 actions, so learners, restorers and datasets never need to
know which suite a task comes from. Other suites (the Sawyer stacking tasks)
register themselves with `register()`.
"""

from typing import Any, Callable, Dict, List, Optional

import dm_env

EnvFactory = Callable[[Optional[int]], dm_env.Environment]
# observations [..., O] -> rewards [...]
ObservationReward = Callable[[Any], Any]

_FACTORIES: Dict[str, EnvFactory] = {}
_OBSERVATION_REWARDS: Dict[str, ObservationReward] = {}


class UnknownEnvironmentError(ValueError):
  """An environment id that is not in the registry."""


def register(env_id: str, factory: EnvFactory,
             observation_reward: Optional[ObservationReward] = None) -> None:
  """Adds `env_id` to the registry; `factory(seed)` builds the environment.

  `observation_reward`, where the task's reward is a function of the
  observation reached, lets logged data of any task be relabelled for this
  one (`abmrl train --relabel`)."""
  if env_id in _FACTORIES:
    raise ValueError(f'environment id registered twice: {env_id}')
  _FACTORIES[env_id] = factory
  if observation_reward is not None:
    _OBSERVATION_REWARDS[env_id] = observation_reward


def observation_reward(env_id: str) -> Optional[ObservationReward]:
  """The task's reward as a function of observations, if it has one."""
  _ensure_registered()
  return _OBSERVATION_REWARDS.get(env_id)


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
  from environments.sawyer import rewards  # pylint: disable=g-import-not-at-top

  def factory(task):
    def make(seed: Optional[int]) -> dm_env.Environment:
      from environments.sawyer import env  # pylint: disable=g-import-not-at-top
      return env.SawyerStacking(task=task, seed=seed)
    return make

  for task, reward in {**rewards.TASKS, **rewards.NEW_TASKS}.items():
    register(f'sawyer:{task}', factory(task), observation_reward=reward)


def _register_control_suite() -> None:
  from dm_control import suite  # pylint: disable=g-import-not-at-top
  for domain, task in suite.ALL_TASKS:
    register(f'control:{domain}-{task}', _control_suite_factory(domain, task))


def env_ids() -> List[str]:
  """All registered environment ids, sorted."""
  _ensure_registered()
  return sorted(_FACTORIES)


def make(env_id: str, seed: Optional[int] = None) -> dm_env.Environment:
  """Builds the environment `env_id`; raises UnknownEnvironmentError if unknown."""
  _ensure_registered()
  if env_id not in _FACTORIES:
    raise UnknownEnvironmentError(
        f'unknown environment id {env_id!r}; valid ids: '
        + ', '.join(sorted(_FACTORIES)))
  return _FACTORIES[env_id](seed)


_registered = False


def _ensure_registered() -> None:
  global _registered
  if not _registered:
    _registered = True
    _register_control_suite()
    _register_sawyer()
