"""Hyperparameters of BCQ as the ABM paper ran it (Table 3, App. C.2).

Where the ABM paper gives no value, the official code's (sfujim/BCQ,
`continuous_BCQ/BCQ.py`; d3rlpy's `bcq.py` has the same defaults) is used,
each marked below.
"""

import dataclasses
from typing import Tuple


@dataclasses.dataclass
class BCQConfig:
  discount: float = 0.99
  batch_size: int = 512
  learning_rate: float = 2e-4  # Adam, every network (Table 3)
  encoder_layer_sizes: Tuple[int, ...] = (256, 256)
  decoder_layer_sizes: Tuple[int, ...] = (256, 256)
  latent_size: int = 64
  perturbation_layer_sizes: Tuple[int, ...] = (256, 256)
  critic_layer_sizes: Tuple[int, ...] = (256, 256, 256)
  # Φ: the perturbation's range, a fraction of the action range's half
  # width ("a range of [0.25, 0.25]", App. C.2; the official code's 0.05).
  perturbation_scale: float = 0.25
  # The VAE's loss: reconstruction + kl_weight · KL (official code).
  kl_weight: float = 0.5
  # Latents are clipped to ± this when the decoder samples (official code).
  latent_clip: float = 0.5
  # λ of the soft clipped double-Q target (official code).
  mixing: float = 0.75
  # Decoded actions the target maximises over at s' (official code: 10).
  target_samples: int = 10
  # Decoded actions the policy picks its argmax of Q1 from (official: 100).
  acting_samples: int = 100
  # Target networks copied every this many steps, as the project's other
  # ABM-paper learners (Table 1's period 200; the official code instead
  # updates them by Polyak averaging with τ = 0.005 every step).
  target_update_period: int = 200
  jit_compile: bool = True
