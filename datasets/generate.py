"""A small built-in generator of mixed-quality data, for the demo and tests.

Behaviours are a scripted controller (where the task has one) with Gaussian
action noise at several levels, plus a uniformly random policy. The data thus
contain good, mediocre and poor episodes, as offline RL data usually do.
Online-MPO-generated data is a separate tool (`abmrl collect`).
"""

import dataclasses
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

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


# Where `pd_elsewhere` holds the point mass: far enough from the target at
# the origin that neither it nor the midpoint between the two (where the
# average of the two controllers' actions leads) earns reward (measured: 8
# episodes at noise 0.1, 'pd' 852, 'pd_elsewhere' 1.2, their average 0).
_ELSEWHERE = np.array([0.2, 0.2])


def _point_mass_elsewhere(observation: np.ndarray) -> np.ndarray:
  """The PD controller of `_point_mass_controller`, holding the mass at
  `_ELSEWHERE` instead of the target: a behaviour that consistently does
  something else (a conflicting dataset's other half)."""
  position, velocity = observation[:2], observation[2:4]
  return np.clip(-8.0 * (position - _ELSEWHERE) - 1.5 * velocity, -1.0, 1.0)


# The reacher's links (dm_control's reacher.xml): shoulder to wrist, wrist
# to finger.
_REACHER_LINKS = (0.12, 0.12)


# Where `reach_mirrored` holds the finger: opposite the target, 0.22 from
# the shoulder (the arm reaches 0.24). So it is ≥ 0.27 from the target, and
# the midpoint of the two goals (where the average of the two controllers'
# unclipped torques leads: they are linear in the goal) ≥ 0.135 from it,
# beyond the 0.06 inside which reacher-easy rewards. The torques clip,
# though: the average of the two clipped controllers scored 222 a 1000-step
# episode (8 episodes, noise 0.1; 'reach' 978, 'reach_mirrored' 0).
_REACHER_MIRROR_RADIUS = 0.22


def _reacher_controller(mirrored: bool) -> Policy:
  """Jacobian-transpose control of the reacher's finger towards the target
  (or, `mirrored`, towards the point opposite the target across the
  shoulder, `_REACHER_MIRROR_RADIUS` from it).

  The observation is [joint angles(2), finger→target(2), joint
  velocities(2)]; the actions are the two joints' torques in [−1, 1].
  """
  l1, l2 = _REACHER_LINKS

  def act(observation: np.ndarray) -> np.ndarray:
    q, to_target, q_dot = observation[:2], observation[2:4], observation[4:6]
    c1, s1 = np.cos(q[0]), np.sin(q[0])
    c12, s12 = np.cos(q[0] + q[1]), np.sin(q[0] + q[1])
    finger = np.array([l1 * c1 + l2 * c12, l1 * s1 + l2 * s12])
    target = finger + to_target
    if mirrored:
      goal = -_REACHER_MIRROR_RADIUS * target / max(np.linalg.norm(target),
                                                    1e-6)
    else:
      goal = target
    jacobian = np.array([[-l1 * s1 - l2 * s12, -l2 * s12],
                         [l1 * c1 + l2 * c12, l2 * c12]])
    # Gains chosen on 8 episodes at noise 0.1: mean return 982, least 972.
    torque = 600.0 * jacobian.T @ (goal - finger) - 0.3 * q_dot
    return np.clip(torque, -1.0, 1.0)

  return act


class _PickAndPlace(NamedTuple):
  """A named Sawyer pick-and-place controller: one line on what it does,
  and scripted.PickAndPlace's options for it."""
  description: str
  options: Dict[str, Any]


