"""The Sawyer stacking environment: Cartesian velocity control at 20 Hz.

Action (5), each in [−1, 1] as a fraction of its limit: end-effector
velocity x, y, z (±0.07 m/s), wrist rotation (±1 rad/s), and finger velocity
(±0.1 m/s per finger; the paper's gripper takes ±255 device units). The
policies thus act in one range on every axis (as Acme's canonical action
spec), whatever the physical units. The arm follows the commanded twist by damped least squares
on the grip site's Jacobian, holding the fingers pointing down; joint
position servos track the integrated joint velocities. 200 steps per episode; the episode terminates when
the wrist force exceeds 20 N on any axis (ABM paper, Appendix C.3).

The observation is the flat vector of environments/sawyer/observations.py;
the reward is the chosen task's (environments/sawyer/rewards.py).
"""

from typing import Optional

import dm_env
from dm_env import specs
import mujoco
import numpy as np

from abmrl.environments.sawyer import model as model_lib
from abmrl.environments.sawyer import observations as obs_lib
from abmrl.environments.sawyer import rewards

CONTROL_TIMESTEP = 0.05  # 20 Hz
EPISODE_STEPS = 200
MAX_WRIST_FORCE = 20.0  # N, any axis
# Full speed of each action (at |action| = 1): end effector x, y, z in m/s,
# wrist in rad/s, then the fingers' (a fraction of FINGER_SPEED).
ACTION_LIMITS = np.array([0.07, 0.07, 0.07, 1.0, 1.0])
FINGER_SPEED = 0.1  # m/s per finger at |action| = 1
HOME_ABOVE_FLOOR = 0.15  # m, grip site above the basket floor at reset
GRIPPER = ('left_pad', 'right_pad', 'palm')  # geoms of the hand
# What the hand may be pressing on when the wrist-force limit ends an
# episode (SawyerStacking.pressed_on), in the order it picks one.
ENDINGS = ('held cube onto another cube', 'held cube against a wall',
           'held cube onto the floor', 'fingers on another cube',
           'fingers on a wall', 'fingers on the floor',
           'fingers on the green cube (not held)', 'other')


def _down_error(rotation: np.ndarray) -> np.ndarray:
  """Angular error (world frame) turning the grip's z axis to point down."""
  return np.cross(rotation[:, 2], np.array([0., 0., -1.]))


