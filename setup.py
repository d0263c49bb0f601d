"""abmrl: distributed offline RL from logged experience (ABM, BM+MPO, AWAC, AWR, MABE)."""

import setuptools

# The stack is pinned to the one generation that installs together (see
# DESIGN.md): Launchpad 0.5 wheels stop at CPython 3.10 and link TF 2.8.
INSTALL_REQUIRES = [
    'dm-acme[tf]==0.4.0',  # tensorflow 2.8.0, dm-reverb 0.7.0, dm-launchpad 0.5.0, tfp 0.15, sonnet 2
    'dm-control',
    'mujoco',
    'envlogger==1.0.8',
    'numpy<1.24',
    'protobuf>=3.20,<3.21',  # EnvLogger needs 3.20; TF 2.8.0 accepts it.
    'jax==0.4.13',  # imported by Acme 0.4.0 modules
    'jaxlib==0.4.13',
    'gym==0.23.1',
    'pillow',
    'matplotlib',
    # Era pins: TF 2.8 breaks with wrapt>=1.15, JAX 0.4.13 with ml-dtypes>=0.3,
    # and TF/TFDS import pkg_resources, gone from newer setuptools.
    'wrapt<1.15',
    'ml-dtypes<0.3',
    'setuptools<70',
    'gym-notices==0.0.8',  # later releases print a banner in every process
    'gymnasium==1.1.1',  # the gym:<Name>-v5 MuJoCo tasks (environments/gym.py)
    'imageio',  # gymnasium's MuJoCo environments import it
]
SOURCE_FOLDERS = ('agents', 'datasets', 'environments', 'launch')
PACKAGES = [p for top in SOURCE_FOLDERS
            for p in [top] + [f'{top}.{sub}' for sub in
                              setuptools.find_packages(top)]]
TEST_REQUIRES = ['pytest', 'pytest-timeout', 'pytest-xdist']
# `--launch ray`: the same program on the hosts of a Ray cluster. 2.60.0
# installs beside the pinned stack without moving a pin (it needs protobuf
# >= 3.20.3, the lock's). In the lock, so the suite tests it.
CLUSTER_REQUIRES = ['ray==2.60.0']
# A GPU learner: TF 2.8 was built against CUDA 11.2 and cuDNN 8.1; these
# wheels carry the CUDA 11 / cuDNN 8 libraries it loads (same sonames), and
# launch/run.py points the learner's process at them. Not in the lock
# (several GB; no GPU on the project's machines).
GPU_REQUIRES = [
    'nvidia-cuda-runtime-cu11==11.8.89', 'nvidia-cublas-cu11==11.11.3.6',
    'nvidia-cufft-cu11==10.9.0.58', 'nvidia-curand-cu11==10.3.0.86',
    'nvidia-cusolver-cu11==11.4.1.48', 'nvidia-cusparse-cu11==11.7.5.86',
    'nvidia-cudnn-cu11==8.6.0.163',
]

setuptools.setup(
    name='abmrl',
    version='0.1.0',
    description='Distributed actor-learner offline RL on Acme, Reverb and Launchpad.',
    python_requires='>=3.10,<3.11',
    # The source folders keep the project's layout (agents/, datasets/,
    # environments/, launch/ at the top) but install under one namespace,
    # abmrl.agents, abmrl.datasets, …: a bare top-level `datasets` would
    # collide with Hugging Face's package of that name. `abmrl` itself is an
    # implicit namespace package (no __init__.py to map).
    packages=[f'abmrl.{p}' for p in PACKAGES],
    package_dir={f'abmrl.{p}': p.replace('.', '/') for p in PACKAGES},
    # Compiled on first launch (launch/binding.py), on each host.
    package_data={'abmrl.launch': ['bindshim.c']},
    install_requires=INSTALL_REQUIRES,
    extras_require={'test': TEST_REQUIRES, 'cluster': CLUSTER_REQUIRES,
                    'gpu': GPU_REQUIRES},
    entry_points={'console_scripts': ['abmrl = abmrl.launch.cli:entry_point']},
)
