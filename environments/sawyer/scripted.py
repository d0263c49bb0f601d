"""Scripted controllers for the Sawyer cell (no learning).

`PickAndLift`: reach above the green cube, align the fingers with its faces,
descend, close, lift. `PickAndPlace`: the same pick, then carry the cube to
a place on the basket's floor, set it down, let go and wait above it.

Used by tests (the tasks are achievable and their rewards fire) and, with
noise, as sources of demonstration-like data (datasets/generate.py).
"""

from typing import Optional, Sequence

import numpy as np

from abmrl.environments.sawyer import observations as obs_lib
from abmrl.environments.sawyer import rewards

GAIN = 2.0  # 1/s, proportional position control, clipped to the limits
ACTION_LIMIT = 0.07  # m/s, translational


def _yaw(quaternion) -> float:
  w, x, y, z = quaternion
  return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _face_error(angle: float) -> float:
  """Wrap to the nearest face of a cube: (−π/4, π/4]."""
  return float((angle + np.pi / 4) % (np.pi / 2) - np.pi / 4)


def _action(grip_pos, target, wrist: float, fingers: float) -> np.ndarray:
  """The environment's normalised action: a velocity towards `target` (a
  fraction of the 0.07 m/s limit), wrist and finger commands in [−1, 1]."""
  linear = np.clip(GAIN * (target - grip_pos) / ACTION_LIMIT, -1., 1.)
  return np.concatenate([linear, [wrist, fingers]]).astype(np.float32)


HOVER = 0.08  # m above the cube's centre while far from aligned
ALIGNED_XY, ALIGNED_YAW = 0.02, 0.3  # m, rad: fully misaligned at these
# Finger command against the grip's height above the cube's centre: +1 (open)
# at CLOSE_AT + CLOSE_RAMP and above, −1 (close) at CLOSE_AT − CLOSE_RAMP.
CLOSE_AT, CLOSE_RAMP = 0.016, 0.01  # m


def _pick(grip: np.ndarray, cube: np.ndarray) -> np.ndarray:
  """Not holding the cube: over it, turn the fingers to its faces and come
  down as they align (the height above the cube shrinks smoothly with the
  misalignment, so the actions are a smooth function of the state, which
  makes the data easier to imitate), then close."""
  grip_pos, cube_pos = grip[:3], cube[:3]
  # The fingers close along the grip frame's y axis; turn it to a face.
  yaw_error = _face_error(_yaw(cube[3:]) - _yaw(grip[3:]))
  wrist = float(np.clip(5.0 * yaw_error, -1, 1))
  distance_xy = np.linalg.norm(cube_pos[:2] - grip_pos[:2])
  misaligned = min(1.0, max(distance_xy / ALIGNED_XY,
                            abs(yaw_error) / ALIGNED_YAW))
  target = np.array([*cube_pos[:2], cube_pos[2] + HOVER * misaligned])
  # Close over the last centimetres of the way down, gradually: a ramp in
  # the height above the cube rather than a switch at one height.
  fingers = 1.0
  if misaligned < 0.75:
    fingers = float(np.clip((grip_pos[2] - cube_pos[2] - CLOSE_AT) /
                            CLOSE_RAMP, -1, 1))
  return _action(grip_pos, target, wrist, fingers)


class PickAndLift:
  """above → descend → close → lift, by the observation alone (stateless, so
  one controller serves any number of episodes)."""

  def __init__(self, cube: str = 'green', lift_height: float = 0.12):
    self._cube = cube
    self._lift_height = lift_height

  def __call__(self, observation: np.ndarray) -> np.ndarray:
    grip = obs_lib.field(observation, 'wrist_pose')
    cube = obs_lib.field(observation, f'{self._cube}_pose')
    if obs_lib.field(observation, 'grasp')[0] > 0.5:  # lift
      return _action(grip[:3], np.array([*cube[:2], self._lift_height]),
                     0.0, -1.0)
    return _pick(grip, cube)


