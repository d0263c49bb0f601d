"""The multi-task Sawyer cell (ABM paper §5.2): one environment, a task set.

Observation: the 85 values of observations.py, then a one-hot of the active
task over `TASK_SET` (the seven tasks of Appendix C.3, then the two never
executed in the paper's data). Reward: the active task's. Every task's
reward is a function of the base observation (`task_rewards`), so each step
carries all of them and logged data can be restored for any task.

`last_task_rewards` and `episode_task_returns` hold every task's reward of
the last step and returns of the episode so far (collection logs them).

`MultiTaskSawyer()` (`sawyer:multitask`) is the data-collection cell: the
active task switches at random among the seven after every episode, and, as
on the robot, where the cell is not reset between episodes, each episode
starts where the last one ended — except every `reset_every` (20) episodes,
when the arm moves to a random place above the basket and the cubes are
scattered again, and after an episode that ended on the wrist-force limit
(the next would start pressed against the obstacle).

`MultiTaskSawyer(task=name)` (`sawyer:multitask/<name>`) keeps one task and
a fresh cell every episode: what evaluators of the multi-task policy run.
"""

from typing import Callable, Dict, List, Optional, Tuple

import dm_env
from dm_env import specs
import numpy as np

from abmrl.environments.sawyer import env as env_lib
from abmrl.environments.sawyer import observations as obs_lib
from abmrl.environments.sawyer import rewards

TASK_SET: Tuple[str, ...] = tuple(rewards.TASKS) + tuple(rewards.NEW_TASKS)
EXECUTED: Tuple[str, ...] = tuple(rewards.TASKS)  # switched among in collection
RESET_EVERY = 20  # episodes between resets of the arm to a random position
_REWARDS: Dict[str, Callable] = {**rewards.TASKS, **rewards.NEW_TASKS}


def base_observation(observation: np.ndarray) -> np.ndarray:
  """The 85 Sawyer values of a (multi-task or single-task) observation."""
  return np.asarray(observation)[..., :obs_lib.SIZE]


def with_task(observation: np.ndarray, task: str) -> np.ndarray:
  """The observation(s) with `task`'s one-hot in place of any task input."""
  base = base_observation(observation)
  one_hot = np.zeros(base.shape[:-1] + (len(TASK_SET),), np.float32)
  one_hot[..., TASK_SET.index(task)] = 1.
  return np.concatenate([base, one_hot], axis=-1).astype(np.float32)


def task_rewards(observation: np.ndarray) -> Dict[str, np.ndarray]:
  """Every task's reward for the observation(s) reached."""
  base = base_observation(observation)
  return {task: _REWARDS[task](base) for task in TASK_SET}


def task_relabellings(tasks=TASK_SET) -> List[Tuple[Callable, Callable]]:
  """(observation_fn, reward_fn) per task: restoring an episode once per
  task with that task's input and rewards (datasets/episodes.relabelled)."""
  return [(lambda o, t=task: with_task(o, t),
           lambda o, t=task: _REWARDS[t](base_observation(o)))
          for task in tasks]


class MultiTaskSawyer(dm_env.Environment):
  """The Sawyer cell with a task input; see the module docstring."""

  step_limit = env_lib.EPISODE_STEPS

  def __init__(self, task: Optional[str] = None, seed: Optional[int] = None,
               reset_every: int = RESET_EVERY):
    if task is not None and task not in TASK_SET:
      raise ValueError(f'unknown Sawyer task {task!r}; tasks: '
                       + ', '.join(TASK_SET))
    self._rng = np.random.default_rng(seed)
    self._cell = env_lib.SawyerStacking(
        seed=int(self._rng.integers(2**31)))
    self._fixed = task
    self._task = task or EXECUTED[0]
    self._reset_every = reset_every
    self._episodes = 0
    self._cell_spoilt = True  # the next episode needs a fresh cell
    self._needs_reset = True

  @property
  def task(self) -> str:
    """The active task."""
    return self._task

  def reset(self) -> dm_env.TimeStep:
    if self._fixed is None:
      self._task = str(self._rng.choice(EXECUTED))
      fresh = self._cell_spoilt or self._episodes % self._reset_every == 0
      timestep = self._cell.reset(keep_cell=not fresh,
                                  random_arm=fresh and self._episodes > 0)
    else:
      timestep = self._cell.reset()
    self._episodes += 1
    self.last_task_rewards = {task: 0. for task in TASK_SET}
    self.episode_task_returns = {task: 0. for task in TASK_SET}
    self._cell_spoilt = False
    self._needs_reset = False
    return timestep._replace(observation=with_task(timestep.observation,
                                                   self._task))

  def step(self, action) -> dm_env.TimeStep:
    if self._needs_reset:
      return self.reset()
    timestep = self._cell.step(action)
    observation = with_task(timestep.observation, self._task)
    self.last_task_rewards = {
        task: float(r) for task, r in task_rewards(timestep.observation).items()}
    for task, r in self.last_task_rewards.items():
      self.episode_task_returns[task] += r
    reward = self.last_task_rewards[self._task]
    if timestep.last():
      self._needs_reset = True
      # Ended on the wrist-force limit (a termination, not the time limit).
      self._cell_spoilt = timestep.discount == 0.
    return timestep._replace(observation=observation, reward=reward)

  def close(self) -> None:
    self._cell.close()

  def control_timestep(self) -> float:
    return self._cell.control_timestep()

  def render(self, width: int = 640, height: int = 480,
             camera: str = 'front') -> np.ndarray:
    return self._cell.render(width, height, camera)

  def observation_spec(self):
    return specs.Array((obs_lib.SIZE + len(TASK_SET),), np.float32,
                       'observation')

  def action_spec(self):
    return self._cell.action_spec()

  def reward_spec(self):
    return self._cell.reward_spec()

  def discount_spec(self):
    return self._cell.discount_spec()
