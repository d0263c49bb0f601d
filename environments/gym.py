"""gymnasium's MuJoCo tasks as `gym:<Name>-v5`, behind the dm_env interface,
and D4RL's normalised score for them.

The community's offline datasets (D4RL, Minari) come from these tasks; D4RL
named older versions (HalfCheetah-v2 on mujoco-py). Only the v5 tasks run on
the installed MuJoCo: data logged in v2–v4 import with the same shapes (but
Ant-v5's observation drops the contact forces D4RL's Ant-v2 carried), and
returns may differ from the version the data came from.

gymnasium's episode end maps to dm_env's: `terminated` is a termination
(discount 0), `truncated` (the 1000-step time limit) a truncation
(discount 1), so a learner bootstraps through the time limit only.
"""

from typing import Optional

import dm_env
from dm_env import specs
import numpy as np

TASKS = ('HalfCheetah-v5', 'Hopper-v5', 'Walker2d-v5', 'Ant-v5')

# D4RL's reference returns (d4rl/infos.py REF_MIN_SCORE, REF_MAX_SCORE: a
# random policy's and an expert's), by task name.
D4RL_REFERENCE = {
    'HalfCheetah': (-280.178953, 12135.0),
    'Hopper': (-20.272305, 3234.3),
    'Walker2d': (1.629008, 4592.3),
    'Ant': (-325.6, 3879.7),
}


def d4rl_score(task: str, episode_return: float) -> Optional[float]:
  """100 (R − R_random) / (R_expert − R_random), or None without references."""
  reference = D4RL_REFERENCE.get(task.split('-')[0])
  if reference is None:
    return None
  low, high = reference
  return 100. * (episode_return - low) / (high - low)


class GymEnvironment(dm_env.Environment):
  """A gymnasium environment as a dm_env.Environment: float32 observations
  and actions, seeded once (the first reset), episodes to the task's time
  limit."""

  def __init__(self, task: str, seed: Optional[int] = None):
    import gymnasium  # pylint: disable=g-import-not-at-top
    self._env = gymnasium.make(task)
    self._seed = seed
    self.step_limit = self._env.spec.max_episode_steps
    space = self._env.action_space
    self._action_spec = specs.BoundedArray(
        space.shape, np.float32, space.low.astype(np.float32),
        space.high.astype(np.float32), name='action')
    self._observation_spec = specs.Array(self._env.observation_space.shape,
                                         np.float32, name='observation')
    self._reset_next = True
    self._renderer = None

  def reset(self) -> dm_env.TimeStep:
    observation, _ = self._env.reset(seed=self._seed)
    self._seed = None  # later episodes continue the seeded generator
    self._reset_next = False
    return dm_env.restart(observation.astype(np.float32))

  def step(self, action) -> dm_env.TimeStep:
    if self._reset_next:
      return self.reset()
    observation, reward, terminated, truncated, _ = self._env.step(
        np.asarray(action, np.float32))
    observation = observation.astype(np.float32)
    reward = np.float32(reward)
    if terminated:
      self._reset_next = True
      return dm_env.termination(reward, observation)
    if truncated:
      self._reset_next = True
      return dm_env.truncation(reward, observation)
    return dm_env.transition(reward, observation)

  def observation_spec(self):
    return self._observation_spec

  def action_spec(self):
    return self._action_spec

  def control_timestep(self) -> float:
    return float(self._env.unwrapped.dt)

  def render(self, width: int = 320, height: int = 240,
             camera: Optional[str] = None) -> np.ndarray:
    """An RGB frame of the simulation (MuJoCo's renderer on the task's
    model, the tracking camera unless `camera` names another)."""
    import mujoco  # pylint: disable=g-import-not-at-top
    unwrapped = self._env.unwrapped
    if self._renderer is None or (self._renderer.width, self._renderer.height
                                  ) != (width, height):
      self._renderer = mujoco.Renderer(unwrapped.model, height, width)
    self._renderer.update_scene(unwrapped.data,
                                camera=camera if camera is not None else -1)
    return self._renderer.render()

  def close(self) -> None:
    self._env.close()


def register_all(register) -> None:
  for task in TASKS:
    register(f'gym:{task}', lambda seed, t=task: GymEnvironment(t, seed),
             score=lambda episode_return, t=task: d4rl_score(t, episode_return))
