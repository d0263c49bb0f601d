"""What trained Sawyer policies do: returns, grasps, where the green cube
ends up, against holding still and a scripted reference, on the same starts.

For each run directory: the latest checkpoint's RL policy (and prior, where
the agent has one) acts with its mean action for --episodes episodes of the
run's environment (seeds 1000, 1001, ...: the same cells for every row).
Reference rows: the zero action, and the scripted pick-and-place commanded
to put the cube at the task's target (bring_to_corner, bring_to_centre;
the centre for other tasks); with --dataset (repeatable), the logged
episodes relabelled for the task (their own starts), and the closest the
cube comes to the target in them. The cubes start anywhere in the basket,
so in some cells another cube stands on the target (a cube set down
there would overlap it): the green cube gets within the tolerance there
only squeezed in beside it, if at all, or by pushing it away, which the
logs never do; so the done count is also given over the other cells,
and --free-cells takes only cells whose target is free (the first
--episodes of seeds 1000, 1001, ... that are: the same cells for every
row again).

Prints a Markdown table; then one of what the episodes the wrist-force
limit ended were pressing on (the fingers on another cube, a wall or the
floor; the held cube onto another cube or the floor; ...: contacts at the
last step); then, for a bring task, a line per policy with a letter per
cell (done, near, force-limit ending) under one marking the cells whose
target is taken. Writes them all to --out if given.

Usage:
  python experiments/sawyer_rollouts.py runs/corner/abm_mpo/seed0 \
      runs/corner/bm_mpo/seed0 [--episodes 10] [--dataset DATA] \
      [--dataset DATA2] [--free-cells] [--out table.md]
"""

import argparse
import os
import sys
from typing import NamedTuple, Optional

import numpy as np

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('MUJOCO_GL', 'egl')


NEAR = 0.05  # m: "within 5 cm" of the target


class Episode(NamedTuple):
  """One episode's outcome, as the tables count it."""
  ret: float  # return
  grasped: bool  # the grasp flag was up at some step
  green: np.ndarray  # the green cube's final position
  steps: int
  ending: Optional[str]  # one of env.ENDINGS if the wrist-force limit
  # ended it, else None
  taken: bool  # another cube stood on the task's target at the start


def taken(observation, target) -> bool:
  """Whether another cube stands where the green one is to go: a cube set
  down at `target` would overlap it (the cubes start square to the
  basket)."""
  from abmrl.environments.sawyer import observations as obs_lib
  from abmrl.environments.sawyer import rewards
  return target is not None and any(
      np.all(np.abs(obs_lib.field(observation, f'{c}_pose')[:2] - target[:2])
             < rewards.CUBE_SIZE) for c in obs_lib.CUBES if c != 'green')


def cell_seeds(env_id, episodes: int, free_only: bool):
  """The seeds of the cells to roll out: 1000, 1001, ...; with
  `free_only`, only those whose target no other cube stands on."""
  from abmrl import environments
  from abmrl.environments.sawyer import rewards
  target = rewards.BRING_TARGETS.get(env_id.split(':')[1])
  if free_only and target is None:
    sys.exit(f'abmrl: error: --free-cells needs a bring task, not {env_id}')
  seeds, seed = [], 1000
  while len(seeds) < episodes:
    if not (free_only and taken(
        environments.make(env_id, seed=seed).reset().observation, target)):
      seeds.append(seed)
    seed += 1
  return seeds


def rollouts(env_id, make_act, seeds):
  """make_act() -> one episode's act(observation) -> action; an Episode
  per cell (seed)."""
  from abmrl import environments
  from abmrl.environments.sawyer import env as env_lib
  from abmrl.environments.sawyer import observations as obs_lib
  from abmrl.environments.sawyer import rewards
  target = rewards.BRING_TARGETS.get(env_id.split(':')[1])
  out = []
  for seed in seeds:
    env = environments.make(env_id, seed=seed)
    timestep, total, grasped, steps = env.reset(), 0., False, 0
    start_taken = taken(timestep.observation, target)
    act = make_act()
    while not timestep.last():
      timestep = env.step(act(timestep.observation))
      total += float(timestep.reward)
      grasped |= obs_lib.field(timestep.observation, 'grasp')[0] > 0.5
      steps += 1
    ending = None
    if steps < env_lib.EPISODE_STEPS:
      ending = env.pressed_on()
    out.append(Episode(
        total, grasped,
        obs_lib.field(timestep.observation, 'green_pose')[:3].copy(), steps,
        ending, start_taken))
  return out