# The Sawyer pick-and-place controllers by name (the names are in datasets'
# behaviour tags and in docs/results/: never rename one).
_PICK_AND_PLACE: Dict[str, _PickAndPlace] = {
    # whatever the task rewards
    'pick_and_place': _PickAndPlace(
        'pick the green cube and set it down at a random free place on the '
        'basket\'s floor, a new place each episode, chosen without regard '
        'to the bring tasks\' targets (near them only by chance)', {}),
    'pick_and_place_keep_away': _PickAndPlace(
        'as pick_and_place, never placing within the bring tasks\' '
        'tolerance of their targets, not even by chance',
        dict(keep_away=True)),
    'pick_and_place_detour': _PickAndPlace(
        'as pick_and_place, half the carries first going by a random '
        'waypoint out to 4 cm past the basket\'s walls', dict(detour=0.5)),
    'pick_and_place_wander': _PickAndPlace(
        'as pick_and_place, the hand drifting up or down for a few steps '
        'now and then during carries', dict(wander=0.05)),
    'pick_and_place_stop': _PickAndPlace(
        'as pick_and_place, each carry step with a 2 % chance of setting '
        'the cube down wherever the carry has got to', dict(stop=0.02)),
    'pick_and_place_detour_stop': _PickAndPlace(
        'pick_and_place_detour and pick_and_place_stop together',
        dict(detour=0.5, stop=0.02)),
    # where learned policies carried the cube
    # (docs/results/sawyer_bring_to_corner.md, "Data that roam")
    'pick_and_place_roam_stop': _PickAndPlace(
        'as pick_and_place_detour_stop, with detours out to 12 cm past the '
        'walls, about as far as the arm reaches',
        dict(detour=0.5, detour_margin=0.12, stop=0.02)),
    # ("Data that hold")
    'pick_and_place_roam_stop_hold': _PickAndPlace(
        'as pick_and_place_roam_stop, half the set-downs held still in '
        'closed fingers for 5-60 steps before the fingers open',
        dict(detour=0.5, detour_margin=0.12, stop=0.02, hold=0.5)),
    # ("What ends the episodes")
    'pick_and_place_roam_stop_hold_onto': _PickAndPlace(
        'as pick_and_place_roam_stop_hold, one place in ten drawn on top of '
        'another cube, which the set-down presses the green cube onto until '
        'the wrist-force limit ends the episode',
        dict(detour=0.5, detour_margin=0.12, stop=0.02, hold=0.5, onto=0.1)),
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
                  scripted.PickAndPlace(rng=rng,
                                        **_PICK_AND_PLACE[name].options))
    return lambda o: controller(multitask.base_observation(o))
  return make


class _Controller(NamedTuple):
  """A registered scripted controller: one line on what it does, and how to
  make one episode's controller from a random generator."""
  description: str
  make: Callable[[np.random.Generator], Policy]


_POINT_MASS = _Controller(
    'PD control of the point mass towards the target at the origin',
    lambda rng: _point_mass_controller)
_POINT_MASS_ELSEWHERE = _Controller(
    'the same PD control holding the mass at (0.2, 0.2) instead: never '
    'rewarded, a conflicting behaviour',
    lambda rng: _point_mass_elsewhere)
_REACHER = {
    'reach': _Controller("Jacobian-transpose control of the finger towards "
                         'the target', lambda rng: _reacher_controller(False)),
    'reach_mirrored': _Controller(
        'the same towards the point opposite the target across the '
        'shoulder: never rewarded, a conflicting behaviour',
        lambda rng: _reacher_controller(True)),
}
_SAWYER = {
    'pick_and_lift': _Controller('reach, grasp and lift the green cube',
                                 _sawyer('pick_and_lift')),
    **{name: _Controller(c.description, _sawyer(name))
       for name, c in _PICK_AND_PLACE.items()},
}
_SAWYER_IDS = ('reach', 'grasp', 'lift', 'place_wide', 'place_narrow', 'stack',
               'stack_and_leave', 'bring_to_centre', 'bring_to_corner',
               'multitask')
