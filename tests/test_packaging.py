"""abmrl installs as one namespace (abmrl.agents, abmrl.datasets, …), so it
lives beside other packages with the same bare names, Hugging Face's
`datasets` first of all."""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Imports abmrl's dataset code and a foreign top-level `datasets` in one
# interpreter, and checks each is what it claims to be.
_BOTH = """
import datasets
assert datasets.FOREIGN, datasets
from abmrl.datasets import episodes
from abmrl.launch import config
assert episodes.DATASET_FILE == 'dataset.json'
assert not hasattr(episodes, 'FOREIGN')
print('abmrl at', episodes.__file__)
"""


def _run(code, pythonpath, cwd):
  return subprocess.run(
      [sys.executable, '-c', code], capture_output=True, text=True,
      timeout=120, cwd=cwd,
      env=dict(os.environ, PYTHONPATH=pythonpath, TF_CPP_MIN_LOG_LEVEL='3'))


def _foreign_datasets(tmp_path):
  foreign = tmp_path / 'foreign'
  (foreign / 'datasets').mkdir(parents=True)
  (foreign / 'datasets' / '__init__.py').write_text('FOREIGN = True\n')
  return str(foreign)


def test_abmrl_imports_beside_a_foreign_datasets_package(tmp_path):
  done = _run(_BOTH, _foreign_datasets(tmp_path), cwd=str(tmp_path))
  assert done.returncode == 0, done.stderr[-2000:]
  # The editable install serves the source folders themselves.
  assert os.path.join(ROOT, 'datasets', 'episodes.py') in done.stdout


def test_a_built_wheel_installs_the_same_namespace(tmp_path):
  """The non-editable install: a wheel of the project, unpacked into a
  folder of its own, is the abmrl that gets imported."""
  wheels, target, source = (tmp_path / 'wheels', tmp_path / 'site',
                            tmp_path / 'source')
  # Built from a copy: pip builds in the source tree (build/, egg-info).
  ignore = shutil.ignore_patterns('__pycache__')
  for folder in ('agents', 'datasets', 'environments', 'launch'):
    shutil.copytree(os.path.join(ROOT, folder), source / folder,
                    ignore=ignore)
  shutil.copy(os.path.join(ROOT, 'setup.py'), source)
  subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                  '--no-build-isolation', '-w', str(wheels), str(source)],
                 check=True, capture_output=True, timeout=300, cwd=tmp_path)
  (wheel,) = wheels.iterdir()
  subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
                  '--target', str(target), str(wheel)],
                 check=True, capture_output=True, timeout=300)
  done = _run(_BOTH, os.pathsep.join([str(target), _foreign_datasets(
      tmp_path)]), cwd=str(tmp_path))
  assert done.returncode == 0, done.stderr[-2000:]
  assert str(target) in done.stdout
  assert not (target / 'agents').exists()  # nothing at the top level
