"""Environment steps/s: our Sawyer stacking cell against dm_control's
manipulation stacking task (`stack_2_bricks_features`), in one run.

Random actions, one process, the CPU. Ours steps at 20 Hz (10 physics steps
of 5 ms per control step); dm_control's at 25 Hz. Prints both and the ratio.

Usage: python benchmarks/sawyer_env.py [--steps 3000]
"""

import argparse
import os

import timing

os.environ.setdefault('MUJOCO_GL', 'egl')


def steps_per_second(env, steps: int, seed: int = 0) -> float:
  import numpy as np
  rng = np.random.default_rng(seed)
  spec = env.action_spec()
  env.reset()

  def step():
    if env.step(rng.uniform(spec.minimum, spec.maximum)).last():
      env.reset()
  return timing.calls_per_second(step, steps)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--steps', type=int, default=3000)
  parser.add_argument('--repeats', type=int, default=2)
  args = parser.parse_args()
  from dm_control import manipulation
  from abmrl.environments.sawyer.env import SawyerStacking
  ours = SawyerStacking(task='stack_and_leave', seed=0)
  theirs = manipulation.load('stack_2_bricks_features', seed=0)
  a, b = [], []
  for _ in range(args.repeats):
    a.append(steps_per_second(ours, args.steps))
    b.append(steps_per_second(theirs, args.steps))
  print(f'env steps/s with random actions ({args.steps} steps, best of '
        f'{args.repeats}):')
  print(f'  abmrl sawyer:stack_and_leave (20 Hz, 10 substeps)   {max(a):8.1f}'
        f'   runs: ' + ', '.join(f'{x:.1f}' for x in a))
  print(f'  dm_control stack_2_bricks_features (25 Hz)          {max(b):8.1f}'
        f'   runs: ' + ', '.join(f'{x:.1f}' for x in b))
  print(f'  ratio abmrl / dm_control: {max(a) / max(b):.2f}x')


if __name__ == '__main__':
  main()
