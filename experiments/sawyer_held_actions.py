"""What Sawyer logs do once the green cube rests on the floor in closed
fingers: lift it, keep it still, or let go.

A prior fitted to the logs (ABM, BM) can only choose among what they do
at a state, and the E-step gets little further than about 1.9 σ from the
prior's mean (docs/results/sawyer_bring_to_corner.md, "What the E-step
can reach"). At a held, resting cube the state does not say whether the
hand has just picked it (and will lift) or just set it down at its place
(and will let go, or, with the `hold` controllers, keep it still a
while), so these fractions are what the prior averages there.

For each dataset: the logged rows whose state has the green cube held
(grasp flag up) with its bottom within 5 mm of the floor and the fingers
not already letting go (the previous logged finger command ≤ 0; the flag
drops a few steps after the fingers start to open), everywhere and
within 3 cm (x-y) of the corner target, split by the logged action:
lifting (vertical > +0.3 of the limit), fingers opening (finger command
> 0), or still (neither, and |x|, |y|, |z| ≤ 0.3).

Usage:
  python experiments/sawyer_held_actions.py data/sawyer_place10 \\
      data/sawyer_place11
"""

import argparse
import sys


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('datasets', nargs='+')
  args = parser.parse_args()

  import numpy as np
  from abmrl.datasets import episodes
  from abmrl.environments.sawyer import multitask
  from abmrl.environments.sawyer import observations as obs_lib
  from abmrl.environments.sawyer import rewards

  for dataset in args.datasets:
    paths = episodes.list_episodes(dataset)
    if not paths:
      sys.exit(f'abmrl: error: {dataset} holds no episodes')
    actions, near = [], []
    for path in paths:
      episode = episodes.read_episode(path)
      if episode.observation.shape[-1] < obs_lib.SIZE:
        sys.exit(f'abmrl: error: {dataset} is not Sawyer data')
      states = multitask.base_observation(episode.observation[:-1])
      cube = obs_lib.field(states, 'green_pose')[:, :3]
      previous_fingers = np.concatenate([[-1.], episode.action[:-2, 4]])
      held = ((obs_lib.field(states, 'grasp')[:, 0] > 0.5) &
              (cube[:, 2] < rewards.CUBE_SIZE / 2 + 0.005) &
              (previous_fingers <= 0))
      actions.append(episode.action[:-1][held])
      near.append(np.linalg.norm(cube[held, :2] - rewards.CORNER_TARGET[:2],
                                 axis=1) < 0.03)
    actions, near = np.concatenate(actions), np.concatenate(near)
    lifting = actions[:, 2] > 0.3
    opening = ~lifting & (actions[:, 4] > 0)
    still = ~lifting & ~opening & np.all(np.abs(actions[:, :3]) <= 0.3, 1)
    print(f'{dataset}: {len(paths)} episodes')
    for label, mask in (('everywhere', np.ones_like(near)),
                        ('within 3 cm of the corner target', near)):
      n = int(mask.sum())
      if not n:
        print(f'  {label}: no held, resting rows')
        continue
      print(f'  {label}: {n} held, resting rows: lifting '
            f'{lifting[mask].mean():.0%}, fingers opening '
            f'{opening[mask].mean():.0%}, still {still[mask].mean():.0%}; '
            f'vertical action {actions[mask, 2].mean():+.2f} ± '
            f'{actions[mask, 2].std():.2f}')


if __name__ == '__main__':
  main()
