"""Sawyer task rewards (ABM paper, Appendix C.3) at constructed states,
against values computed by hand from eq. 13–14 and the task definitions."""

import math

import numpy as np
import pytest

from abmrl.environments.sawyer import observations as obs_lib
from abmrl.environments.sawyer import rewards


def ref_stol(v, epsilon, r):
  """Eq. 13 written out."""
  if abs(v) < epsilon:
    return 1.0
  return 1.0 - math.tanh(math.atanh(math.sqrt(0.95)) / r * abs(v))**2


def state(hand=(0, 0, 0.3), green=(0, 0, 0.025), yellow=(0.1, 0, 0.025),
          grasp=0.0):
  quat = [1, 0, 0, 0]
  return obs_lib.pack(wrist_pose=list(hand) + quat,
                      green_pose=list(green) + quat,
                      yellow_pose=list(yellow) + quat, grasp=grasp)


def test_stol_and_btol():
  for v, eps, r in [(0.0, 0.02, 0.15), (0.019, 0.02, 0.15), (0.02, 0.02, 0.15),
                    (0.075, 0.02, 0.15), (-0.3, 0.01, 0.2), (0.005, 0.0, 0.01)]:
    assert rewards.stol(v, eps, r) == pytest.approx(ref_stol(v, eps, r))
  assert rewards.stol(0.15, 0.02, 0.15) == pytest.approx(0.05)  # at the margin
  np.testing.assert_allclose(rewards.stol(np.array([0.0, 0.15]), 0.02, 0.15),
                             [1.0, 0.05])
  assert rewards.btol(0.029, 0.03) == 1.0 and rewards.btol(-0.031, 0.03) == 0.0


def test_reach_grasp_lift():
  assert rewards.reach(state(hand=(0, 0, 0.025))) == 1.0
  assert rewards.reach(state(hand=(0, 0.15, 0.025))) == pytest.approx(0.05)
  assert rewards.grasp(state(grasp=1.0)) == 1.0
  assert rewards.grasp(state()) == 0.0
  assert rewards.lift(state(green=(0, 0, 0.025))) == 0.0
  assert rewards.lift(state(green=(0, 0, 0.065))) == pytest.approx(0.5)
  assert rewards.lift(state(green=(0, 0, 0.2))) == 1.0


def test_place_wide_and_narrow():
  above = state(green=(0.1, 0, 0.075), yellow=(0.1, 0, 0.025))
  assert rewards.place_wide(above) == 1.0
  assert rewards.place_narrow(above) == pytest.approx(1.0)  # 1 − tanh²(0)
  off = state(green=(0.1, 0.005, 0.075), yellow=(0.1, 0, 0.025))
  assert rewards.place_wide(off) == 1.0  # within ε = 1 cm
  assert rewards.place_narrow(off) == pytest.approx(ref_stol(0.005, 0, 0.01))
  assert rewards.place_narrow(
      state(green=(0.1, 0.01, 0.075), yellow=(0.1, 0, 0.025))) == (
          pytest.approx(0.05, rel=1e-4))
  far = state(green=(0.1, 0.2, 0.075), yellow=(0.1, 0, 0.025))
  assert rewards.place_wide(far) == pytest.approx(0.05)


def test_stack_and_stack_and_leave():
  stacked = dict(green=(0.1, 0, 0.075), yellow=(0.1, 0, 0.025))
  assert rewards.stack(state(**stacked)) == 1.0
  assert rewards.stack(state(grasp=1.0, **stacked)) == 0.0  # still holding
  assert rewards.stack(state(green=(0.14, 0, 0.075),
                             yellow=(0.1, 0, 0.025))) == 0.0  # 4 cm off
  assert rewards.stack(state(green=(0.1, 0, 0.025),
                             yellow=(0.1, 0, 0.025))) == 0.0  # not on top
  # Hand 10 cm above the stacked green cube: full reward; at its height: the
  # stol margin value.
  assert rewards.stack_and_leave(state(hand=(0.1, 0, 0.175), **stacked)) == 1.0
  assert rewards.stack_and_leave(state(hand=(0.1, 0, 0.075), **stacked)) == (
      pytest.approx(0.05))


def test_new_tasks_and_batches():
  centre = state(green=tuple(rewards.CENTRE_TARGET))
  corner = state(green=tuple(rewards.CORNER_TARGET))
  assert rewards.bring_to_centre(centre) == 1.0
  assert rewards.bring_to_corner(corner) == 1.0
  assert rewards.bring_to_corner(centre) < 0.5
  batch = np.stack([centre, corner])
  everything = rewards.all_rewards(batch)
  assert set(everything) == set(rewards.TASKS) | set(rewards.NEW_TASKS)
  assert len(rewards.TASKS) == 7
  assert all(r.shape == (2,) for r in everything.values())
  np.testing.assert_allclose(everything['bring_to_centre'],
                             [1.0, rewards.bring_to_centre(corner)])


def test_observation_layout():
  assert obs_lib.SIZE == 7 * 3 + 7 + 6 + 6 + 3 + 3 * 14
  with pytest.raises(ValueError, match='85 values'):
    rewards.reach(np.zeros(10))
  with pytest.raises(ValueError, match='unknown'):
    obs_lib.pack(nose=1)
