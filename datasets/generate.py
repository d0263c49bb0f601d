"""A small built-in generator of mixed-quality data, for the demo and tests.

Behaviours are a scripted controller (where the task has one) with Gaussian
action noise at several levels, plus a uniformly random policy. The data thus
contain good, mediocre and poor episodes, as offline RL data usually do.
Online-MPO-generated data is a separate tool (`abmrl collect`).
"""

import dataclasses
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from abmrl.datasets import episodes as episodes_lib
from abmrl import environments

Policy = Callable[[np.ndarray], np.ndarray]


def _point_mass_controller(observation: np.ndarray) -> np.ndarray:
  """PD control of the point mass towards the target at the origin.

  The observation is [position(2), velocity(2)]; the two actuators push along
  the x and y axes.
  """
  position, velocity = observation[:2], observation[2:4]
  return np.clip(-8.0 * position - 1.5 * velocity, -1.0, 1.0)


# The Sawyer pick-and-place controllers by name: scripted.PickAndPlace's
# options for each.
_PICK_AND_PLACE = {
    # the green cube to a random free place on the floor (a new place every
    # episode), whatever the task rewards
    'pick_and_place': {},
    # so, never within the bring tasks' tolerance of their targets
    'pick_and_place_keep_away': dict(keep_away=True),
    # so, half the carries first by a random waypoint out past the walls
    'pick_and_place_detour': dict(detour=0.5),
    # so, the hand now and then drifting up or down for a few carry steps
    'pick_and_place_wander': dict(wander=0.05),
    # so, now and then setting the cube down wherever the carry has got to
    'pick_and_place_stop': dict(stop=0.02),
    # detours and stops together
    'pick_and_place_detour_stop': dict(detour=0.5, stop=0.02),
    # so, with detours out to 12 cm past the walls: about as far as the
    # arm reaches, where learned policies carried the cube
    # (docs/results/sawyer_bring_to_corner.md, "Data that roam")
    'pick_and_place_roam_stop': dict(detour=0.5, detour_margin=0.12,
                                     stop=0.02),
    # so, and half the set-downs held still in closed fingers for 5-60
    # steps before letting go ("Data that hold")
    'pick_and_place_roam_stop_hold': dict(detour=0.5, detour_margin=0.12,
                                          stop=0.02, hold=0.5),
    # so, and one place in ten on top of another cube, which the set-down
    # presses the green cube onto until the wrist-force limit ends the
    # episode ("What ends the episodes")
    'pick_and_place_roam_stop_hold_onto': dict(
        detour=0.5, detour_margin=0.12, stop=0.02, hold=0.5, onto=0.1),
}


def _sawyer(name: str) -> Callable[[np.random.Generator], Policy]:
  """A Sawyer scripted controller acting on the cell's own observation (in
  sawyer:multitask the controller ignores the task input)."""
  # pylint: disable=g-import-not-at-top
  from abmrl.environments.sawyer import multitask
  from abmrl.environments.sawyer import scripted
  # pylint: enable=g-import-not-at-top

  def make(rng: np.random.Generator) -> Policy:
    controller = (scripted.PickAndLift() if name == 'pick_and_lift' else
                  scripted.PickAndPlace(rng=rng, **_PICK_AND_PLACE[name]))
    return lambda o: controller(multitask.base_observation(o))
  return make


_SAWYER_IDS = ('reach', 'grasp', 'lift', 'place_wide', 'place_narrow', 'stack',
               'stack_and_leave', 'bring_to_centre', 'bring_to_corner',
               'multitask')
# Scripted controllers by environment id, by name (the first is the
# default). Each entry makes one episode's controller from a random
# generator. Environments without one get only noise levels around the zero
# action and the random policy.
SCRIPTED_CONTROLLERS: Dict[str, Dict[str, Callable[[np.random.Generator],
                                                   Policy]]] = {
    'control:point_mass-easy': {'pd': lambda rng: _point_mass_controller},
    'control:point_mass-hard': {'pd': lambda rng: _point_mass_controller},
    # The green cube: reach, grasp and lift it; or the pick-and-place
    # controllers above.
    **{f'sawyer:{task}': {
        name: _sawyer(name) for name in ('pick_and_lift', *_PICK_AND_PLACE)}
       for task in _SAWYER_IDS},
}


def controllers(env_id: str) -> List[str]:
  """Names of the scripted controllers for `env_id` (default first)."""
  return list(SCRIPTED_CONTROLLERS.get(env_id, {}))


@dataclasses.dataclass(frozen=True)
class Behaviour:
  """A behaviour policy: scripted action plus Gaussian noise of `noise`
  half-ranges, or uniform random."""
  tag: str
  noise: Optional[float]  # None: uniformly random actions.

  def act(self, controller: Policy, observation: np.ndarray,
          action_spec, rng: np.random.Generator) -> np.ndarray:
    low = np.broadcast_to(action_spec.minimum, action_spec.shape)
    high = np.broadcast_to(action_spec.maximum, action_spec.shape)
    if self.noise is None:
      return rng.uniform(low, high).astype(np.float32)
    # Noise in units of each action's half-range.
    action = controller(observation) + self.noise * (high - low) / 2 * (
        rng.standard_normal(action_spec.shape))
    return np.clip(action, low, high).astype(np.float32)


def default_behaviours(noise_levels: Sequence[float] = (0.1, 0.5, 1.5),
                       random: bool = True) -> List[Behaviour]:
  return [Behaviour(f'scripted-noise{n:g}', n) for n in noise_levels] + (
      [Behaviour('random', None)] if random else [])


def generate(env_id: str, directory: str, episodes_per_behaviour: int,
             behaviours: Optional[Sequence[Behaviour]] = None, seed: int = 0,
             max_steps_per_episode: Optional[int] = None,
             controller: Optional[str] = None,
             progress: Optional[Callable[[str], None]] = print) -> int:
  """Writes `episodes_per_behaviour` episodes of each behaviour; returns count.

  `controller`: which scripted controller (`controllers(env_id)`; default
  the first)."""
  behaviours = list(behaviours or default_behaviours())
  available = SCRIPTED_CONTROLLERS.get(env_id, {})
  if controller is not None and controller not in available:
    raise ValueError(f'{env_id} has no scripted controller {controller!r}; '
                     'it has: ' + (', '.join(available) or 'none'))
  env = environments.make(env_id, seed=seed)
  zero = np.zeros(env.action_spec().shape, np.float32)
  make_controller = available.get(controller or next(iter(available), None),
                                  lambda rng: lambda o: zero)
  rng = np.random.default_rng(seed)
  # The controllers' own draws (e.g. where to place a cube) come from a
  # stream of their own, so they do not repeat the environment's.
  controller_rng = np.random.default_rng([seed, 1])
  writer = episodes_lib.EpisodeWriter(directory, env_id, env)
  written, start = 0, time.time()
  try:
    for behaviour in behaviours:
      for _ in range(episodes_per_behaviour):
        timestep = env.reset()
        writer.begin_episode(timestep, behaviour.tag)
        policy = make_controller(controller_rng)
        steps = 0
        while not timestep.last():
          action = behaviour.act(policy, timestep.observation,
                                 env.action_spec(), rng)
          timestep = env.step(action)
          writer.append(action, timestep)
          steps += 1
          if max_steps_per_episode and steps >= max_steps_per_episode:
            break
        path = writer.end_episode()
        written += 1
        if progress:
          progress(f'[generate] {written}/{len(behaviours) * episodes_per_behaviour}'
                   f' episodes ({behaviour.tag}), {time.time() - start:.0f}s: {path}')
  finally:
    writer.close()
    env.close()
  return written