class SawyerStacking(dm_env.Environment):
  """One task of the stacking set; see `rewards.TASKS` and `NEW_TASKS`."""

  def __init__(self, task: str = 'stack_and_leave',
               seed: Optional[int] = None):
    tasks = {**rewards.TASKS, **rewards.NEW_TASKS}
    if task not in tasks:
      raise ValueError(f'unknown Sawyer task {task!r}; tasks: '
                       + ', '.join(tasks))
    self._task = task
    self._reward_fn = tasks[task]
    self._model = mujoco.MjModel.from_xml_string(model_lib.mjcf())
    self._data = mujoco.MjData(self._model)
    self._rng = np.random.default_rng(seed)
    self._arm_dofs = np.arange(len(model_lib.JOINTS))
    self._grip = self._model.site('grip').id
    self._substeps = int(round(CONTROL_TIMESTEP /
                               self._model.opt.timestep))
    self._home = self._solve_home()
    self._steps = 0
    self._finger_target = model_lib.FINGER_STROKE
    self._reset_next = True

  # --- control -------------------------------------------------------------

  step_limit = EPISODE_STEPS  # steps per episode (environments.step_limit)

  def control_timestep(self) -> float:
    """Seconds per step (as dm_control's environments say)."""
    return CONTROL_TIMESTEP

  def _joint_velocities(self, linear: np.ndarray, wrist: float) -> np.ndarray:
    """Damped least squares: joint velocities for the grip site's twist."""
    m, d = self._model, self._data
    jacp = np.zeros((3, m.nv))
    jacr = np.zeros((3, m.nv))
    mujoco.mj_jacSite(m, d, jacp, jacr, self._grip)
    jacobian = np.vstack([jacp, jacr])[:, self._arm_dofs]
    rotation = d.site_xmat[self._grip].reshape(3, 3)
    angular = 2.0 * _down_error(rotation) + np.array([0., 0., wrist])
    twist = np.concatenate([linear, angular])
    damping = 1e-3
    return jacobian.T @ np.linalg.solve(
        jacobian @ jacobian.T + damping * np.eye(6), twist)

  def _solve_home(self, offset=(0., 0., 0.)) -> np.ndarray:
    """Arm joints placing the grip above the basket (plus `offset`, metres),
    fingers down."""
    m, d = self._model, self._data
    target = model_lib.BASKET_FLOOR + [0., 0., HOME_ABOVE_FLOOR] + offset
    d.qpos[self._arm_dofs] = [0., -1.0, 0., 2.0, 0., 0.6, 0.]
    for _ in range(300):
      mujoco.mj_kinematics(m, d)
      mujoco.mj_comPos(m, d)
      error = target - d.site_xpos[self._grip]
      qdot = self._joint_velocities(2.0 * error, 0.0)
      d.qpos[self._arm_dofs] += 0.1 * qdot
    return d.qpos[self._arm_dofs].copy()

  # --- dm_env ----------------------------------------------------------------

  def reset(self, keep_cell: bool = False,
            random_arm: bool = False) -> dm_env.TimeStep:
    """A new episode: by default the arm at its home and the cubes scattered
    in the basket. `keep_cell`: start from the cell as the last episode left
    it (the real cell is not reset between episodes, §5.2). `random_arm`:
    the arm starts at a random place above the basket instead of home."""
    m, d = self._model, self._data
    if keep_cell:
      self._steps = 0
      self._reset_next = False
      return dm_env.restart(self._observation())
    home = self._home
    if random_arm:
      hx, hy = rewards.BASKET_HALF_EXTENT
      home = self._solve_home(self._rng.uniform([-hx / 2, -hy / 2, -0.05],
                                                [hx / 2, hy / 2, 0.1]))
    mujoco.mj_resetData(m, d)
    d.qpos[self._arm_dofs] = home
    self._finger_target = model_lib.FINGER_STROKE
    d.qpos[len(self._arm_dofs):len(self._arm_dofs) + 2] = self._finger_target
    hx, hy = rewards.BASKET_HALF_EXTENT
    margin = rewards.CUBE_SIZE
    # Cubes at random places in the basket, at least a cube apart.
    placed = []
    for cube in model_lib.CUBE_COLOURS:
      while True:
        xy = self._rng.uniform([-hx + margin, -hy + margin],
                               [hx - margin, hy - margin])
        if all(np.linalg.norm(xy - p) > 1.5 * rewards.CUBE_SIZE
               for p in placed):
          break
      placed.append(xy)
      address = m.jnt_qposadr[m.joint(cube).id]
      d.qpos[address:address + 3] = model_lib.BASKET_FLOOR + [
          xy[0], xy[1], rewards.CUBE_SIZE / 2]
      d.qpos[address + 3:address + 7] = [1., 0., 0., 0.]
    mujoco.mj_forward(m, d)
    self._arm_target = home.copy()
    self._steps = 0
    self._reset_next = False
    return dm_env.restart(self._observation())

  def step(self, action) -> dm_env.TimeStep:
    if self._reset_next:
      return self.reset()
    action = np.clip(np.asarray(action, np.float64), -1., 1.) * ACTION_LIMITS
    d = self._data
    dt = self._model.opt.timestep
    for _ in range(self._substeps):
      # Joint position servos track targets integrated from the commanded
      # velocities: pushing against an obstacle builds force, as on the
      # robot, until the wrist-force limit ends the episode.
      self._arm_target += self._joint_velocities(action[:3], action[3]) * dt
      d.ctrl[:7] = self._arm_target
      self._finger_target = float(np.clip(
          self._finger_target + action[4] * FINGER_SPEED * dt, 0.0,
          model_lib.FINGER_STROKE))
      d.ctrl[7:9] = self._finger_target
      mujoco.mj_step(self._model, d)
    self._steps += 1
    observation = self._observation()
    reward = float(self._reward_fn(observation))
    if np.any(np.abs(self.wrist_force()) > MAX_WRIST_FORCE):
      self._reset_next = True
      return dm_env.termination(reward, observation)
    if self._steps >= EPISODE_STEPS:
      self._reset_next = True
      return dm_env.truncation(reward, observation)
    return dm_env.transition(reward, observation)

  def render(self, width: int = 640, height: int = 480,
             camera: str = 'front') -> np.ndarray:
    """An RGB image [H, W, 3] of the cell, offscreen (MUJOCO_GL=osmesa or
    egl where there is no display; environments/rendering.py)."""
    renderer = getattr(self, '_renderer', None)
    if renderer is None or (renderer.width, renderer.height) != (width, height):
      self._renderer = mujoco.Renderer(self._model, height, width)
    self._renderer.update_scene(self._data, camera=camera)
    return self._renderer.render()

  def close(self) -> None:
    """Frees the offscreen renderer, if one was made."""
    if getattr(self, '_renderer', None) is not None:
      self._renderer.close()
      self._renderer = None

  def wrist_force(self) -> np.ndarray:
    return self._data.sensor('wrist_force').data.copy()

  def contacts(self) -> list:
    """The pairs of geoms touching now, each once and in name order (a geom
    without a name by its body's: the arm's links), e.g. ('green',
    'left_pad'); for telling what the hand was pressing on when the
    wrist-force limit ended an episode."""
    m, d = self._model, self._data

    def name(geom):
      return m.geom(geom).name or m.body(m.geom_bodyid[geom]).name

    return sorted({tuple(sorted((name(c.geom1), name(c.geom2))))
                   for c in d.contact[:d.ncon]})

  def pressed_on(self) -> str:
    """Which of ENDINGS the hand is pressing on now, from the contacts:
    while both fingers hold the green cube, what the cube touches (the
    fingertips reach the floor with a held cube's bottom, so a held cube
    pressed down touches both); else what the fingers touch."""

    def kind(name):
      if name == 'green':
        return 'the green cube'
      if name in model_lib.CUBE_COLOURS:
        return 'another cube'
      if name.startswith('basket_wall'):
        return 'a wall'
      return 'the floor' if name in ('basket_floor', 'table') else 'the arm'

    contacts = self.contacts()
    hand = {kind(b if a in GRIPPER else a) for a, b in contacts
            if (a in GRIPPER) != (b in GRIPPER)}
    cube = {kind(b if a == 'green' else a) for a, b in contacts
            if 'green' in (a, b) and not {a, b} & set(GRIPPER)}
    candidates = [f'fingers on {k}' for k in hand - {'the green cube'}]
    if self._grasped('green'):
      candidates += [f'held cube onto {k}' for k in cube - {'a wall'}]
      candidates += ['held cube against a wall'] if 'a wall' in cube else []
    elif 'the green cube' in hand:
      candidates.append('fingers on the green cube (not held)')
    # The hand on the arm's own links is not a listed ending: 'other'.
    return min((c for c in candidates if c in ENDINGS), key=ENDINGS.index,
               default='other')

  def _observation(self) -> np.ndarray:
    m, d = self._model, self._data
    arm = self._arm_dofs
    origin = model_lib.BASKET_FLOOR

    def pose(position, rotation_matrix):
      quat = np.zeros(4)
      mujoco.mju_mat2Quat(quat, rotation_matrix.reshape(9))
      return np.concatenate([position - origin, quat])

    grip_pos = d.site_xpos[self._grip]
    grip_mat = d.site_xmat[self._grip].reshape(3, 3)
    velocity = np.zeros(6)
    mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_SITE, self._grip,
                             velocity, 0)
    fingers = d.qpos[len(arm):len(arm) + 2]
    parts = dict(
        joint_position=d.qpos[arm], joint_velocity=d.qvel[arm],
        joint_torque=d.actuator_force[:7],
        wrist_pose=pose(grip_pos, grip_mat), wrist_velocity=velocity,
        wrist_force=np.concatenate([d.sensor('wrist_force').data,
                                    d.sensor('wrist_torque').data]),
        finger_angle=[fingers.mean()],
        finger_velocity=[d.qvel[len(arm):len(arm) + 2].mean()],
        grasp=[float(self._grasped('green'))])
    for cube in model_lib.CUBE_COLOURS:
      body = d.body(cube)
      cube_mat = body.xmat.reshape(3, 3)
      parts[f'{cube}_pose'] = pose(body.xpos, cube_mat)
      relative_pos = grip_mat.T @ (body.xpos - grip_pos)
      quat = np.zeros(4)
      mujoco.mju_mat2Quat(quat, (grip_mat.T @ cube_mat).reshape(9))
      parts[f'{cube}_relative_pose'] = np.concatenate([relative_pos, quat])
    return obs_lib.pack(**parts)

  def _grasped(self, cube: str) -> bool:
    """Both finger pads touch the cube."""
    m, d = self._model, self._data
    cube_geom = m.geom(cube).id
    pads = {m.geom('left_pad').id, m.geom('right_pad').id}
    touching = set()
    for contact in d.contact[:d.ncon]:
      pair = {contact.geom1, contact.geom2}
      if cube_geom in pair:
        touching |= pair & pads
    return touching == pads

  def observation_spec(self):
    return specs.Array((obs_lib.SIZE,), np.float32, 'observation')

  def action_spec(self):
    return specs.BoundedArray((5,), np.float32, -np.ones(5, np.float32),
                              np.ones(5, np.float32), 'action')
