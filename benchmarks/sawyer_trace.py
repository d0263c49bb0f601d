"""One episode of a trained Sawyer bring-task policy, step by step, with what
its critic thinks of other actions.

Loads the latest checkpoint of an ABM+MPO / BM+MPO / MPO run on a single
`sawyer:bring_to_*` task, acts with the RL policy's mean action on the cell
seeded --seed (sawyer_rollouts.py uses 1000, 1001, ...), and every --every
steps prints: the green cube's position, the policy's and the prior's mean
actions, and the critic's Q(s, a) for the policy's action, the prior's,
the policy's with full-speed descent (z = -1), and the policy's with the
hand heading straight for the target in x-y; and V̂(s), the mean Q of 20
actions sampled from the policy (as the learner computes it).

What it is for: telling a critic that prefers another action (the policy
is held back by its KL to the prior) from one that does not (the critic
itself sees no gain).

Usage:
  python benchmarks/sawyer_trace.py runs/corner8/abm_mpo/seed0 --seed 1000
"""

import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('MUJOCO_GL', 'egl')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('run_dir')
  parser.add_argument('--seed', type=int, default=1000)
  parser.add_argument('--every', type=int, default=20,
                      help='steps between printed lines (default 20)')
  args = parser.parse_args()

  import numpy as np
  import tensorflow as tf
  from acme.tf import utils as tf2_utils
  import environments
  from agents import registry
  from environments.sawyer import observations as obs_lib
  from environments.sawyer import rewards
  from launch import config as config_lib

  path = os.path.join(args.run_dir, 'config.json')
  if not os.path.isfile(path):
    sys.exit(f'abmrl: error: {args.run_dir} is not a run directory (no '
             'config.json)')
  config = config_lib.load_train_config(path)
  task = config.env_id.split(':')[-1]
  if not config.env_id.startswith('sawyer:') or task not in (
      rewards.BRING_TARGETS):
    sys.exit(f'abmrl: error: {args.run_dir} learned {config.env_id}; this '
             'traces ' + ' or '.join(f'sawyer:{t}'
                                      for t in rewards.BRING_TARGETS))
  definition = registry.get(config.agent)
  agent_config = definition.config_class(**config.agent_config)
  if not hasattr(agent_config, 'critic_layer_sizes'):
    sys.exit(f'abmrl: error: {config.agent} has no Q critic to probe')
  target = rewards.BRING_TARGETS[task]
  stats = config.observation_stats()
  spec = tf.TensorSpec([obs_lib.SIZE], tf.float32)
  checkpoints = os.path.join(args.run_dir, 'checkpoints', 'learner')
  policies = {label: registry.restore_policy(agent_config, 5, spec, key,
                                             checkpoints, None, stats)
              for label, key in definition.policies.items()}
  critic = registry.make_critic(agent_config, observation_stats=stats)
  tf2_utils.create_variables(critic, [spec, tf.TensorSpec([5], tf.float32)])
  tf.train.Checkpoint(critic=critic).restore(
      tf.train.latest_checkpoint(checkpoints)).expect_partial()

  def q(observation, actions):
    actions = np.asarray(actions, np.float32).reshape(-1, 5)
    batch = np.repeat(observation[None].astype(np.float32), len(actions), 0)
    return critic(tf.constant(batch), tf.constant(actions)).numpy()

  env = environments.make(config.env_id, seed=args.seed)
  timestep, step, total = env.reset(), 0, 0.
  print(f'{config.env_id}, {args.run_dir}, cell {args.seed}; positions in '
        'cm from the basket centre, actions as fractions of each limit '
        '(x, y, z, wrist, fingers)')
  while not timestep.last():
    observation = timestep.observation
    dists = {label: p(tf.constant(observation[None], tf.float32))
             for label, p in policies.items()}
    action = dists['policy'].mean()[0].numpy()
    if step % args.every == 0:
      cube = obs_lib.field(observation, 'green_pose')[:3]
      down = action.copy()
      down[2] = -1.
      heading = action.copy()
      to_target = target[:2] - cube[:2]
      heading[:2] = to_target / max(np.linalg.norm(to_target), 1e-9)
      probes = {'policy': action, 'down': down, 'to target': heading}
      if 'prior' in dists:
        probes['prior'] = dists['prior'].mean()[0].numpy()
      values = dict(zip(probes, q(observation, list(probes.values()))))
      v_hat = q(observation, dists['policy'].sample(20)[:, 0].numpy()).mean()
      print(f'step {step:3d}  cube {np.round(100 * cube, 1)}  policy '
            f'{np.round(action, 2)}'
            + (f'  prior {np.round(probes["prior"], 2)}' if 'prior' in probes
               else '')
            + '  Q: ' + ', '.join(f'{k} {v:.2f}' for k, v in values.items())
            + f', V̂ {v_hat:.2f}', flush=True)
    timestep = env.step(action)
    total += float(timestep.reward)
    step += 1
  print(f'return {total:.1f} in {step} steps')


if __name__ == '__main__':
  main()
