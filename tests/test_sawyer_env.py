"""The simulated Sawyer stacking cell: model, control, termination, and a
scripted controller that makes the rewards fire."""

import numpy as np
import pytest

from abmrl import environments
from abmrl.environments.sawyer import observations as obs_lib
from abmrl.environments.sawyer import rewards
from abmrl.environments.sawyer import scripted
from abmrl.environments.sawyer.env import GRIPPER
from abmrl.environments.sawyer.env import SawyerStacking


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
    timestep = env.step([0., 0., -1., 0., 0.])
    if timestep.last():
      break
  assert timestep.last() and timestep.discount == 0.0, step
  assert np.abs(env.wrist_force()).max() > 20.0
  assert step < 100  # long before the 200-step limit
  # What the open fingers came down on (the cubes or the basket's floor).
  pressed = {b if a in GRIPPER else a for a, b in env.contacts()
             if (a in GRIPPER) != (b in GRIPPER)}
  assert pressed and pressed <= {'green', 'yellow', 'blue', 'basket_floor'}
  assert env.pressed_on() == ('fingers on another cube'
                              if pressed - {'green', 'basket_floor'} else
                              'fingers on the floor' if 'basket_floor'
                              in pressed else
                              'fingers on the green cube (not held)')


@pytest.mark.parametrize('onto', ['the floor', 'another cube'])
def test_pressing_a_held_cube_down_ends_on_what_it_pressed_onto(onto):
  env = SawyerStacking(task='lift', seed=0)
  controller = scripted.PickAndLift()
  timestep = env.reset()
  while obs_lib.field(timestep.observation, 'green_pose')[2] < 0.1:
    timestep = env.step(controller(timestep.observation))
  # Carry it over the yellow cube (or not), then press it down, held.
  for step in range(200):
    observation = timestep.observation
    offset = (obs_lib.field(observation, 'yellow_pose')[:2] -
              obs_lib.field(observation, 'green_pose')[:2])
    if onto == 'the floor' or np.linalg.norm(offset) < 0.005:
      action = [0., 0., -1., 0., -1.]
    else:
      action = [*np.clip(20 * offset, -1, 1), 0., 0., -1.]
    timestep = env.step(action)
    if timestep.last():
      break
  assert timestep.discount == 0.0, step  # the wrist-force limit
  assert obs_lib.field(timestep.observation, 'grasp')[0] == 1.0
  assert env.pressed_on() == f'held cube onto {onto}'


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


@pytest.mark.parametrize('target', [tuple(rewards.CORNER_TARGET[:2]),
                                    (-0.05, 0.02)])
def test_scripted_pick_and_place_sets_the_cube_down_at_the_target(target):
  env = SawyerStacking(task='bring_to_corner', seed=3)
  controller = scripted.PickAndPlace(target_xy=target)
  timestep = env.reset()
  held = False
  for _ in range(199):
    timestep = env.step(controller(timestep.observation))
    held |= obs_lib.field(timestep.observation, 'grasp')[0] > 0.5
  green = obs_lib.field(timestep.observation, 'green_pose')[:3]
  assert held
  np.testing.assert_allclose(green[:2], target, atol=0.01)
  assert green[2] == pytest.approx(rewards.CUBE_SIZE / 2, abs=0.003)  # down
  assert obs_lib.field(timestep.observation, 'grasp')[0] == 0.0  # let go
  # The corner target is where a gripper can set a cube down: bring to
  # corner pays in full there, and little elsewhere.
  corner = float(rewards.bring_to_corner(timestep.observation))
  assert (corner == 1.0) == (target[0] > 0), corner
  assert corner == 1.0 or corner < 0.2, corner


