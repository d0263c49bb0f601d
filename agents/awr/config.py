"""Hyperparameters of AWR (AWR paper, Appendix C; official-code options).

See ../shared/papers/NOTES_awac_mabe_awr.md §3 for where the official code
(xbpeng/awr) differs from the paper: it normalises advantages and uses
temperature 1 on them, and a critic step size of 0.01.
"""

import dataclasses
from typing import Tuple


@dataclasses.dataclass
class AWRConfig:
  discount: float = 0.99
  td_lambda: float = 0.95
  temperature: float = 0.05  # β (paper: 0.05 for all experiments)
  max_weight: float = 20.0  # ω_max
  # 'none' (paper) or 'batch': (A − mean)/(std + 1e-5) over the batch before
  # exp(A/β), as the official code does over its whole buffer (with β = 1).
  advantage_normalisation: str = 'none'
  # Algorithm 1's iteration: returns are computed over `batch_size` whole
  # episodes drawn from replay (50 control-suite episodes: the paper's 50k
  # sample buffer), then `value_steps` value and `policy_steps` policy SGD
  # steps on minibatches of `minibatch_size` of their transitions.
  batch_size: int = 50  # episodes per iteration
  minibatch_size: int = 256
  value_steps: int = 200
  policy_steps: int = 1000
  policy_layer_sizes: Tuple[int, ...] = (128, 64)
  value_layer_sizes: Tuple[int, ...] = (128, 64)
  min_variance: float = 0.01
  # SGD with momentum 0.9 for both networks (paper, Appendix C).
  policy_learning_rate: float = 5e-5
  value_learning_rate: float = 1e-4
  momentum: float = 0.9
  jit_compile: bool = True
