"""The MuJoCo model of the simulated Sawyer stacking cell (ABM paper §5.2).

A Sawyer 7-DoF arm with the kinematics of Rethink Robotics' published
description (sawyer_description/urdf/sawyer_base.urdf.xacro: joint origins,
axes, limits, link masses and centres of mass), a two-finger parallel
gripper of Robotiq 2F-85 proportions (85 mm stroke), a table, and a basket
in front of the robot holding three 5 cm cubes. Links are capsules between
joint origins, not the manufacturer's meshes: nothing is downloaded, and
contact needs only the rough shape.

The task frame (observations, rewards) has its origin at the centre of the
basket's floor; `BASKET_FLOOR` is where that is in the world (robot base at
the world origin).
"""

import numpy as np

from abmrl.environments.sawyer import rewards

# (name, origin xyz, origin rpy, lower, upper, link mass, link CoM) from the
# URDF: each joint rotates about its own z axis.
JOINTS = (
    ('right_j0', (0, 0, 0.08), (0, 0, 0), -3.0503, 3.0503, 5.3213,
     (0.024366, 0.010969, 0.14363)),
    ('right_j1', (0.081, 0.05, 0.237), (-1.5708, 1.5708, 0), -3.8095, 2.2736,
     4.505, (-0.0030849, -0.026811, 0.092521)),
    ('right_j2', (0, -0.14, 0.1425), (1.5708, 0, 0), -3.0426, 3.0426, 1.745,
     (-0.00016044, -0.014967, 0.13582)),
    ('right_j3', (0, -0.042, 0.26), (-1.5708, 0, 0), -3.0439, 3.0439, 2.5097,
     (-0.0048135, -0.0281, -0.084154)),
    ('right_j4', (0, -0.125, -0.1265), (1.5708, 0, 0), -2.9761, 2.9761,
     1.1136, (-0.0018844, 0.0069001, 0.1341)),
    ('right_j5', (0, 0.031, 0.275), (-1.5708, 0, 0), -2.9761, 2.9761, 1.5625,
     (0.0061133, -0.023697, 0.076416)),
    ('right_j6', (0, -0.11, 0.1053), (-1.5708, -0.17453, 3.1416), -4.7124,
     4.7124, 0.3292, (-8.0726e-06, 0.0085838, -0.0049566)),
)
HAND_OFFSET = 0.0245  # right_hand frame along l6's z (URDF)
GRIPPER_LENGTH = 0.15  # hand flange to fingertip centre (2F-85-like)
FINGER_STROKE = 0.0425  # each finger's travel (85 mm opening in total)

TABLE_TOP = -0.05  # world z of the table surface (robot base on a pedestal)
BASKET_CENTRE = (0.65, 0.0)  # world x, y of the basket's centre
BASKET_FLOOR = np.array([BASKET_CENTRE[0], BASKET_CENTRE[1], TABLE_TOP + 0.01])
CUBE_COLOURS = {'green': '0.1 0.7 0.1 1', 'yellow': '0.9 0.8 0.1 1',
                'blue': '0.1 0.2 0.8 1'}

PHYSICS_TIMESTEP = 0.005  # s; 10 substeps per 20 Hz control step


def _link_geom(child_origin) -> str:
  """A capsule from this link's origin to the next joint's origin."""
  x, y, z = child_origin
  if np.linalg.norm(child_origin) < 1e-6:
    return ''
  return (f'<geom type="capsule" size="0.045" fromto="0 0 0 {x} {y} {z}" '
          f'rgba="0.55 0.1 0.1 1" contype="1" conaffinity="1"/>')


def _gripper() -> str:
  """Palm, a `grip` site between the fingertips, two sliding fingers whose
  joint is the half-opening (0: closed)."""
  return f'''
      <site name="wrist" pos="0 0 0" size="0.01"/>
      <geom name="palm" type="cylinder" size="0.04 0.03" pos="0 0 0.03" rgba="0.2 0.2 0.2 1" mass="0.3"/>
      <site name="grip" pos="0 0 {GRIPPER_LENGTH}" size="0.008" rgba="1 0 0 0.5"/>
      <body name="left_finger" pos="0 0 0.11">
        <joint name="left_finger" type="slide" axis="0 1 0" range="0 {FINGER_STROKE}" damping="5"/>
        <geom name="left_pad" type="box" size="0.01 0.005 0.03" pos="0 0.005 0.04" rgba="0.3 0.3 0.3 1" mass="0.05" friction="2 0.05 0.001"/>
      </body>
      <body name="right_finger" pos="0 0 0.11">
        <joint name="right_finger" type="slide" axis="0 -1 0" range="0 {FINGER_STROKE}" damping="5"/>
        <geom name="right_pad" type="box" size="0.01 0.005 0.03" pos="0 -0.005 0.04" rgba="0.3 0.3 0.3 1" mass="0.05" friction="2 0.05 0.001"/>
      </body>'''


