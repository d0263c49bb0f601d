"""A scripted controller for the Sawyer cell (no learning): reach above the
green cube, align the fingers with its faces, descend, close, lift.

Used by tests (the tasks are achievable and their rewards fire) and, with
noise, as a source of demonstration-like data.
"""

import numpy as np

from environments.sawyer import observations as obs_lib
from environments.sawyer import rewards

GAIN = 2.0  # 1/s, proportional position control, clipped to the limits


def _yaw(quaternion) -> float:
  w, x, y, z = quaternion
  return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _face_error(angle: float) -> float:
  """Wrap to the nearest face of a cube: (−π/4, π/4]."""
  return float((angle + np.pi / 4) % (np.pi / 2) - np.pi / 4)


class PickAndLift:
  """above → descend → close → lift, by the observation alone (stateless, so
  one controller serves any number of episodes)."""

  def __init__(self, cube: str = 'green', lift_height: float = 0.12):
    self._cube = cube
    self._lift_height = lift_height

  def __call__(self, observation: np.ndarray) -> np.ndarray:
    grip = obs_lib.field(observation, 'wrist_pose')
    cube = obs_lib.field(observation, f'{self._cube}_pose')
    grip_pos, cube_pos = grip[:3], cube[:3]
    # The fingers close along the grip frame's y axis; turn it to a face.
    yaw_error = _face_error(_yaw(cube[3:]) - _yaw(grip[3:]))
    wrist = float(np.clip(3.0 * yaw_error, -1, 1))
    distance_xy = np.linalg.norm(cube_pos[:2] - grip_pos[:2])
    aligned = distance_xy < 0.005 and abs(yaw_error) < 0.05
    held = obs_lib.field(observation, 'grasp')[0] > 0.5
    if held:  # lift
      target, fingers = np.array([*cube_pos[:2], self._lift_height]), -1.0
    elif distance_xy < 0.015 and grip_pos[2] < cube_pos[2] + 0.01:
      target, fingers = cube_pos.copy(), -1.0  # at the cube: close
    elif aligned:  # descend, open
      target, fingers = cube_pos.copy(), 1.0
    else:  # above the cube, open
      target = np.array([*cube_pos[:2], max(grip_pos[2], cube_pos[2] + 0.08)])
      fingers = 1.0
    linear = np.clip(GAIN * (target - grip_pos), -0.07, 0.07)
    return np.concatenate([linear, [wrist, fingers]]).astype(np.float32)
