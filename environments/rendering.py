"""Offscreen rendering: README pictures and evaluation videos.

MuJoCo renders offscreen through EGL (a GPU, or Mesa's EGL with a device) or
OSMesa (software; Debian's libosmesa6). MUJOCO_GL picks one and must be set
before MuJoCo loads: `default_backend()` is what the command line sets when
the user has not. Rendering itself is lazy (first frame), so a machine with
neither can still train.
"""

import ctypes.util
import os
from typing import Optional

import dm_env
import numpy as np


class RenderingUnavailable(RuntimeError):
  """No offscreen OpenGL here."""


def default_backend() -> str:
  """'osmesa' where libOSMesa is installed (it works without a GPU or a
  display), else 'egl'."""
  return 'osmesa' if ctypes.util.find_library('OSMesa') else 'egl'


def render(environment: dm_env.Environment, width: int = 320,
           height: int = 240, camera: Optional[str] = None) -> np.ndarray:
  """An RGB frame [height, width, 3] of any environment here: the Sawyer
  cells' own `render`, or the control suite's physics (through Acme's
  wrappers, which forward attributes)."""
  try:
    if hasattr(environment, 'render'):
      return (environment.render(width, height) if camera is None
              else environment.render(width, height, camera))
    return environment.physics.render(height, width,
                                      camera_id=camera or 0)
  except Exception as e:  # pylint: disable=broad-except
    if 'GL' in type(e).__name__ or 'GL' in str(e) or isinstance(
        e, (ImportError, AttributeError)):
      raise RenderingUnavailable(
          f'offscreen rendering failed ({type(e).__name__}); install '
          'Debian\'s libosmesa6 and set MUJOCO_GL=osmesa, or use a GPU with '
          'MUJOCO_GL=egl') from e
    raise


def write_gif(frames, path: str, seconds_per_frame: float) -> str:
  """Writes RGB frames as a looping GIF, atomically (a `.tmp.gif` renamed),
  playing at `seconds_per_frame` (GIF durations are whole ms, ≥ 20)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + '.tmp.gif'
  Image.fromarray(frames[0]).save(
      tmp, save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]],
      duration=max(20, int(1000 * seconds_per_frame)), loop=0)
  os.replace(tmp, path)
  return path
