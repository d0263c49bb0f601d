"""Multi-task learning parts: task-conditioned networks, the multi-task
Sawyer cell, and a multi-task run of the whole program."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from abmrl.agents import networks
from abmrl.environments.sawyer import multitask
from abmrl.environments.sawyer import observations
from abmrl.launch import run as run_lib
from tests.conftest import run_ok


def _task_rows(num_tasks, tasks, size=5, seed=0):
  rng = np.random.default_rng(seed)
  base = rng.normal(size=(len(tasks), size)).astype(np.float32)
  one_hot = np.eye(num_tasks, dtype=np.float32)[tasks]
  return tf.constant(np.concatenate([base, one_hot], axis=1))


def test_each_row_goes_through_its_own_tasks_head():
  policy = networks.make_gaussian_policy(2, (8, 6), num_tasks=3)
  critic = networks.make_critic((8, 6), num_tasks=3)
  tasks = [2, 0, 1, 2, 0]
  rows = _task_rows(3, tasks)
  action = tf.ones([5, 2])
  mean, q = policy(rows).mean().numpy(), critic(rows, action).numpy()
  assert mean.shape == (5, 2) and q.shape == (5,)
  # The same state under every task: rows are computed one at a time with
  # their own head, so batching and the order of rows do not matter.
  for r, task in enumerate(tasks):
    alone = rows[r:r + 1]
    np.testing.assert_allclose(policy(alone).mean().numpy()[0], mean[r],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(critic(alone, action[:1]).numpy()[0], q[r],
                               rtol=1e-5, atol=1e-6)
  # Changing only the task input changes the output (another head).
  other = _task_rows(3, [1, 1, 2, 0, 1])
  assert not np.allclose(policy(other).mean().numpy(), mean)


def test_gradients_reach_only_the_heads_of_tasks_in_the_batch():
  critic = networks.make_critic((8, 6), num_tasks=3)
  rows = _task_rows(3, [0, 0, 2])
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.square(critic(rows, tf.ones([3, 2])) - 1.))
  variables = critic.trainable_variables
  grads = dict(zip([v.name for v in variables],
                   tape.gradient(loss, variables)))
  head_1 = [name for name in grads if '/task_1/' in name]
  assert head_1 and all(grads[name] is None or not np.any(grads[name])
                        for name in head_1)
  assert all(np.any(grads[name]) for name in grads
             if '/task_0/' in name)


def test_task_conditioned_step_compiles_with_xla():
  policy = networks.make_gaussian_policy(2, (8, 6), num_tasks=3)

  @tf.function(jit_compile=True)
  def log_prob(rows, actions):
    return policy(rows).log_prob(actions)

  out = log_prob(_task_rows(3, [0, 1, 2, 1]), tf.zeros([4, 2]))
  assert out.shape == (4,) and np.all(np.isfinite(out.numpy()))


def test_layer_sizes_need_a_torso_and_a_head():
  with pytest.raises(ValueError, match='at least 2 layer sizes'):
    networks.make_critic((8,), num_tasks=3)


def test_multitask_cell_switches_tasks_and_resets_the_robot_every_20():
  env = multitask.MultiTaskSawyer(seed=0, reset_every=3)
  k = len(multitask.TASK_SET)
  starts, tasks = [], []
  for _ in range(7):
    timestep = env.reset()
    one_hot = timestep.observation[observations.SIZE:]
    assert timestep.observation.shape == (observations.SIZE + k,)
    assert one_hot.sum() == 1 and multitask.TASK_SET[one_hot.argmax()] == env.task
    tasks.append(env.task)
    starts.append(observations.field(
        timestep.observation[:observations.SIZE], 'wrist_pose')[:3].copy())
    rng = np.random.default_rng(len(starts))
    for _ in range(5):  # move the arm a little
      timestep = env.step(np.concatenate([rng.uniform(-1, 1, 3),
                                          [0., 0.]]))
      rewards = multitask.task_rewards(timestep.observation)
      assert timestep.reward == pytest.approx(float(rewards[env.task]))
      assert env.last_task_rewards[env.task] == pytest.approx(timestep.reward)
    # Episodes end early here; the next starts where this one stopped,
    # except at the periodic reset.
    env._needs_reset = True  # pylint: disable=protected-access
  assert set(tasks) <= set(multitask.EXECUTED) and len(set(tasks)) > 1
  # Episodes 0, 3, 6 start from a fresh cell (the first at home, then at
  # random places); the others continue (different start than the fresh).
  assert not np.allclose(starts[3], starts[0], atol=1e-3)
  assert not np.allclose(starts[1], starts[0], atol=1e-3)


def test_fixed_task_cell_keeps_its_task():
  env = multitask.MultiTaskSawyer(task='bring_to_corner', seed=0)
  for _ in range(3):
    timestep = env.reset()
    assert env.task == 'bring_to_corner'
    assert timestep.observation[observations.SIZE +
                                multitask.TASK_SET.index('bring_to_corner')] == 1


def test_multi_task_program_trains_and_evaluates_every_task(tmp_path):
  """Scripted lift data, restored once per task for sawyer:multitask; one
  evaluator per policy runs every task and logs each task's return."""
  from abmrl.datasets import generate
  dataset = str(tmp_path / 'lift')
  generate.generate('sawyer:lift', dataset, episodes_per_behaviour=1, seed=0,
                    max_steps_per_episode=20, progress=None)
  run_dir = str(tmp_path / 'run')
  command = [sys.executable, '-m', 'abmrl.launch.cli', 'train', '--agent',
             'abm_mpo', '--env', 'sawyer:multitask', '--dataset', dataset,
             '--steps', '20', '--restorers', '1', '--eval-episodes', '1',
             '--eval-every', '1000', '--min-replay-size', '200',
             '--replay-size', '5000', '--snippets-per-item', '8',
             '--run-dir', run_dir, '--launch', 'test_mt',
             '--set', 'batch_size=32', '--set', 'num_action_samples=4',
             '--set', 'policy_layer_sizes=16,16',
             '--set', 'prior_layer_sizes=16,16',
             '--set', 'critic_layer_sizes=16,16']
  run_ok(command)
  for label in ('policy', 'prior'):
    rows = run_lib.read_csv(os.path.join(run_dir, 'logs',
                                         f'evaluator_{label}_0', 'logs.csv'))
    # 20 steps, less than one period (1000): the final evaluation only.
    assert [row['final'] for row in rows] == [1]
    final = rows[-1]
    per_task = [final[f'return_{task}'] for task in multitask.TASK_SET]
    assert np.isfinite(per_task).all()
    assert final['evaluation_return'] == pytest.approx(np.mean(per_task),
                                                       rel=1e-4)


