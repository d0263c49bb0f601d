"""Hyperparameters of the BM learner (ABM paper, Table 1)."""

import dataclasses
from typing import Tuple


@dataclasses.dataclass
class BMConfig:
  learning_rate: float = 2e-4  # Adam
  batch_size: int = 512
  policy_layer_sizes: Tuple[int, ...] = (256, 256)
  min_variance: float = 0.01
  # Compile the whole step with XLA. Off by default: TF 2.8's XLA path is
  # slower than the plain graph for this small step on CPU (measured in
  # benchmarks/pipeline.py's in-memory run).
  jit_compile: bool = False
