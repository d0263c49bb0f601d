"""The Sawyer stacking observation, as ABM paper Appendix C.3 lists it.

One flat float vector; `FIELDS` gives the name and size of each part in
order, so rewards (and relabelling of logged data) read the parts they need
by name. Positions are in the task frame: origin at the centre of the
basket's floor, z up, metres. Poses are position (3) and quaternion (4,
w x y z); relative poses are the object's in the gripper's frame.
"""

from typing import Dict, List, Tuple

import numpy as np

CUBES = ('green', 'yellow', 'blue')

FIELDS: List[Tuple[str, int]] = [
    ('joint_position', 7), ('joint_velocity', 7), ('joint_torque', 7),
    ('wrist_pose', 7), ('wrist_velocity', 6), ('wrist_force', 6),
    ('finger_angle', 1), ('finger_velocity', 1), ('grasp', 1),
] + [(f'{cube}_{part}', 7) for cube in CUBES
     for part in ('pose', 'relative_pose')]

SIZE = sum(size for _, size in FIELDS)


def _slices() -> Dict[str, slice]:
  out, start = {}, 0
  for name, size in FIELDS:
    out[name] = slice(start, start + size)
    start += size
  return out


SLICES = _slices()


def field(observation: np.ndarray, name: str) -> np.ndarray:
  """observation[..., SIZE] -> the named part, [..., size]."""
  observation = np.asarray(observation)
  if observation.shape[-1] != SIZE:
    raise ValueError(f'a Sawyer observation has {SIZE} values, got '
                     f'{observation.shape[-1]}')
  return observation[..., SLICES[name]]


def pack(**parts) -> np.ndarray:
  """The flat observation from named parts (missing parts are zeros)."""
  unknown = set(parts) - set(SLICES)
  if unknown:
    raise ValueError(f'unknown observation parts: {sorted(unknown)}')
  out = np.zeros(SIZE, np.float32)
  for name, value in parts.items():
    out[SLICES[name]] = value
  return out
