"""Shared fixtures: small real datasets made with the built-in generator."""

import os
import subprocess

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('GLOG_minloglevel', '1')
os.environ.setdefault('MUJOCO_GL', 'egl')

import pytest  # pylint: disable=g-import-not-at-top

from abmrl.datasets import generate  # pylint: disable=g-import-not-at-top

ENV_ID = 'control:point_mass-easy'


@pytest.fixture(scope='session')
def small_dataset(tmp_path_factory):
  """8 episodes of 120 steps: scripted at three noise levels, and random."""
  directory = str(tmp_path_factory.mktemp('data') / 'point_mass')
  generate.generate(ENV_ID, directory, episodes_per_behaviour=2, seed=0,
                    max_steps_per_episode=120, progress=None)
  return directory


def run_ok(command, timeout=280):
  """Runs a command (e.g. `python -m launch.cli train ...`) from the
  repository root; fails the test with the end of its output unless it
  exits 0. Returns the CompletedProcess."""
  done = subprocess.run(command, capture_output=True, text=True,
                        timeout=timeout,
                        cwd=os.path.dirname(os.path.dirname(__file__)))
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  return done
