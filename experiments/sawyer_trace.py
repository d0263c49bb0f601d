"""One episode of a trained Sawyer bring-task policy, step by step, with what
its critic thinks of other actions.

Loads the latest checkpoint of an ABM+MPO / BM+MPO / MPO or AWAC run (for
AWAC, Q is the minimum of its two critics, as its learner takes it) on a
single `sawyer:bring_to_*` task, acts with the RL policy's mean action on
the cell seeded --seed (sawyer_rollouts.py uses 1000, 1001, ...), and
every --every steps prints: the green cube's position, the nearest other
cube's offset from it (x-y distance, height difference: a cube under the
green one, or in its way, shows here), the finger opening
(and `grasp` while the grasp flag is up), the policy's and the prior's
mean actions, the prior's vertical standard deviation (σz: the E-step
weighs 20 of the prior's samples, so the policy gets little further
than about 1.9 σz from the prior's mean), and the critic's Q(s, a) for
the policy's action, the prior's, the policy's with full-speed descent (z = -1), and
the policy's with the hand heading straight for the target in x-y; and
V̂(s), the mean Q of 20 actions sampled from the policy (as the MPO
learners compute it; AWAC's takes `value_samples` of them, one by
default).

What it is for: telling a critic that prefers another action (the policy
is held back by its KL to the prior) from one that does not (the critic
itself sees no gain).

With --dataset DATA (an MPO-with-prior run), it also looks at the logged
states where the green cube is held within 3 cm of the target in x-y and
more than 6 cm up (states the learner trains on), and prints the mean
vertical action there of the logs, of the policy, of the prior, and of
the E-step's target: 20 actions sampled from the prior weighted by
exp(Q/η) with the run's temperature (eq. 7–8), what the M-step fits the
policy to. For an ABM run, also eq. 4's weights of the snippets starting
there and the prior's vertical action, split by what the logs did
(lowering, level, lifting).

Usage:
  python experiments/sawyer_trace.py runs/corner8/abm_mpo/seed0 --seed 1000
  python experiments/sawyer_trace.py RUN --dataset data/sawyer_place4
"""