@pytest.mark.parametrize('agent', ['bm', 'abm_mpo', 'abm_svg', 'awac', 'awr',
                                   'bcq', 'bear', 'bear_mmd'])
def test_every_agent_learns_with_task_conditioned_networks(agent):
  """Each learner built for a 3-task environment steps on batches whose
  rows carry different task inputs, and its evaluated policy reads them."""
  from acme.utils import loggers
  from abmrl.agents import builders
  from abmrl.agents import registry
  builder = registry.get(agent)
  small = {key: value for key, value in dict(
      batch_size=8, minibatch_size=8, value_steps=1, policy_steps=1,
      num_action_samples=3, policy_layer_sizes=(8, 8),
      prior_layer_sizes=(8, 8), critic_layer_sizes=(8, 8),
      value_layer_sizes=(8, 8), encoder_layer_sizes=(8, 8),
      decoder_layer_sizes=(8, 8), perturbation_layer_sizes=(8, 8),
      latent_size=2, acting_samples=3, target_samples=3,
      mmd_samples=2).items()
           if key in vars(builder.make_config())}
  config = builder.make_config(**small)
  rng = np.random.default_rng(0)
  rows = 3

  def batches():
    while True:
      observation = np.concatenate([
          rng.normal(size=(8, rows, 4)),
          np.eye(3)[rng.integers(3, size=8)][:, None].repeat(rows, 1)], -1)
      yield {'observation': tf.constant(observation, tf.float32),
             'action': tf.constant(rng.uniform(-1, 1, (8, rows, 2)),
                                   tf.float32),
             'reward': tf.constant(rng.normal(size=(8, rows)), tf.float32),
             'discount': tf.ones([8, rows]), 'mask': tf.ones([8, rows])}

  spec = builders.NetworkSpec(observation_size=7, action_size=2, num_tasks=3)
  learner = builder.make_learner(config, spec, batches(), None,
                                 loggers.NoOpLogger(), None, 4)
  learner.run()
  assert learner.num_steps == 4
  policy = builder.make_policy(config, 'policy', spec)
  # Every network of the policy has per-task heads (BCQ's is a decoder, a
  # perturbation and a critic).
  assert any(isinstance(m, (networks.TaskConditionedPolicy,
                            networks.TaskConditionedMLP))
             for m in (policy,) + tuple(policy.submodules))
  observation = np.concatenate([rng.normal(size=(3, 4)), np.eye(3)], -1)
  actions = policy(tf.constant(observation, tf.float32)).mean()
  assert actions.shape == (3, 2) and np.isfinite(actions.numpy()).all()