def _arm() -> str:
  """Nested bodies, innermost last; the hand carries the gripper."""
  body = f'''
    <body name="hand" pos="0 0 {HAND_OFFSET}" quat="0.7071068 0 0 0.7071068">
      {_gripper()}
    </body>'''
  for i in reversed(range(len(JOINTS))):
    name, origin, rpy, lower, upper, mass, com = JOINTS[i]
    child = JOINTS[i + 1][1] if i + 1 < len(JOINTS) else (0, 0, HAND_OFFSET)
    body = f'''
    <body name="{name.replace('j', 'l')}" pos="{origin[0]} {origin[1]} {origin[2]}" euler="{rpy[0]} {rpy[1]} {rpy[2]}" gravcomp="1">
      <inertial pos="{com[0]} {com[1]} {com[2]}" mass="{mass}" diaginertia="0.01 0.01 0.01"/>
      <joint name="{name}" axis="0 0 1" range="{lower} {upper}" damping="5" armature="0.1"/>
      {_link_geom(child)}{body}
    </body>'''
  return body


def _cubes() -> str:
  s = rewards.CUBE_SIZE / 2
  return ''.join(f'''
    <body name="{cube}" pos="{BASKET_FLOOR[0] + 0.08 * (i - 1)} {BASKET_FLOOR[1]} {BASKET_FLOOR[2] + s}">
      <freejoint name="{cube}"/>
      <geom name="{cube}" type="box" size="{s} {s} {s}" rgba="{rgba}" mass="0.05" friction="1.5 0.05 0.001"/>
    </body>''' for i, (cube, rgba) in enumerate(CUBE_COLOURS.items()))


def _basket() -> str:
  hx, hy = rewards.BASKET_HALF_EXTENT
  cx, cy, floor = BASKET_FLOOR
  wall, height = 0.01, 0.06
  walls = [('+x', cx + hx + wall, cy, wall, hy + wall),
           ('-x', cx - hx - wall, cy, wall, hy + wall),
           ('+y', cx, cy + hy + wall, hx + wall, wall),
           ('-y', cx, cy - hy - wall, hx + wall, wall)]
  geoms = ''.join(
      f'<geom name="basket_wall{side}" type="box" size="{sx} {sy} {height / 2}" pos="{x} {y} {floor + height / 2}" rgba="0.6 0.5 0.4 1"/>'
      for side, x, y, sx, sy in walls)
  return (f'<geom name="basket_floor" type="box" size="{hx} {hy} 0.005" '
          f'pos="{cx} {cy} {floor - 0.005}" rgba="0.6 0.5 0.4 1"/>' + geoms)


def mjcf() -> str:
  """The whole model as MJCF text."""
  return f'''<mujoco model="sawyer_stacking">
  <compiler angle="radian" eulerseq="XYZ" autolimits="true"/>
  <option timestep="{PHYSICS_TIMESTEP}" gravity="0 0 -9.81" cone="elliptic" impratio="10"/>
  <visual><global offwidth="640" offheight="480"/></visual>
  <worldbody>
    <light pos="0.5 0 1.5" dir="0 0 -1"/>
    <camera name="front" pos="1.6 0 0.6" xyaxes="0 1 0 -0.35 0 1"/>
    <geom name="table" type="box" size="0.6 0.6 0.02" pos="0.6 0 {TABLE_TOP - 0.02}" rgba="0.8 0.8 0.8 1"/>
    <geom type="cylinder" size="0.1 0.2" pos="0 0 -0.2" rgba="0.2 0.2 0.2 1" contype="0" conaffinity="0"/>
    {_basket()}
    {_arm()}
    {_cubes()}
  </worldbody>
  <contact>
    <exclude body1="right_l0" body2="right_l1"/>
    <exclude body1="right_l1" body2="right_l2"/>
    <exclude body1="right_l2" body2="right_l3"/>
    <exclude body1="right_l3" body2="right_l4"/>
    <exclude body1="right_l4" body2="right_l5"/>
    <exclude body1="right_l5" body2="right_l6"/>
    <exclude body1="right_l6" body2="hand"/>
    <exclude body1="hand" body2="left_finger"/>
    <exclude body1="hand" body2="right_finger"/>
  </contact>
  <actuator>
    {''.join(f'<position name="{j[0]}" joint="{j[0]}" kp="400" kv="40" forcerange="-80 80"/>' for j in JOINTS)}
    <position name="left_finger" joint="left_finger" kp="200" ctrlrange="0 {FINGER_STROKE}" forcerange="-20 20"/>
    <position name="right_finger" joint="right_finger" kp="200" ctrlrange="0 {FINGER_STROKE}" forcerange="-20 20"/>
  </actuator>
  <sensor>
    <force name="wrist_force" site="wrist"/>
    <torque name="wrist_torque" site="wrist"/>
  </sensor>
</mujoco>'''
