"""Hyperparameters of BEAR as the ABM paper ran it (Table 4, App. C.2), and
of the original BEAR (Kumar et al. 2019; its official code,
aviralkumar2907/BEAR `algos.py`), selected by `constraint`."""

import dataclasses
from typing import Tuple


@dataclasses.dataclass
class BEARConfig:
  """constraint: 'kl' (the ABM paper's: KL(π‖π_prior) ≤ kl_epsilon, one
  critic) or 'mmd' (the original: MMD(π, π_prior) ≤ mmd_epsilon, an
  ensemble of critics, warm-up steps on the MMD alone)."""
  constraint: str = 'kl'
  discount: float = 0.99
  batch_size: int = 512
  learning_rate: float = 2e-4  # Adam: policy, prior, critics (Table 4)
  policy_layer_sizes: Tuple[int, ...] = (256, 256)
  prior_layer_sizes: Tuple[int, ...] = (256, 256)
  critic_layer_sizes: Tuple[int, ...] = (256, 256, 256)
  min_variance: float = 0.01
  # Action samples of the policy per state at s' for the target's maximum
  # (Table 4's 20; the official code: 10).
  num_action_samples: int = 20
  # Samples of π per state at s for the policy's E[min_k Q_k(s, a)]:
  # Table 4's 20 for `bear`; the official code's actor loss averages over
  # its MMD samples (`bear_mmd`'s variant below).
  policy_samples: int = 20
  target_update_period: int = 200  # Table 4
  # The paper removed BEAR's ensemble (App. C.2): 1 critic; the original: 2.
  num_critics: int = 1
  # λ of the target's min/max mixing over the ensemble (official code).
  mixing: float = 0.75
  # The Lagrange multiplier, optimised as the project's SVG multiplier (ABM
  # paper App. C.2): Adam, projected to ≥ min_dual after each step.
  init_multiplier: float = 1.0
  dual_learning_rate: float = 2e-4
  min_dual: float = 1e-3
  kl_epsilon: float = 0.2  # Table 4
  # The original's MMD constraint (official code's defaults).
  mmd_epsilon: float = 0.05
  mmd_kernel: str = 'laplacian'  # or 'gaussian'
  mmd_sigma: float = 20.0
  mmd_samples: int = 5  # of the policy and of the prior, per state
  # Steps in which the policy minimises the MMD alone (the official code's
  # 20 epochs of 2,000 steps).
  warmup_steps: int = 40_000
  jit_compile: bool = True


VARIANTS = {
    'bear': dict(constraint='kl', num_critics=1),
    # The original: the ensemble, its multiplier's faster learning rate
    # (the official code's 1e-3 on log α), and E[Q] over the MMD's samples.
    'bear_mmd': dict(constraint='mmd', num_critics=2, dual_learning_rate=1e-3,
                     policy_samples=5),
}
