"""Rewards of the Sawyer stacking tasks (ABM paper, Appendix C.3).

Every reward is a function of the observation alone (environments/sawyer/
observations.py), so logged data can be relabelled for any task, including
tasks never executed when the data were collected (§5.2, Figure 4). All
functions take observations [..., SIZE] and return rewards [...] in [0, 1].

Geometry the rewards assume: 5 cm cubes (Place puts the green cube 5 cm
above the yellow one) and heights measured from the basket's floor.
"""

from typing import Callable, Dict

from dm_control.utils import rewards as dm_rewards
import numpy as np

from abmrl.environments.sawyer import observations as obs_lib

CUBE_SIZE = 0.05  # m, edge
# The basket's inner floor, centred at the task frame's origin (m).
BASKET_HALF_EXTENT = (0.12, 0.12)
# New tasks of Figure 4 (the paper gives no formula; ours follow Reach):
# the green cube resting at the basket's centre, or in its +x+y corner.
# Within this of its target (m) the cube earns a bring task's full reward.
BRING_TOLERANCE = 0.02
CENTRE_TARGET = np.array([0.0, 0.0, CUBE_SIZE / 2])
# The corner as a gripper can set a cube down there: the open fingers are
# wider than the cube, and with the cube's centre beyond 8.8 cm from the
# centre they land on the basket's rim instead (measured with the scripted
# pick-and-place), so the target is 1.5 cm in from where a cube would touch
# both walls.
CORNER_INSET = 0.015
CORNER_TARGET = np.array([BASKET_HALF_EXTENT[0] - CUBE_SIZE / 2 - CORNER_INSET,
                          BASKET_HALF_EXTENT[1] - CUBE_SIZE / 2 - CORNER_INSET,
                          CUBE_SIZE / 2])
# Where each bring task wants the green cube, by task name.
BRING_TARGETS = {'bring_to_centre': CENTRE_TARGET,
                 'bring_to_corner': CORNER_TARGET}


def stol(v, epsilon: float, r: float) -> np.ndarray:
  """Eq. 13: 1 if |v| < ε, else 1 − tanh²(atanh(√0.95)·|v|/r).

  This is dm_control's `tolerance` with bounds (0, 0), margin r and the
  tanh-squared sigmoid at 0.05 (it takes |v|, not |v| − ε, as the paper
  writes it), and 1 inside ε.
  """
  v = np.abs(np.asarray(v, np.float64))
  outside = dm_rewards.tolerance(v, bounds=(0., 0.), margin=r,
                                 sigmoid='tanh_squared', value_at_margin=0.05)
  return np.where(v < epsilon, 1.0, outside)


def btol(v, epsilon: float) -> np.ndarray:
  """Eq. 14: 1 if |v| < ε, else 0."""
  return (np.abs(np.asarray(v)) < epsilon).astype(np.float64)


def _position(observation, name: str) -> np.ndarray:
  return obs_lib.field(observation, name)[..., :3].astype(np.float64)


def _distance(a, b) -> np.ndarray:
  return np.linalg.norm(a - b, axis=-1)


def _dxy(a, b) -> np.ndarray:
  return np.linalg.norm(a[..., :2] - b[..., :2], axis=-1)


def _dz(a, b) -> np.ndarray:
  """dz(a, b) = z_b − z_a. The paper does not define the sign; this is the
  one under which Stack (dz(green, yellow) + 0.05 ≈ 0 with green on top) and
  Stack and Leave (dz(end effector, green) + 0.10 ≈ 0 with the hand 10 cm
  above) reward what their descriptions say."""
  return b[..., 2] - a[..., 2]


def _grasp(observation) -> np.ndarray:
  return (obs_lib.field(observation, 'grasp')[..., 0] > 0.5).astype(np.float64)


def reach(observation):
  return stol(_distance(_position(observation, 'wrist_pose'),
                        _position(observation, 'green_pose')), 0.02, 0.15)


def grasp(observation):
  return _grasp(observation)


def lift(observation):
  """0 below 3 cm, 1 above 10 cm, linear between (the green cube's height)."""
  height = _position(observation, 'green_pose')[..., 2]
  return np.clip((height - 0.03) / (0.10 - 0.03), 0.0, 1.0)


def _above_yellow(observation):
  return _distance(_position(observation, 'green_pose'),
                   _position(observation, 'yellow_pose') + [0, 0, 0.05])


def place_wide(observation):
  return stol(_above_yellow(observation), 0.01, 0.20)


def place_narrow(observation):
  return stol(_above_yellow(observation), 0.00, 0.01)


def stack(observation):
  green = _position(observation, 'green_pose')
  yellow = _position(observation, 'yellow_pose')
  return (btol(_dxy(green, yellow), 0.03) *
          btol(_dz(green, yellow) + 0.05, 0.01) * (1. - _grasp(observation)))


def stack_and_leave(observation):
  hand = _position(observation, 'wrist_pose')
  green = _position(observation, 'green_pose')
  return stol(_dz(hand, green) + 0.10, 0.03, 0.10) * stack(observation)


def bring_to_centre(observation):
  return stol(_distance(_position(observation, 'green_pose'), CENTRE_TARGET),
              BRING_TOLERANCE, 0.15)


def bring_to_corner(observation):
  return stol(_distance(_position(observation, 'green_pose'), CORNER_TARGET),
              BRING_TOLERANCE, 0.15)


# The seven tasks of the data-collection runs, in the paper's order, then
# the two that were never executed (learned from relabelled logs).
TASKS: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    'reach': reach, 'grasp': grasp, 'lift': lift, 'place_wide': place_wide,
    'place_narrow': place_narrow, 'stack': stack,
    'stack_and_leave': stack_and_leave,
}
NEW_TASKS: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    'bring_to_centre': bring_to_centre, 'bring_to_corner': bring_to_corner,
}


def all_rewards(observation) -> Dict[str, np.ndarray]:
  """Every task's reward for the observation(s)."""
  return {name: fn(observation) for name, fn in {**TASKS, **NEW_TASKS}.items()}
