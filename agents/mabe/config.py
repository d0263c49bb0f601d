"""Hyperparameters of MABE (Cang et al. 2021) and of MOPO (its prior-free
ablation, Yu et al. 2020), in three stages.

The MABE paper gives few numbers (its digest, NOTES_awac_mabe_awr.md §2.2):
where it is silent, the values are MOPO's official code's (tianheyu927/mopo,
`variants.py`, `examples/config/d4rl/*.py`), marked [MOPO]; where both are
silent, the choice is this project's, marked [abmrl] with the reason.
"""

import dataclasses
from typing import Tuple


@dataclasses.dataclass
class MABEConfig:
  """Stage 1, the model; stage 2, the prior; stage 3, model-based RL."""
  discount: float = 0.99  # [MOPO]
  batch_size: int = 256  # [MOPO], every stage
  jit_compile: bool = True

  # --- stage 1: the dynamics-and-reward ensemble (paper eq. 2) ------------
  # 7 members, the 5 best by validation error kept (paper §4.1).
  ensemble_size: int = 7
  elites: int = 5
  model_layer_sizes: Tuple[int, ...] = (200, 200, 200, 200)  # [MOPO], swish
  # [MOPO]: weight decay per layer, the last one the output layer's.
  model_weight_decays: Tuple[float, ...] = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5,
                                            1e-4)
  model_learning_rate: float = 1e-3  # [MOPO]
  # Early stopping [MOPO]: validation every `model_eval_every` steps; it
  # stops once no member improved its best validation error by more than
  # 1% in `model_patience` validations in a row, or at `model_max_steps`.
  model_eval_every: int = 250  # [abmrl] ~ an epoch of a small dataset
  model_patience: int = 5  # [MOPO]
  model_max_steps: int = 20_000  # [abmrl]: a CPU budget
  # A finished model stage of another run to use instead (its run
  # directory): the paper's transfer experiment's model of dataset D1.
  model_from: str = ''

  # --- stage 2: the adaptive behaviour prior (eq. 4–5) ---------------------
  use_prior: bool = True  # False: MOPO (no stage 2, SAC's entropy instead)
  # False: the unweighted prior of eq. 3 (the "flat prior" ablation).
  weighted_prior: bool = True
  prior_layer_sizes: Tuple[int, ...] = (256, 256)  # paper: as the policy's
  prior_learning_rate: float = 3e-4  # [MOPO]'s SAC rate
  # Q of the data by TD (expected SARSA: a' from the unweighted behaviour
  # model fit alongside; the paper says only "TD on D").
  q_steps: int = 5_000  # [abmrl]: a CPU budget
  # exp(ω/η): ω = Q (1 − γ)/r_max (eq. 5, 'reward') or Q / max Q (App. C.1,
  # 'max_q'); η is not given, App. C.1's exp(Q / max Q) implies 1.
  prior_normalisation: str = 'reward'
  prior_temperature: float = 1.0
  prior_eval_every: int = 250  # [abmrl]
  prior_patience: int = 5  # [abmrl], as the model's
  prior_max_steps: int = 10_000  # [abmrl]: a CPU budget
  prior_from: str = ''  # a finished prior stage of another run

  # --- stage 3: behaviour-regularised model-based RL (eq. 6, Alg. 1) -------
  use_rl: bool = True  # False: the prior alone (the no-RL ablation)
  policy_layer_sizes: Tuple[int, ...] = (256, 256)  # paper
  critic_layer_sizes: Tuple[int, ...] = (256, 256, 256)  # paper: 3 layers
  min_variance: float = 0.01  # the project's Gaussian policies'
  learning_rate: float = 3e-4  # [MOPO]: policy and critics
  target_update_rate: float = 5e-3  # [MOPO]'s τ, Alg. 1's λ_φ
  # δ of E[KL(π‖p_α)] ≤ δ, driven by β (paper Table 3: 0.1 medium-expert,
  # 40 halfcheetah mixed, 100 halfcheetah medium). In MOPO mode the target
  # of E[log π] (SAC's −target entropy) is the action size instead, and the
  # policy is tanh-squashed, as MOPO's (networks.SquashedGaussianPolicy).
  target_kl: float = 1.0  # [abmrl]: between the paper's per-dataset values
  init_beta: float = 1.0  # [abmrl]
  beta_learning_rate: float = 3e-4  # [MOPO]'s α rate
  # Each batch: this share from the data's table, the rest from the model
  # table ([MOPO]: 0.05; rounded to whole Reverb items).
  real_fraction: float = 0.05
  # Model rollouts (the rollout nodes'): h steps from dataset states, one
  # elite member drawn per step and state ([MOPO]).
  rollout_length: int = 5  # h ([MOPO]'s halfcheetah-mixed value)
  rollout_batch: int = 1024  # start states per rollout round [abmrl]
  # MOPO's penalty r − ξ max_i ‖σ_i(s, a)‖ on model rewards.
  use_penalty: bool = True
  penalty: float = 1.0  # ξ ([MOPO]'s halfcheetah-mixed value)
  # A model transition whose next state leaves the data's range, widened by
  # this share of it per dimension, is not written and ends its rollout.
  state_margin: float = 0.1  # [abmrl]
  # Rollout nodes fetch the policy and model every this many rounds.
  rollout_variable_update_period: int = 1
  # The model table ([MOPO] keeps 5 epochs of rollouts: ~1.25M transitions).
  model_replay_size: int = 1_000_000
  model_min_replay_size: int = 5_000
  model_samples_per_insert: float = 4.0  # [abmrl]: a CPU budget

  def check(self) -> str:
    """The first field whose value cannot run ('' if none)."""
    for ok, message in (
        (self.ensemble_size >= 1, 'ensemble_size must be at least 1'),
        (1 <= self.elites <= self.ensemble_size,
         'elites must be in [1, ensemble_size]'),
        (len(self.model_weight_decays) == len(self.model_layer_sizes) + 1,
         'model_weight_decays needs one value per model layer and one for '
         'the output'),
        (self.prior_normalisation in ('reward', 'max_q'),
         "prior_normalisation must be 'reward' or 'max_q'"),
        (self.prior_temperature > 0, 'prior_temperature must be positive'),
        (0 < self.real_fraction < 1, 'real_fraction must be in (0, 1)'),
        (self.rollout_length >= 1, 'rollout_length must be at least 1'),
        (self.rollout_batch >= 1, 'rollout_batch must be at least 1'),
        (self.penalty >= 0, 'penalty must be non-negative'),
        (self.target_kl > 0 or not self.use_prior,
         'target_kl must be positive'),
        (self.use_prior or self.use_rl,
         'use_prior=false with use_rl=false leaves nothing to learn'),
        (self.use_prior or not self.prior_from,
         'prior_from needs use_prior'),
        (self.model_samples_per_insert > 0,
         'model_samples_per_insert must be positive')):
      if not ok:
        return message
    return ''


VARIANTS = {
    'mabe': dict(use_prior=True),
    # The ablation of Fig. 4: the prior of eq. 3, unweighted.
    'mabe_flat': dict(use_prior=True, weighted_prior=False),
    # MOPO: model-based SAC with the uncertainty penalty, no prior.
    'mopo': dict(use_prior=False),
}
