"""Hyperparameters of the BM learner (ABM paper, Table 1)."""

import dataclasses
from typing import Tuple


@dataclasses.dataclass
class BMConfig:
  learning_rate: float = 2e-4  # Adam
  batch_size: int = 512
  policy_layer_sizes: Tuple[int, ...] = (256, 256)
  min_variance: float = 0.01
  # Compile the whole step with XLA. Off by default: no measurable gain for
  # this small step on 2 CPU cores (in memory, batch 512, obs 17: 385 and 330
  # steps/s without XLA, 375 and 365 with, alternating in one run).
  jit_compile: bool = False