@pytest.mark.parametrize('keep_away', [False, True])
def test_pick_and_place_draws_a_free_place_on_the_floor(keep_away):
  env = SawyerStacking(task='bring_to_corner', seed=4)
  observation = env.reset().observation
  rng = np.random.default_rng(0)
  # Inside the floor a gripper can set a cube down on (inset from the
  # walls as the corner target is), and out to near its edges.
  bound = (np.array(rewards.BASKET_HALF_EXTENT) - rewards.CUBE_SIZE / 2
           - rewards.CORNER_INSET)
  farthest, nearest_target = 0., np.inf
  for _ in range(100):
    controller = scripted.PickAndPlace(rng=rng, keep_away=keep_away)
    controller(observation)
    xy = controller.target_xy
    assert np.all(np.abs(xy) <= bound)
    farthest = max(farthest, np.abs(xy).max())
    for cube in ('yellow', 'blue'):
      other = obs_lib.field(observation, f'{cube}_pose')[:2]
      assert np.linalg.norm(xy - other) > 1.5 * rewards.CUBE_SIZE
    for target in (rewards.CENTRE_TARGET, rewards.CORNER_TARGET):
      nearest_target = min(nearest_target,
                           np.linalg.norm(xy - target[:2]))
  assert farthest > bound.max() - 0.01
  # The bring tasks' targets are ignored (a place falls near them by
  # chance), or with keep_away never within their tolerance (plus the
  # controller's accuracy).
  assert (nearest_target >= scripted.PickAndPlace.KEEP_AWAY) == keep_away


def test_pick_and_place_detour_carries_the_cube_by_a_waypoint_past_the_walls():
  rng = np.random.default_rng(0)
  vias = [scripted.PickAndPlace(rng=rng, detour=1.0).via_xy
          for _ in range(100)]
  walls = np.asarray(rewards.BASKET_HALF_EXTENT)
  assert all(np.all(np.abs(v) <= walls + 0.04) for v in vias)
  # Some waypoints lie beyond the basket's walls, where no place goes.
  assert any(np.any(np.abs(v) > walls) for v in vias)
  # detour_margin says how far past the walls they may go.
  roams = [scripted.PickAndPlace(rng=rng, detour=1.0,
                                 detour_margin=0.12).via_xy
           for _ in range(100)]
  assert all(np.all(np.abs(v) <= walls + 0.12) for v in roams)
  assert any(np.any(np.abs(v) > walls + 0.08) for v in roams)
  assert scripted.PickAndPlace(rng=rng, detour=0.0).via_xy is None
  with pytest.raises(ValueError, match='probability'):
    scripted.PickAndPlace(detour=1.5)
  with pytest.raises(ValueError, match='distance'):
    scripted.PickAndPlace(detour=0.5, detour_margin=-0.01)

  env = SawyerStacking(task='bring_to_corner', seed=3)
  controller = scripted.PickAndPlace(target_xy=(-0.05, 0.02), detour=1.0,
                                     rng=np.random.default_rng(2))
  via = controller.via_xy.copy()
  timestep = env.reset()
  nearest = np.inf
  for _ in range(199):
    timestep = env.step(controller(timestep.observation))
    green = obs_lib.field(timestep.observation, 'green_pose')[:3]
    if controller.via_xy is None:
      break
    nearest = min(nearest, np.linalg.norm(green[:2] - via))
  # The cube is carried (held, up at the carry height) to the waypoint
  # before the controller heads for its place.
  assert controller.via_xy is None, (via, nearest)
  assert obs_lib.field(timestep.observation, 'grasp')[0] > 0.5
  assert green[2] > 0.08
  np.testing.assert_allclose(green[:2], via, atol=0.015)


def test_pick_and_place_wander_drifts_during_carries_and_still_places():
  with pytest.raises(ValueError, match='wander is a probability'):
    scripted.PickAndPlace(wander=-0.1)
  env = SawyerStacking(task='bring_to_corner', seed=3)
  place = np.array([0.05, -0.05])
  controller = scripted.PickAndPlace(target_xy=place, wander=0.1,
                                     rng=np.random.default_rng(2))
  plain = scripted.PickAndPlace(target_xy=place)
  timestep = env.reset()
  drifts = []
  for _ in range(199):
    observation = timestep.observation
    action = controller(observation)
    green = obs_lib.field(observation, 'green_pose')[:3]
    if obs_lib.field(observation, 'grasp')[0] > 0.5 and green[2] > 0.06:
      # While carrying, a wander changes only the vertical command.
      carry = plain(observation)
      np.testing.assert_allclose(action[[0, 1, 3, 4]], carry[[0, 1, 3, 4]])
      drifts.append(action[2] - carry[2])
    timestep = env.step(action)
  drifts = np.asarray(drifts)
  # Both ways, from the carry's states; and the cube still ends at its
  # place, on the floor, let go.
  assert (drifts < -0.3).any() and (drifts > 0.3).any(), drifts
  green = obs_lib.field(timestep.observation, 'green_pose')[:3]
  np.testing.assert_allclose(green[:2], place, atol=0.015)
  assert green[2] < rewards.CUBE_SIZE / 2 + 0.005
  assert obs_lib.field(timestep.observation, 'grasp')[0] < 0.5