import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('MUJOCO_GL', 'egl')


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('run_dir')
  parser.add_argument('--seed', type=int, default=1000)
  parser.add_argument('--every', type=int, default=20,
                      help='steps between printed lines (default 20)')
  parser.add_argument('--dataset', default=None,
                      help='also the E-step at the logged states of DATA '
                           'where the cube is held above the target')
  args = parser.parse_args()

  import numpy as np
  import tensorflow as tf
  from acme.tf import utils as tf2_utils
  from abmrl import environments
  from abmrl.datasets import episodes
  from abmrl.environments.sawyer import observations as obs_lib
  from abmrl.environments.sawyer import rewards
  from abmrl.launch import config as config_lib
  from abmrl.launch import run as run_lib

  try:
    config = run_lib.load_run(args.run_dir)
  except config_lib.ConfigError as e:
    sys.exit(f'abmrl: error: {e}')
  task = config.env_id.split(':')[-1]
  if not config.env_id.startswith('sawyer:') or task not in (
      rewards.BRING_TARGETS):
    sys.exit(f'abmrl: error: {args.run_dir} learned {config.env_id}; this '
             'traces ' + ' or '.join(f'sawyer:{t}'
                                      for t in rewards.BRING_TARGETS))
  builder, agent_config = config.builder, config.agent_config
  if not hasattr(builder, 'make_critic'):
    sys.exit(f'abmrl: error: {config.agent} has no Q critic to probe')
  target = rewards.BRING_TARGETS[task]
  if args.dataset and not episodes.list_episodes(args.dataset):
    sys.exit(f'abmrl: error: {args.dataset} holds no episodes')
  if args.dataset and ('prior' not in builder.policies or getattr(
      agent_config, 'improvement', None) != 'mpo'):
    sys.exit('abmrl: error: --dataset needs an MPO-with-prior run '
             f'(abm_mpo, bm_mpo); {args.run_dir} is {config.agent}')
  environment = environments.make(config.env_id)  # sizes the networks
  spec = tf.TensorSpec([obs_lib.SIZE], tf.float32)
  checkpoints = os.path.join(args.run_dir, 'checkpoints', 'learner')
  policies = {label: run_lib.restore_policy(config, key, environment)
              for label, key in builder.policies.items()}
  # ABM/BM/MPO checkpoint one `critic`; AWAC two, whose minimum is its Q.
  checkpoint = tf.train.latest_checkpoint(checkpoints)
  saved = {name.split('/')[0] for name, _ in tf.train.list_variables(
      checkpoint)}
  critics = []
  for name in [n for n in ('critic', 'critic_1', 'critic_2') if n in saved]:
    critic = builder.make_critic(agent_config,
                                 run_lib.network_spec(config, environment))
    tf2_utils.create_variables(critic,
                               [spec, tf.TensorSpec([5], tf.float32)])
    tf.train.Checkpoint(**{name: critic}).restore(
        checkpoint).assert_existing_objects_matched().expect_partial()
    critics.append(critic)
  if not critics:
    sys.exit(f'abmrl: error: {checkpoint} holds no critic')

  def q(observation, actions):
    actions = np.asarray(actions, np.float32).reshape(-1, 5)
    batch = tf.constant(np.repeat(observation[None].astype(np.float32),
                                  len(actions), 0))
    return np.min([c(batch, tf.constant(actions)).numpy() for c in critics],
                  axis=0)

  def v_hat(observations, num_samples: int = 20):
    """V̂: the mean Q of actions sampled from the policy, for each of
    `observations` [B, SIZE]."""
    actions = policies['policy'](tf.constant(observations, tf.float32)).sample(
        num_samples).numpy()
    return np.array([q(o, actions[:, b]).mean()
                     for b, o in enumerate(observations)], np.float32)

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
      value = v_hat(observation[None])[0]
      others = np.array([obs_lib.field(observation, f'{c}_pose')[:3]
                         for c in obs_lib.CUBES if c != 'green']) - cube
      near = others[np.argmin(np.linalg.norm(others[:, :2], axis=1))]
      fingers = obs_lib.field(observation, 'finger_angle')[0]
      grasp = obs_lib.field(observation, 'grasp')[0]
      print(f'step {step:3d}  cube {np.round(100 * cube, 1)}  nearest '
            f'cube {100 * np.linalg.norm(near[:2]):.1f} cm off, '
            f'{100 * near[2]:+.1f} cm  fingers '
            f'{fingers:.2f}{" grasp" if grasp > 0.5 else ""}  policy '
            f'{np.round(action, 2)}'
            + (f'  prior {np.round(probes["prior"], 2)} σz '
               f'{dists["prior"].stddev()[0, 2].numpy():.2f}'
               if 'prior' in probes else '')
            + '  Q: ' + ', '.join(f'{k} {v:.2f}' for k, v in values.items())
            + f', V̂ {value:.2f}', flush=True)
    timestep = env.step(action)
    total += float(timestep.reward)
    step += 1
  print(f'return {total:.1f} in {step} steps')
  if args.dataset:
    _estep_at_held_states(args.dataset, target, policies, q, v_hat,
                          checkpoints, config, agent_config)