class PickAndPlace:
  """Pick the cube, lift it to `carry_height`, carry it above `target_xy`,
  lower it to the floor, open, and wait above it.

  One episode's controller: with no `target_xy` it draws one on its first
  call, uniformly over the floor a gripper can reach (`rng`; out to 1.5 cm
  from where a cube would touch a wall), at least a cube and a
  half from where the other cubes are then, so the place is free. The
  tasks bring to centre and bring to corner are never what it does: its
  places ignore their targets, so (as in the paper's data, §5.2) a place
  falls within a target's reward tolerance only by chance — snippets that
  lead to success are in the data, as the paper's claim requires. With
  `keep_away`, not even by chance: places are never drawn within the
  tolerance of those targets (plus the controller's accuracy), though
  places near them are drawn as often as anywhere else.

  With probability `detour` an episode's carry first goes by a waypoint
  drawn uniformly out to `detour_margin` past the basket's walls (4 cm by
  default), at the carry height, before heading for the
  place — a carry that strays as an exploring agent's would, so the data
  show what holding the cube there is worth (and a policy's critic need
  not guess it).
  With `wander` > 0, at every step of a level carry the hand starts with
  that probability to drift up or down for a few steps (`WANDER_STEPS`, at
  a random vertical speed; only the vertical command changes), then lifts
  back to the carry height: from the same states the data then hold
  different vertical actions, which an advantage-weighted prior can choose
  between (docs/results/sawyer_bring_to_corner.md, "Why the policy does
  not lower").
  With `stop` > 0, at every step of a level carry over the floor (a
  detour's included) where the other cubes leave room, the hand with that
  probability gives up its place (and waypoint) and sets the cube down
  where it is: from a full-speed carry (states that, without stops, always
  carry on) the data then also hold the start of a set-down, anywhere on
  the way (docs/results/sawyer_bring_to_corner.md, "Data that start
  set-downs from a carry").
  With `hold` > 0, once the cube rests on its place (a stop's included)
  the hand with that probability keeps it there in closed fingers, still,
  for a few steps (`HOLD_STEPS`) before letting go: without holds every
  held, resting cube in the data is either let go at once or (just
  picked) lifted, so a prior fitted to them lifts wherever it is not let
  go (docs/results/sawyer_bring_to_corner.md, "Data that hold").
  With `onto` > 0, an episode's place is with that probability drawn on
  top of another cube (its centre, give or take half a cube) instead of
  on free floor: the set-down, which lowers the cube's bottom to the
  floor, then presses it onto the other cube until the wrist-force limit
  ends the episode — the mistake learned policies make where another cube
  stands on or by their target, which a controller that only sets down
  on free floor never shows in the logs
  (docs/results/sawyer_bring_to_corner.md, "What ends the episodes").
  Apart from the target, the waypoint, the wanders, the stops, the holds
  and the places on other cubes the actions are a function of the
  observation.
  """

  PLACED = 0.01  # m: the cube within this of the target (xy) is there
  LEAVE_HEIGHT = 0.22  # m above the floor, where the hand waits when done
  # m (xy) from the never-executed tasks' targets
  KEEP_AWAY = rewards.BRING_TOLERANCE + PLACED
  DETOUR_MARGIN = 0.04  # m: by default, how far past the walls detours go
  # m (xy, from the basket's centre): the floor a gripper can set a cube
  # down on, out to next to a wall (the corner target, rewards.CORNER_INSET)
  FLOOR_BOUND = np.abs(rewards.CORNER_TARGET[:2])
  WANDER_STEPS = (3, 15)  # a wander's length, steps (uniform, inclusive)
  WANDER_FLOOR = 0.02  # m: a wander ends with the cube's bottom this low
  HOLD_STEPS = (5, 60)  # a hold's length, steps (uniform, inclusive)

  def __init__(self, target_xy: Optional[Sequence[float]] = None,
               rng: Optional[np.random.Generator] = None,
               cube: str = 'green', carry_height: float = 0.12,
               keep_away: bool = False, detour: float = 0.0,
               wander: float = 0.0, stop: float = 0.0, hold: float = 0.0,
               onto: float = 0.0, detour_margin: float = DETOUR_MARGIN):
    for name, p in (('detour', detour), ('wander', wander), ('stop', stop),
                    ('hold', hold), ('onto', onto)):
      if not 0.0 <= p <= 1.0:
        raise ValueError(f'{name} is a probability, got {p}')
    if detour_margin < 0:
      raise ValueError(f'detour_margin is a distance, got {detour_margin}')
    self._wander = wander
    self._stop = stop
    self._hold = hold
    self._onto = onto
    self._hold_left = None  # steps still to hold, once the cube rests there
    self._wander_left, self._wander_speed = 0, 0.0
    self._target = None if target_xy is None else np.asarray(target_xy, float)
    self._rng = rng or np.random.default_rng()
    self._cube = cube
    self._carry_height = carry_height
    self._keep_away = keep_away
    # m (xy, from the basket's centre): a detour's waypoints, past the walls
    bound = np.asarray(rewards.BASKET_HALF_EXTENT) + detour_margin
    self._via = (self._rng.uniform(-bound, bound)
                 if detour and self._rng.uniform() < detour else None)

  @property
  def target_xy(self) -> Optional[np.ndarray]:
    return self._target

  @property
  def via_xy(self) -> Optional[np.ndarray]:
    """The detour's waypoint while it is still ahead, else None."""
    return self._via

  def _free(self, observation: np.ndarray, xy: np.ndarray) -> bool:
    """Whether a cube set down at `xy` would clear the other cubes."""
    return all(np.linalg.norm(xy - obs_lib.field(observation, f'{c}_pose')[:2])
               > 1.5 * rewards.CUBE_SIZE
               for c in obs_lib.CUBES if c != self._cube)

  def _on_floor(self, xy: np.ndarray) -> bool:
    """Whether a gripper can set a cube down at `xy`."""
    return bool(np.all(np.abs(xy) <= self.FLOOR_BOUND))

  def _draw_target(self, observation: np.ndarray) -> np.ndarray:
    if self._onto and self._rng.uniform() < self._onto:  # on another cube
      others = [c for c in obs_lib.CUBES if c != self._cube]
      other = others[int(self._rng.integers(len(others)))]
      half = rewards.CUBE_SIZE / 2
      return (obs_lib.field(observation, f'{other}_pose')[:2] +
              self._rng.uniform(-half, half, 2))
    avoid = ([rewards.CENTRE_TARGET[:2], rewards.CORNER_TARGET[:2]]
             if self._keep_away else [])
    while True:
      xy = self._rng.uniform(-self.FLOOR_BOUND, self.FLOOR_BOUND)
      if (self._free(observation, xy) and
          all(np.linalg.norm(xy - a) >= self.KEEP_AWAY for a in avoid)):
        return xy

  def __call__(self, observation: np.ndarray) -> np.ndarray:
    if self._target is None:
      self._target = self._draw_target(observation)
    grip = obs_lib.field(observation, 'wrist_pose')
    cube = obs_lib.field(observation, f'{self._cube}_pose')
    grip_pos, cube_pos = grip[:3], cube[:3]
    held = obs_lib.field(observation, 'grasp')[0] > 0.5
    if (held and self._via is not None and
        np.linalg.norm(self._via - cube_pos[:2]) < self.PLACED):
      self._via = None  # by the waypoint: on to the place
    to_target = self._target - cube_pos[:2]
    there = self._via is None and np.linalg.norm(to_target) < self.PLACED
    if self._via is not None:  # carry to the waypoint first
      to_target = self._via - cube_pos[:2]
    resting = cube_pos[2] < rewards.CUBE_SIZE / 2 + 0.005
    lifted = cube_pos[2] >= self._carry_height - 0.02  # at carry height
    carrying = held and not there and lifted
    if (carrying and self._stop and self._free(observation, cube_pos[:2]) and
        self._on_floor(cube_pos[:2]) and self._rng.uniform() < self._stop):
      # Give up the place (and any waypoint still ahead): set down here.
      self._target, self._via = cube_pos[:2].copy(), None
      to_target, there = np.zeros(2), True
    if held:
      if there and resting:  # set down: hold it still a while, or let go
        if self._hold_left is None:  # drawn once, at the first set-down
          self._hold_left = (
              int(self._rng.integers(self.HOLD_STEPS[0],
                                     self.HOLD_STEPS[1] + 1))
              if self._hold and self._rng.uniform() < self._hold else 0)
        if self._hold_left:
          self._hold_left -= 1
          return _action(grip_pos, grip_pos, 0.0, -1.0)
        return _action(grip_pos, grip_pos, 0.0, 1.0)
      if there:  # above the place: lower
        goal = np.array([*(grip_pos[:2] + to_target), grip_pos[2]
                         - (cube_pos[2] - rewards.CUBE_SIZE / 2)])
      elif not lifted:  # lift first
        goal = np.array([*grip_pos[:2], self._carry_height])
      else:  # carry
        goal = np.array([*(grip_pos[:2] + to_target), grip_pos[2]])
        self._maybe_start_wander()
      action = _action(grip_pos, goal, 0.0, -1.0)
      if not there and self._wander_left:
        self._wander_left -= 1
        if cube_pos[2] - rewards.CUBE_SIZE / 2 < self.WANDER_FLOOR:
          self._wander_left = 0  # never into the floor
        else:
          action[2] = self._wander_speed
      return action
    if there and resting:  # placed: open, rise well clear and wait there
      # (above the arm's home, 0.15 m, where evaluation episodes start their
      # pick: waiting then does not look like about to pick, which only the
      # unobserved target would tell apart).
      return _action(grip_pos, np.array([*cube_pos[:2], self.LEAVE_HEIGHT]),
                     0.0, 1.0)
    return _pick(grip, cube)

  def _maybe_start_wander(self) -> None:
    """While carrying level: with probability `wander`, a vertical drift
    for the next few steps (only the vertical command changes)."""
    if self._wander_left == 0 and self._wander and (
        self._rng.uniform() < self._wander):
      self._wander_left = int(self._rng.integers(self.WANDER_STEPS[0],
                                                 self.WANDER_STEPS[1] + 1))
      self._wander_speed = float(self._rng.uniform(-1., 1.))
