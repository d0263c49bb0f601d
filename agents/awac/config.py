"""Hyperparameters of AWAC (AWAC paper, Table 1; λ as §5 says for MuJoCo).

Where the official code (rlkit) differs, the paper's value is the default and
the code's is an option; see ../shared/papers/NOTES_awac_mabe_awr.md §1.
"""

import dataclasses
from typing import Tuple


@dataclasses.dataclass
class AWACConfig:
  discount: float = 0.99
  batch_size: int = 1024
  policy_layer_sizes: Tuple[int, ...] = (256, 256, 256, 256)
  critic_layer_sizes: Tuple[int, ...] = (256, 256, 256, 256)
  min_variance: float = 0.01  # the shared Gaussian head (agents/networks.py)
  policy_learning_rate: float = 3e-4
  critic_learning_rate: float = 3e-4
  policy_weight_decay: float = 1e-4  # L2, as torch's Adam(weight_decay=...)
  target_update_rate: float = 5e-3  # τ, soft target update every step
  # λ: 1.0 for the MuJoCo benchmarks (paper); rlkit's MuJoCo config uses 2.
  temperature: float = 1.0
  # 'none': exp(A/λ) as the paper writes it (Z(s) dropped); 'batch_softmax':
  # softmax of A/λ over the batch times the batch size (rlkit's default).
  # Measured on the one-step test task (tests/test_awac.py): unnormalised
  # weights at λ = 0.3 blow the policy up (mean 1.3 for a mode at 0.5);
  # λ = 1, or the batch softmax at either λ, find the good mode.
  weight_normalisation: str = 'none'
  # Clip exp(A/λ) from above so one sample cannot dominate (off: inf).
  max_weight: float = float('inf')
  # V(s) = min(Q1, Q2)(s, a), a ~ π(·|s): rlkit's vf_K = 1 sample.
  value_samples: int = 1
  jit_compile: bool = True