def test_pick_and_place_stop_sets_the_cube_down_where_the_carry_got_to():
  with pytest.raises(ValueError, match='stop is a probability'):
    scripted.PickAndPlace(stop=1.5)
  env = SawyerStacking(task='bring_to_centre', seed=0)
  place = np.array([0.06, -0.06])
  controller = scripted.PickAndPlace(target_xy=place, stop=0.1,
                                     rng=np.random.default_rng(0))
  timestep = env.reset()
  carried = []  # the cube's x-y while carried at the carry height
  for _ in range(199):
    observation = timestep.observation
    green = obs_lib.field(observation, 'green_pose')[:3]
    if obs_lib.field(observation, 'grasp')[0] > 0.5 and green[2] > 0.1:
      carried.append(green[:2])
    timestep = env.step(controller(observation))
  # The place was given up on the way: the new one is where the carry had
  # got to, short of the old place, and the cube is set down there.
  stop = controller.target_xy
  assert np.linalg.norm(stop - place) > 0.03, stop
  assert min(np.linalg.norm(np.asarray(carried) - stop, axis=1)) < 0.01
  green = obs_lib.field(timestep.observation, 'green_pose')[:3]
  np.testing.assert_allclose(green[:2], stop, atol=0.015)
  assert green[2] < rewards.CUBE_SIZE / 2 + 0.005
  assert obs_lib.field(timestep.observation, 'grasp')[0] < 0.5


def test_pick_and_place_hold_keeps_the_set_down_cube_still_then_lets_go():
  with pytest.raises(ValueError, match='hold is a probability'):
    scripted.PickAndPlace(hold=-0.1)
  env = SawyerStacking(task='bring_to_centre', seed=0)
  place = np.array([0.06, -0.06])
  controller = scripted.PickAndPlace(target_xy=place, hold=1.0,
                                     rng=np.random.default_rng(0))
  controller.HOLD_STEPS = (12, 12)
  timestep = env.reset()
  held_resting = []  # the actions while the cube rests on its place, held
  for _ in range(199):
    observation = timestep.observation
    green = obs_lib.field(observation, 'green_pose')[:3]
    action = controller(observation)
    if (obs_lib.field(observation, 'grasp')[0] > 0.5 and
        green[2] < rewards.CUBE_SIZE / 2 + 0.005 and
        np.linalg.norm(green[:2] - place) < controller.PLACED):
      held_resting.append(action)
    timestep = env.step(action)
  # Twelve steps held still in closed fingers, then the fingers open (the
  # grasp flag drops a few steps after the first opening command).
  held_resting = np.asarray(held_resting)
  assert 13 <= len(held_resting) <= 20, len(held_resting)
  np.testing.assert_allclose(held_resting[:, :4], 0.0, atol=1e-6)
  np.testing.assert_array_equal(held_resting[:12, 4], -1.0)
  np.testing.assert_array_equal(held_resting[12:, 4], 1.0)
  green = obs_lib.field(timestep.observation, 'green_pose')[:3]
  np.testing.assert_allclose(green[:2], place, atol=0.015)
  assert obs_lib.field(timestep.observation, 'grasp')[0] < 0.5


def test_pick_and_place_onto_presses_the_cube_onto_another_until_the_limit():
  with pytest.raises(ValueError, match='onto is a probability'):
    scripted.PickAndPlace(onto=1.5)
  env = SawyerStacking(task='bring_to_corner', seed=0)
  controller = scripted.PickAndPlace(onto=1.0, rng=np.random.default_rng(0))
  timestep = env.reset()
  first = timestep.observation
  while not timestep.last():
    timestep = env.step(controller(timestep.observation))
  # The place was drawn on another cube, give or take half a cube ...
  assert min(np.abs(controller.target_xy - obs_lib.field(
      first, f'{c}_pose')[:2]).max() for c in ('yellow', 'blue')) <= (
          rewards.CUBE_SIZE / 2)
  # ... and the held cube was pressed onto it: the wrist-force limit.
  assert timestep.discount == 0.0
  assert env.pressed_on() == 'held cube onto another cube'


