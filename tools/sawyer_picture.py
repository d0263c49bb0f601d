"""The README's picture of the Sawyer cell: the scripted controller picking
up the green cube, four frames (needs offscreen GL: MUJOCO_GL=osmesa with
Debian's libosmesa6, or egl).

Usage: MUJOCO_GL=osmesa .venv/bin/python tools/sawyer_picture.py [--out docs/img/sawyer_lift.png]
"""

import argparse
import os


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--out', default='docs/img/sawyer_lift.png')
  args = parser.parse_args()
  import numpy as np
  from PIL import Image
  from abmrl.environments import rendering
  from abmrl.environments.sawyer import env as env_lib
  from abmrl.environments.sawyer import scripted
  env = env_lib.SawyerStacking(task='lift', seed=0)
  controller = scripted.PickAndLift()
  timestep = env.reset()
  frames = [rendering.render(env, 480, 360)]
  for step in range(1, 141):
    timestep = env.step(controller(timestep.observation))
    if step in (40, 80, 140):
      frames.append(rendering.render(env, 480, 360))
  env.close()
  picture = np.concatenate([np.concatenate(frames[:2], axis=1),
                            np.concatenate(frames[2:], axis=1)], axis=0)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  Image.fromarray(picture).save(args.out)
  print(f'wrote {args.out}')


if __name__ == '__main__':
  main()
