"""The simulated Sawyer stacking cell: model, control, termination, and a
scripted controller that makes the rewards fire."""

import numpy as np
import pytest

import environments
from environments.sawyer import observations as obs_lib
from environments.sawyer import rewards
from environments.sawyer import scripted
from environments.sawyer.env import SawyerStacking


def test_random_actions_for_10000_steps_stay_finite_and_bounded():
  env = SawyerStacking(task='stack_and_leave', seed=0)
  spec = env.action_spec()
  rng = np.random.default_rng(0)
  env.reset()
  largest = 0.0
  for _ in range(10_000):
    timestep = env.step(rng.uniform(spec.minimum, spec.maximum))
    assert np.all(np.isfinite(timestep.observation))
    largest = max(largest, float(np.abs(timestep.observation).max()))
    assert timestep.reward is None or 0.0 <= timestep.reward <= 1.0
  # Joint torques saturate at the actuators' 80 N·m; nothing runs away.
  assert largest <= 100.0, largest


def test_driving_into_the_table_terminates_on_wrist_force():
  env = SawyerStacking(task='reach', seed=1)
  env.reset()
  for step in range(200):
    timestep = env.step([0., 0., -0.07, 0., 0.])
    if timestep.last():
      break
  assert timestep.last() and timestep.discount == 0.0, step
  assert np.abs(env.wrist_force()).max() > 20.0
  assert step < 100  # long before the 200-step limit


def test_episodes_last_200_steps_without_contact():
  env = SawyerStacking(task='reach', seed=2)
  timestep = env.reset()
  steps = 0
  while not timestep.last() or steps == 0:
    timestep = env.step(np.zeros(5))
    steps += 1
  assert steps == 200 and timestep.discount == 1.0  # a time limit


@pytest.mark.parametrize('seed', [0, 1])
def test_scripted_controller_reaches_grasps_and_lifts(seed):
  env = SawyerStacking(task='lift', seed=seed)
  controller = scripted.PickAndLift()
  timestep = env.reset()
  fired = {name: 0.0 for name in ('reach', 'grasp', 'lift')}
  for _ in range(199):
    timestep = env.step(controller(timestep.observation))
    for name in fired:
      fired[name] = max(fired[name],
                        float(rewards.TASKS[name](timestep.observation)))
  assert fired == {'reach': 1.0, 'grasp': 1.0, 'lift': 1.0}
  assert timestep.reward == pytest.approx(1.0)  # the env's own task: lift
  assert obs_lib.field(timestep.observation, 'green_pose')[2] > 0.1


def test_registry_and_specs():
  env = environments.make('sawyer:bring_to_corner', seed=0)
  assert env.observation_spec().shape == (obs_lib.SIZE,)
  assert env.action_spec().shape == (5,)
  np.testing.assert_allclose(env.action_spec().maximum,
                             [0.07, 0.07, 0.07, 1.0, 1.0])
  assert 'sawyer:stack_and_leave' in environments.env_ids()
  with pytest.raises(ValueError, match='unknown Sawyer task'):
    SawyerStacking(task='juggle')