# Scripted controllers by environment id, by name (the first is the
# default). Environments without one get only noise levels around the zero
# action and the random policy.
_CONTROLLERS: Dict[str, Dict[str, _Controller]] = {
    'control:point_mass-easy': {'pd': _POINT_MASS,
                                'pd_elsewhere': _POINT_MASS_ELSEWHERE},
    'control:point_mass-hard': {'pd': _POINT_MASS},
    'control:reacher-easy': _REACHER,
    'control:reacher-hard': _REACHER,
    **{f'sawyer:{task}': _SAWYER for task in _SAWYER_IDS},
}
# The same by environment id, by name: each entry makes one episode's
# controller from a random generator.
SCRIPTED_CONTROLLERS: Dict[str, Dict[str, Callable[[np.random.Generator],
                                                   Policy]]] = {
    env_id: {name: c.make for name, c in named.items()}
    for env_id, named in _CONTROLLERS.items()}


def controllers(env_id: str) -> List[str]:
  """Names of the scripted controllers for `env_id` (default first)."""
  return list(SCRIPTED_CONTROLLERS.get(env_id, {}))


def controller_descriptions(env_id: str) -> Dict[str, str]:
  """One line on what each scripted controller for `env_id` does, by name
  (default first, as `controllers`; empty where the environment has none)."""
  return {name: c.description
          for name, c in _CONTROLLERS.get(env_id, {}).items()}


@dataclasses.dataclass(frozen=True)
class Behaviour:
  """A behaviour policy: scripted action plus Gaussian noise of `noise`
  half-ranges, or uniform random."""
  tag: str
  noise: Optional[float]  # None: uniformly random actions.
  # Its scripted controller's name (None: the one `generate` is given).
  controller: Optional[str] = None

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
                       random: bool = True,
                       controllers: Sequence[str] = ()) -> List[Behaviour]:
  """Each noise level of the scripted controller, and the random policy.

  With several `controllers`, each noise level of each, tagged
  `<controller>-noise<n>` (a dataset of conflicting behaviours: e.g.
  point_mass's `pd,pd_elsewhere`)."""
  if len(controllers) > 1:
    scripted = [Behaviour(f'{c}-noise{n:g}', n, c) for c in controllers
                for n in noise_levels]
  else:
    scripted = [Behaviour(f'scripted-noise{n:g}', n) for n in noise_levels]
  return scripted + ([Behaviour('random', None)] if random else [])


def generate(env_id: str, directory: str, episodes_per_behaviour: int,
             behaviours: Optional[Sequence[Behaviour]] = None, seed: int = 0,
             max_steps_per_episode: Optional[int] = None,
             controller: Optional[str] = None,
             progress: Optional[Callable[[str], None]] = print) -> int:
  """Writes `episodes_per_behaviour` episodes of each behaviour; returns count.

  `controller`: which scripted controller (`controllers(env_id)`; default
  the first) acts for the behaviours that name none."""
  behaviours = list(behaviours or default_behaviours())
  available = SCRIPTED_CONTROLLERS.get(env_id, {})
  for name in {controller} | {b.controller for b in behaviours}:
    if name is not None and name not in available:
      raise ValueError(f'{env_id} has no scripted controller {name!r}; '
                       'it has: ' + (', '.join(available) or 'none'))
  env = environments.make(env_id, seed=seed)
  zero = np.zeros(env.action_spec().shape, np.float32)
  default = controller or next(iter(available), None)

  def make_controller(behaviour, rng):
    make = available.get(behaviour.controller or default,
                         lambda rng: lambda o: zero)
    return make(rng)
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
        policy = make_controller(behaviour, controller_rng)
        steps = 0
        while not timestep.last():
          action = behaviour.act(policy, timestep.observation,
                                 env.action_spec(), rng)
          timestep = env.step(action)
          writer.append(action, timestep)
          steps += 1
          if max_steps_per_episode and steps >= max_steps_per_episode:
            break
        try:
          path = writer.end_episode()
        except episodes_lib.DiskWriteError as e:
          e.written = written
          raise
        written += 1
        if progress:
          progress(f'[generate] {written}/{len(behaviours) * episodes_per_behaviour}'
                   f' episodes ({behaviour.tag}), {time.time() - start:.0f}s: {path}')
  finally:
    writer.close()
    env.close()
  return written