def logged(directory, env_id):
  """The logged episodes in `directory` relabelled for `env_id`'s task (as
  the restorers relabel them), as rollouts() gives them; and the closest
  the cube comes to the task's target (m) in any of their steps."""
  from abmrl import environments
  from abmrl.datasets import episodes as episodes_lib
  from abmrl.environments.sawyer import observations as obs_lib
  from abmrl.environments.sawyer import rewards
  (observation_fn, reward_fn), = environments.relabellings(env_id)
  target = rewards.BRING_TARGETS.get(env_id.split(':')[1])
  out, closest = [], np.inf
  for path in episodes_lib.list_episodes(directory):
    episode = episodes_lib.relabelled(episodes_lib.read_episode(path),
                                      reward_fn, observation_fn)
    green = obs_lib.field(episode.observation, 'green_pose')[:, :3]
    out.append(Episode(
        float(episode.reward.sum()),
        bool((obs_lib.field(episode.observation, 'grasp')[:, 0] > 0.5).any()),
        green[-1].copy(), len(episode.observation) - 1, None,
        taken(episode.observation[0], target)))
    if target is not None:
      closest = min(closest, np.linalg.norm(green - target, axis=-1).min())
  return out, closest


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('run_dirs', nargs='+')
  parser.add_argument('--episodes', type=int, default=10)
  parser.add_argument('--out', help='also write the table here')
  parser.add_argument('--dataset', action='append', default=[],
                      help='also a row for the logged episodes in this '
                      'dataset, relabelled for the runs\' task (repeatable)')
  parser.add_argument('--free-cells', action='store_true',
                      help='only cells whose target no other cube stands on '
                      'at the start (bring tasks)')
  args = parser.parse_args()
  if args.episodes < 1:
    parser.error(f'--episodes must be at least 1, got {args.episodes}')

  import tensorflow as tf
  from abmrl.agents import networks
  from abmrl import environments
  from abmrl.environments.sawyer import env as env_lib
  from abmrl.environments.sawyer import rewards
  from abmrl.environments.sawyer import scripted
  from abmrl.launch import config as config_lib
  from abmrl.launch import run as run_lib

  try:
    configs = [run_lib.load_run(run_dir) for run_dir in args.run_dirs]
  except config_lib.ConfigError as e:
    sys.exit(f'abmrl: error: {e}')
  env_ids = {c.env_id for c in configs}
  if len(env_ids) != 1 or not next(iter(env_ids)).startswith('sawyer:'):
    sys.exit('abmrl: error: the runs must share one sawyer:<task> '
             f'environment, got {sorted(env_ids)}')
  env_id = env_ids.pop()
  task = env_id.split(':')[1]
  target = rewards.BRING_TARGETS.get(task)

  rows = []  # (label, per-episode results)
  closest = {}  # dataset -> closest approach to the target (m)
  for dataset in args.dataset:
    from abmrl.datasets import episodes as episodes_lib
    try:
      data_env = episodes_lib.read_spec(dataset).env_id
    except episodes_lib.DatasetError as e:
      sys.exit(f'abmrl: error: --dataset: {e}')
    if not data_env.startswith('sawyer:'):
      sys.exit(f'abmrl: error: --dataset {dataset} holds {data_env} '
               'episodes, not Sawyer ones')
    name = os.path.basename(dataset.rstrip('/'))
    data, closest[name] = logged(dataset, env_id)
    rows.append((f'logged data {name} ({len(data)} episodes)', data))

  goal = np.zeros(2) if target is None else target[:2]
  seeds = cell_seeds(env_id, args.episodes, args.free_cells)
  rows.append(('zero action', rollouts(
      env_id, lambda: lambda o: np.zeros(5, np.float32), seeds)))
  rows.append((f'scripted pick-and-place to {np.round(goal, 3).tolist()}',
               rollouts(env_id, lambda: scripted.PickAndPlace(target_xy=goal),
                        seeds)))
  environment = environments.make(env_id)  # sizes the networks
  for run_dir, config in zip(args.run_dirs, configs):
    for label, key in config.builder.policies.items():
      policy = networks.MeanAction(run_lib.restore_policy(config, key,
                                                          environment))
      act = lambda o, p=policy: p(tf.constant(o[None], tf.float32))[0].numpy()
      settings = ''.join(f', {key}={value}' for key, value
                         in sorted(config.agent_overrides().items()))
      settings += f', {config.replay.samples_per_insert:g} samples per insert'
      data_name = os.path.basename(config.data.dataset_dir.rstrip('/'))
      rows.append((f'{run_dir}: {config.agent} {label} ({config.steps} steps, '
                   f'{config.replay.snippet_length}-row snippets{settings}, '
                   f'data {data_name})',
                   rollouts(env_id, lambda a=act: a, seeds)))

  header = ['policy', 'return (mean ± std)', 'grasped the cube',
            'ended by the wrist-force limit']
  if target is not None:
    header += ['cube to target at the end (median)',
               f'within {100 * rewards.BRING_TOLERANCE:.0f} cm (done) at '
               'the end', 'done, of the cells where no other cube stood '
               'on the target at the start', 'within 5 cm at the end',
               'cube to target in x-y (median)',
               'cube height at the end (median)',
               'cube outside the basket at the end']
  # Further out than a cube fits between the basket's walls.
  inside = np.array(rewards.BASKET_HALF_EXTENT) - rewards.CUBE_SIZE / 2
  outside = lambda position: bool(np.any(np.abs(position[:2]) > inside))
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for label, results in rows:
    returns = np.array([r.ret for r in results])
    row = [label, f'{returns.mean():.1f} ± {returns.std():.1f}',
           f'{sum(r.grasped for r in results)}/{len(results)}',
           f'{sum(r.steps < env_lib.EPISODE_STEPS for r in results)}'
           f'/{len(results)}']
    if target is not None:
      distance = np.array([np.linalg.norm(r.green - target) for r in results])
      in_xy = np.array([np.linalg.norm(r.green[:2] - target[:2])
                        for r in results])
      done = distance < rewards.BRING_TOLERANCE
      free = ~np.array([r.taken for r in results])
      row += [f'{100 * np.median(distance):.1f} cm',
              f'{int(done.sum())}/{len(results)}',
              f'{int((done & free).sum())}/{int(free.sum())}',
              f'{int((distance < NEAR).sum())}/{len(results)}',
              f'{100 * np.median(in_xy):.1f} cm',
              f'{100 * np.median([r.green[2] for r in results]):.1f} cm',
              f'{sum(outside(r.green) for r in results)}/{len(results)}']
    lines.append('| ' + ' | '.join(row) + ' |')
  table = '\n'.join(lines)
  title = (f'{env_id}, {args.episodes} episodes per row (cells seeded '
           + (f'{seeds[0]}–{seeds[-1]}, those whose target is free):'
              if args.free_cells else '1000+):'))
  print(title)
  print(table)
  endings = _endings_table(rows[len(args.dataset):], goal)
  print('\nWhat the wrist-force endings pressed on (contacts at the last '
        'step); in brackets, how many of them with the cube within 5 cm '
        'of the target in x-y:')
  print(endings)
  if target is not None:
    cells = _cells_table(rows[len(args.dataset):], target)
    print(f'\nCell by cell (seeds {", ".join(map(str, seeds[:3]))}, ..., '
          'left to right): D the cube ended '
          'within 2 cm of the target, n within 5 cm, F on the wrist-force '
          'limit (else), . otherwise; # another cube stood on the target '
          'at the start:')
    print(cells)
    endings += '\n\n' + cells
  for name, distance in closest.items():
    if target is not None:
      print(f'the closest the cube comes to the target in {name}: '
            f'{100 * distance:.1f} cm')
  if args.out:
    with open(args.out, 'w') as f:
      f.write(title + '\n\n' + table + '\n\n' + endings + '\n')