def test_pick_and_place_roam_carries_the_cube_far_past_the_walls():
  # pick_and_place_roam_stop's detours (12 cm past the walls) are within the
  # arm's reach: the cube is carried to such a waypoint, 10 cm past a wall.
  env = SawyerStacking(task='bring_to_corner', seed=4)
  controller = scripted.PickAndPlace(rng=np.random.default_rng(4),
                                     detour=1.0, detour_margin=0.12)
  via = controller.via_xy.copy()
  assert np.abs(via).max() > rewards.BASKET_HALF_EXTENT[0] + 0.1, via
  timestep, farthest = env.reset(), 0.0
  while controller.via_xy is not None and not timestep.last():
    timestep = env.step(controller(timestep.observation))
    green = obs_lib.field(timestep.observation, 'green_pose')[:3]
    farthest = max(farthest, np.abs(green[:2]).max())
  assert controller.via_xy is None, (via, farthest)
  assert farthest > rewards.BASKET_HALF_EXTENT[0] + 0.09
  assert obs_lib.field(timestep.observation, 'grasp')[0] > 0.5


def test_pick_and_place_stop_on_a_detour_gives_up_the_waypoint_too():
  env = SawyerStacking(task='bring_to_centre', seed=0)
  place = np.array([0.06, -0.06])
  controller = scripted.PickAndPlace(target_xy=place, detour=1.0, stop=0.1,
                                     rng=np.random.default_rng(0))
  timestep = env.reset()
  stopped_on_detour = False
  for _ in range(199):
    via = controller.via_xy
    action = controller(timestep.observation)
    if via is not None and not np.allclose(controller.target_xy, place):
      stopped_on_detour = controller.via_xy is None
    timestep = env.step(action)
  assert stopped_on_detour
  stop = controller.target_xy
  # Stops fall only on the floor a gripper can set a cube down on.
  assert np.all(np.abs(stop) <= np.abs(rewards.CORNER_TARGET[:2])), stop
  green = obs_lib.field(timestep.observation, 'green_pose')[:3]
  np.testing.assert_allclose(green[:2], stop, atol=0.015)
  assert green[2] < rewards.CUBE_SIZE / 2 + 0.005


def test_registry_and_specs():
  env = environments.make('sawyer:bring_to_corner', seed=0)
  assert env.observation_spec().shape == (obs_lib.SIZE,)
  assert env.action_spec().shape == (5,)
  np.testing.assert_allclose(env.action_spec().minimum, -np.ones(5))
  np.testing.assert_allclose(env.action_spec().maximum, np.ones(5))
  assert 'sawyer:stack_and_leave' in environments.env_ids()
  with pytest.raises(ValueError, match='unknown Sawyer task'):
    SawyerStacking(task='juggle')


def test_generated_pick_and_place_data_move_the_cube_to_new_places(tmp_path):
  from abmrl.datasets import episodes
  from abmrl.datasets import generate
  directory = str(tmp_path / 'place')
  generate.generate('sawyer:place_wide', directory, episodes_per_behaviour=2,
                    behaviours=generate.default_behaviours([0.0],
                                                           random=False),
                    seed=5, controller='pick_and_place', progress=None)
  ends = []
  for path in episodes.list_episodes(directory):
    observation = episodes.read_episode(path).observation
    heights = obs_lib.field(observation, 'green_pose')[:, 2]
    end = obs_lib.field(observation[-1], 'green_pose')[:3]
    assert heights.max() > 0.08  # carried
    assert end[2] == pytest.approx(rewards.CUBE_SIZE / 2, abs=0.003)  # down
    assert obs_lib.field(observation[-1], 'grasp')[0] == 0.0  # let go
    ends.append(end[:2])
  assert np.linalg.norm(ends[0] - ends[1]) > 0.01  # a new place each time
  with pytest.raises(ValueError, match='no scripted controller'):
    generate.generate('sawyer:lift', directory, 1, controller='juggle')
