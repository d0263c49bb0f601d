"""Per-dimension observation statistics of a dataset, for standardising the
networks' inputs (`abmrl train --normalise-observations`).

The Sawyer observation mixes joint torques of tens of N·m with cube offsets
of millimetres; fed raw, the first layer sees mostly the torques. The mean
and standard deviation are taken over every observation the run's restorers
will read (the `first_episodes` view, after the environment's observation
relabelling), once, at launch, and saved in the run directory, so every node
(learner, evaluators, online actors, `abmrl video`) applies the same ones.
Dimensions that never change (e.g. a task one-hot in one relabelled view)
are left as they are (mean 0, std 1).
"""

import os
from typing import Callable, Optional, Tuple

import numpy as np

from abmrl.datasets import episodes

Stats = Tuple[np.ndarray, np.ndarray]  # (mean, std), float32 [O]
FILENAME = 'observation_stats.npz'
MIN_STD = 1e-6


def observation_stats(directory: str, first_episodes: Optional[int] = None,
                      observation_fn: Optional[Callable] = None,
                      progress: Optional[Callable[[str], None]] = None
                      ) -> Stats:
  """Mean and std of every observation (in float64, Chan et al.'s parallel
  update per episode, so memory stays one episode)."""
  paths = episodes.list_episodes(directory, first_episodes)
  if not paths:
    raise episodes.DatasetError(f'{directory}: no complete episodes')
  count, mean, m2 = 0, None, None
  for i, path in enumerate(paths):
    observation = episodes.read_episode(path).observation
    if observation_fn is not None:
      observation = observation_fn(observation)
    x = np.asarray(observation, np.float64)
    n, x_mean = len(x), x.mean(0)
    x_m2 = ((x - x_mean) ** 2).sum(0)
    if mean is None:
      count, mean, m2 = n, x_mean, x_m2
    else:
      delta = x_mean - mean
      total = count + n
      mean = mean + delta * n / total
      m2 = m2 + x_m2 + delta ** 2 * count * n / total
      count = total
    if progress and (i + 1) % 500 == 0:
      progress(f'[stats] {i + 1}/{len(paths)} episodes')
  std = np.sqrt(m2 / count)
  constant = std < MIN_STD
  mean = np.where(constant, 0.0, mean)
  std = np.where(constant, 1.0, std)
  return mean.astype(np.float32), std.astype(np.float32)


def save(path: str, stats: Stats) -> str:
  """Writes atomically (a reader never sees half a file)."""
  tmp = path + '.tmp.npz'
  np.savez(tmp, mean=stats[0], std=stats[1])
  os.replace(tmp, path)
  return path


def load(path: str) -> Stats:
  try:
    with np.load(path) as data:
      mean, std = data['mean'], data['std']
  except (OSError, KeyError, ValueError) as e:
    raise episodes.DatasetError(f'{path}: not an observation-statistics file ({e})'
                     ) from None
  if mean.shape != std.shape or mean.ndim != 1 or np.any(std <= 0):
    raise episodes.DatasetError(f'{path}: bad observation statistics (mean '
                     f'{mean.shape}, std {std.shape})')
  return mean.astype(np.float32), std.astype(np.float32)