def _cells_table(rows, target) -> str:
  """Markdown: per row, one letter per cell (see the caption in main())."""
  from abmrl.environments.sawyer import rewards

  def letter(r):
    distance = np.linalg.norm(r.green - target)
    if distance < rewards.BRING_TOLERANCE:
      return 'D'
    if distance < NEAR:
      return 'n'
    return 'F' if r.ending is not None else '.'

  lines = ['| policy | cells |', '|---|---|',
           '| (another cube on the target) | `'
           + ''.join('#' if r.taken else '.' for r in rows[0][1]) + '` |']
  for label, results in rows:
    lines.append(f'| {label.split(" (")[0]} | `'
                 + ''.join(letter(r) for r in results) + '` |')
  return '\n'.join(lines)


def _endings_table(rows, goal) -> str:
  """Markdown: per row, the wrist-force endings by what they pressed on
  (the env.ENDINGS seen in any row), and the median step they came at."""
  from abmrl.environments.sawyer import env as env_lib
  seen = [e for e in env_lib.ENDINGS if any(r.ending == e for _, res in rows
                                    for r in res)]
  lines = ['| policy | wrist-force endings | step (median) | '
           + ' | '.join(seen) + ' |', '|' + '---|' * (3 + len(seen))]
  for label, results in rows:
    ended = [r for r in results if r.ending is not None]
    cells = []
    for ending in seen:
      these = [r for r in ended if r.ending == ending]
      near = sum(np.linalg.norm(r.green[:2] - goal) < NEAR for r in these)
      cells.append(f'{len(these)} ({near})' if these else '')
    step = f'{np.median([r.steps for r in ended]):.0f}' if ended else ''
    lines.append(f'| {label.split(" (")[0]} | {len(ended)}/{len(results)} '
                 f'| {step} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


if __name__ == '__main__':
  main()
