"""`abmrl video`: episodes of a run's latest checkpoint, rendered to a GIF."""

import argparse
import os

import numpy as np

from abmrl import environments
from abmrl.environments import rendering
from abmrl.launch import config as config_lib


def add_parser(commands) -> None:
  parser = commands.add_parser(
      'video', help="render episodes of a run's latest checkpoint (mean "
      'action, as evaluators act) to a GIF')
  parser.add_argument('--run-dir', required=True)
  parser.add_argument('--policy', default='policy',
                      help='policy (default) or prior, where the agent has '
                      'one')
  parser.add_argument('--task', help='for a multi-task run: the task to show '
                      '(default the first)')
  parser.add_argument('--episodes', type=int, default=1)
  parser.add_argument('--frame-every', type=int, default=2,
                      help='render every Nth step (default 2)')
  parser.add_argument('--width', type=int, default=320)
  parser.add_argument('--height', type=int, default=240)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--out', help='GIF path (default RUN_DIR/videos/'
                      '<policy>[-<task>].gif)')
  parser.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
  # pylint: disable=g-import-not-at-top
  from abmrl.agents import evaluator
  from abmrl.launch import run as run_lib
  # pylint: enable=g-import-not-at-top
  config = run_lib.load_run(args.run_dir)
  policies = config.builder.policies
  if args.policy not in policies:
    raise config_lib.ConfigError(f'--policy {args.policy}: {config.agent} '
                                 'evaluates ' + ', '.join(policies))
  env_ids = environments.evaluation_ids(config.env_id)
  task = args.task or next(iter(env_ids))
  if task not in env_ids:
    raise config_lib.ConfigError(f'--task {args.task}: {config.env_id} has '
                                 'tasks ' + ', '.join(t for t in env_ids if t))
  environment = environments.make(env_ids[task], seed=args.seed)
  try:
    policy = run_lib.restore_policy(config, policies[args.policy],
                                    environment)
  except (FileNotFoundError, ValueError) as e:
    raise config_lib.ConfigError(str(e)) from None
  out = args.out or os.path.join(
      args.run_dir, 'videos', f'{args.policy}{"-" + task if task else ""}.gif')
  frames, returns = [], []
  try:
    for episode in range(args.episodes):
      episode_frames, episode_return = evaluator.record_episode(
          environment, policy,
          lambda env: rendering.render(env, args.width, args.height),
          args.frame_every)
      frames += episode_frames
      returns.append(episode_return)
      print(f'[video] episode {episode + 1}/{args.episodes}: return '
            f'{episode_return:.1f}, {len(episode_frames)} frames')
  except rendering.RenderingUnavailable as e:
    raise config_lib.ConfigError(str(e)) from None
  finally:
    environment.close()  # frees the GL context before the interpreter exits
  rendering.write_gif(frames, out, float(environment.control_timestep())
                      * args.frame_every)
  print(f'[video] {len(frames)} frames, mean return {np.mean(returns):.1f}: '
        f'{out}')
  return 0