def _estep_at_held_states(dataset: str, target, policies, q, v_hat,
                          checkpoints, config, agent_config,
                          num_samples: int = 20,
                          max_states: int = 512):
  """At the logged states where the green cube is held above the target:
  the logged, the policy's, the prior's and the E-step's mean vertical
  action, and (ABM runs) the prior's weights by what the logs did there."""
  import numpy as np
  import tensorflow as tf
  from abmrl import environments
  from abmrl.agents import losses as shared_losses
  from abmrl.agents.abm import losses
  from abmrl.datasets import episodes
  from abmrl.environments.sawyer import observations as obs_lib

  temperature = tf.Variable(1.)
  tf.train.Checkpoint(temperature=temperature).restore(
      tf.train.latest_checkpoint(checkpoints)).expect_partial()
  eta = float(temperature.numpy())
  (observation_fn, reward_fn), = environments.relabellings(config.env_id)
  span = config.replay.snippet_length - 1  # transitions in a snippet
  rows = {k: [] for k in ('state', 'logged', 'reward', 'discount', 'last')}
  for path in episodes.list_episodes(dataset):
    episode = episodes.read_episode(path)
    if episode.observation.shape[-1] < obs_lib.SIZE:
      sys.exit(f'abmrl: error: {dataset} is not Sawyer data')
    episode = episodes.relabelled(episode, reward_fn, observation_fn)
    observation = episode.observation
    # Snippets as the learner samples them: `span` transitions from s_t.
    starts = np.arange(len(observation) - span)
    cube = obs_lib.field(observation[starts], 'green_pose')[:, :3]
    grasp = obs_lib.field(observation[starts], 'grasp')[:, 0]
    near = starts[(np.linalg.norm(cube[:, :2] - target[:2], axis=1) < 0.03) &
                  (cube[:, 2] > 0.06) & (grasp > 0.5)]
    for t in near:
      rows['state'].append(observation[t])
      rows['logged'].append(episode.action[t, 2])
      rows['reward'].append(episode.reward[t:t + span])
      rows['discount'].append(episode.discount[t:t + span])
      rows['last'].append(observation[t + span])
  if not rows['state']:
    print(f'{dataset}: no logged state holds the cube above the target')
    return
  rows = {k: np.asarray(v, np.float32) for k, v in rows.items()}
  logged = rows['logged']
  lowering, lifting = logged < -0.3, logged > 0.3
  print(f'{dataset}: {len(logged)} logged states hold the cube within 3 cm '
        'of the target in x-y, over 6 cm up; their vertical actions: '
        f'lowering (< -0.3) {lowering.mean():.0%}, level '
        f'{(~lowering & ~lifting).mean():.0%}, lifting (> 0.3) '
        f'{lifting.mean():.0%}; mean {logged.mean():+.3f} (fractions of the '
        'limit; negative lowers)')
  rng = np.random.default_rng(0)
  tf.random.set_seed(0)
  chosen = rng.permutation(len(logged))[:max_states]
  states = rows['state'][chosen]
  prior = policies['prior'](tf.constant(states))
  samples = prior.sample(num_samples).numpy()  # [M, B, A]
  values = np.stack([q(o, samples[:, b]) for b, o in enumerate(states)], 1)
  weights = np.exp((values - values.max(0)) / eta)
  weights /= weights.sum(0)
  z = samples[..., 2]
  correlation = np.mean([np.corrcoef(values[:, b], z[:, b])[0, 1]
                         for b in range(len(states))])
  print(f'  at {len(chosen)} of them, mean vertical action: policy '
        f'{policies["policy"](tf.constant(states)).mean().numpy()[:, 2].mean():+.3f}'
        f', prior {prior.mean().numpy()[:, 2].mean():+.3f}, E-step target '
        f'(η = {eta:.2f}) {(weights * z).sum(0).mean():+.3f}; Q spread over '
        f'the {num_samples} prior samples {np.mean(np.ptp(values, 0)):.2f}, '
        f'correlation of Q with the vertical action {correlation:+.2f}')
  if agent_config.prior != 'abm':
    return

  # Eq. 4's weights, as the learner computes them.
  returns = losses.n_step_returns(
      tf.constant(rows['reward'][chosen]), tf.constant(rows['discount'][chosen]),
      tf.constant(v_hat(rows['last'][chosen])), agent_config.discount)[:, 0]
  abm = shared_losses.advantage_weights(
      returns - v_hat(states), kind=agent_config.abm_weighting,
      max_weight=agent_config.abm_max_weight).numpy()
  groups = {'lowering': lowering[chosen], 'level':
            ~lowering[chosen] & ~lifting[chosen], 'lifting': lifting[chosen]}
  prior_z = prior.mean().numpy()[:, 2]
  print(f'  ABM weights ({agent_config.abm_weighting}, {span}-transition '
        'snippets), and the prior\'s mean vertical action, by what the logs '
        'did: ' + ', '.join(
            f'{name} (n = {mask.sum()}) weight {abm[mask].mean():.2f}, prior '
            f'{prior_z[mask].mean():+.2f}'
            for name, mask in groups.items() if mask.any()))


if __name__ == '__main__':
  main()
