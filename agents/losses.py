"""The losses several learner families share, and their batches' transitions.

  weighted_maximum_likelihood   −E[w log π(a|s)]: the behaviour model (ABM
                                paper, eq. 3), the ABM prior (eq. 4), AWAC's
                                actor (AWAC paper, eq. 10) and AWR's policy
  advantage_weights             the w of those from advantages A: ABM's
                                f(A) (eq. 4), AWAC's exp(A/λ) (eq. 10, Z(s)
                                dropped), AWR's min(exp(A/β), ω_max)
  constrained_policy_loss       max E_π[Q] s.t. KL(π‖π_prior) ≤ ε with a
                                Lagrange multiplier: ABM's SVG (eq. 6,
                                11–12) and BEAR (ABM paper, App. C.2)
  soft_clipped_max_target       r + γ max_j [λ min_k + (1 − λ) max_k]
                                Q_k(s', a_j): BCQ's and BEAR's target
  critic_loss                   Σ_k mean (Q_k − y)²
  snippet_transitions           batches of [B, N, ...] snippets → their
                                B·(N − 1) transitions (s, a, r, d, s')
  per_behaviour_means           a per-row quantity averaged within each
                                behaviour tag (what a learner logs per tag)

Written as functions of tensors so tests can check them against NumPy.
Family-specific losses stay in their family's losses.py.
"""

from typing import Mapping, NamedTuple, Optional, Tuple

import tensorflow as tf
import tensorflow_probability as tfp


def weighted_maximum_likelihood(distribution, actions: tf.Tensor,
                                weights: Optional[tf.Tensor] = None
                                ) -> tf.Tensor:
  """ABM paper eq. 3: −E_τ∼D[Σ_t log π_bm(a_t|s_t)], averaged over transitions.

  With `weights` w_t it is eq. 4's −E[Σ_t log π_abm(a_t|s_t) w_t] (the ABM
  prior, w_t = f(R(τ_t:N) − V̂(s_t))), and with advantage weights AWAC's
  eq. 10 projected onto the policy class and AWR's policy step.

  Args:
    distribution: π(·|s_t) for a batch of states, batch shape [T].
    actions: a_t, [T, A].
    weights: optional w_t, [T] (no gradient flows into them).
  Returns:
    scalar loss.
  """
  log_prob = distribution.log_prob(actions)
  if weights is not None:
    log_prob *= tf.stop_gradient(weights)
  return -tf.reduce_mean(log_prob)


def advantage_weights(advantage: tf.Tensor, *, kind: str = 'exp',
                      temperature: float = 1.0,
                      max_weight: float = float('inf'),
                      normalisation: str = 'none',
                      valid: Optional[tf.Tensor] = None) -> tf.Tensor:
  """w = f(A'), A' the advantage normalised or not.

  kind, f:
    'exp'    min(exp(A'/temperature), max_weight): AWAC's eq. 10 with Z(s)
             dropped (λ), AWR's min(exp(A/β), ω_max); the ABM paper's
             exponential f in eq. 4 (temperature 1, max_weight 20, as CRR
             clips it).
    'step'   the unit step 1[A' ≥ 0]: the ABM prior's f in eq. 4 (its default).
    'none'   1: eq. 4 becomes BM's eq. 3.
  normalisation, A':
    'none'               A' = A (the papers').
    'batch_standardise'  A' = (A − mean)/(std + 1e-5) over the valid entries
                         of the batch (AWR's official code, over its buffer).
    'batch_softmax'      with 'exp' only: exp(A/λ) replaced by the batch's
                         softmax of A/λ times the batch size (rlkit's AWAC).
  max_weight clips the exponential weights from above so one sample cannot
  dominate the batch (inf: no clip); the step and 1 need no clip.

  Args:
    advantage: A, [T] (or [B, T]; 'batch_softmax' normalises over the last
      axis).
    valid: 1 on real entries, shaped as `advantage` ('batch_standardise'
      only; None: all are).
  Returns:
    w, shaped as `advantage`, no gradient.
  """
  advantage = tf.stop_gradient(advantage)
  if normalisation == 'batch_standardise':
    if valid is None:
      valid = tf.ones_like(advantage)
    count = tf.reduce_sum(valid)
    mean = tf.reduce_sum(advantage * valid) / count
    variance = tf.reduce_sum(tf.square(advantage - mean) * valid) / count
    advantage = (advantage - mean) / (tf.sqrt(variance) + 1e-5)
  elif normalisation == 'batch_softmax':
    if kind != 'exp' or valid is not None:
      raise ValueError("'batch_softmax' normalises exp weights of a whole "
                       'batch')
  elif normalisation != 'none':
    raise ValueError(f'unknown advantage normalisation {normalisation!r}')

  if kind == 'step':
    return tf.cast(advantage >= 0, advantage.dtype)
  if kind == 'none':
    return tf.ones_like(advantage)
  if kind != 'exp':
    raise ValueError(f'unknown advantage weighting {kind!r}')
  scaled = advantage / temperature
  if normalisation == 'batch_softmax':
    weights = tf.nn.softmax(scaled) * tf.cast(tf.size(scaled), scaled.dtype)
  else:
    weights = tf.exp(scaled)
  return tf.minimum(weights, max_weight)


def constrained_policy_loss(q_of_samples: tf.Tensor, kl_to_prior: tf.Tensor,
                            eta: tf.Tensor, epsilon: float
                            ) -> Tuple[tf.Tensor, tf.Tensor]:
  """ABM paper eq. 6 and 11–12: the Lagrangian of max E_π[Q] s.t.
  KL(π‖π_prior) ≤ ε, for the SVG variants and BEAR (whose multiplier the ABM
  paper optimised the same way, App. C.2).

  Args:
    q_of_samples: Q̂(s, f(s, ξ_j; θ)) for reparameterised samples, [M, B]
      (gradients flow into θ through the actions).
    kl_to_prior: KL(π_θ(·|s)‖π_prior(·|s)), [B].
    eta: the Lagrange multiplier η > 0.
  Returns:
    policy loss −E[Q] + η KL (for θ), and the dual loss η (ε − KL) (for η).
  """
  mean_kl = tf.reduce_mean(kl_to_prior)
  policy_loss = (-tf.reduce_mean(q_of_samples)
                 + tf.stop_gradient(eta) * mean_kl)
  dual_loss = eta * (epsilon - tf.stop_gradient(mean_kl))
  return policy_loss, dual_loss


def soft_clipped_max_target(next_q: tf.Tensor, reward: tf.Tensor,
                            discount: tf.Tensor, gamma: float,
                            mixing: float) -> tf.Tensor:
  """BCQ's target (Fujimoto et al. 2019, eq. 13), BEAR's with an ensemble:
  r + γ d max_j [λ min_k Q_k(s', a_j) + (1 − λ) max_k Q_k(s', a_j)].

  Args:
    next_q: Q_k(s', a_j) of K target critics at n sampled next actions a_j,
      [K, n, T].
    reward, discount: r and the environment's discount d, [T].
    mixing: λ (1: clipped double Q, the minimum alone).
  Returns:
    the target, [T], no gradient.
  """
  mixed = (mixing * tf.reduce_min(next_q, axis=0)
           + (1. - mixing) * tf.reduce_max(next_q, axis=0))  # [n, T]
  return tf.stop_gradient(
      reward + gamma * discount * tf.reduce_max(mixed, axis=0))


def critic_loss(q_values, target: tf.Tensor) -> tf.Tensor:
  """Σ_k mean (Q_k(s, a) − y)² over critics Q_k, each [T], and a target y,
  [T] (BCQ's Algorithm 1; BEAR's)."""
  return tf.add_n([tf.reduce_mean(tf.square(q - target)) for q in q_values])


def detached(distribution):
  """A diagonal Gaussian with `distribution`'s mean and stddev, through
  which no gradient flows (a fixed prior to constrain a policy to)."""
  return tfp.distributions.MultivariateNormalDiag(
      tf.stop_gradient(distribution.mean()),
      tf.stop_gradient(distribution.stddev()))


class Transitions(NamedTuple):
  """The transitions of a batch of B snippets of N rows, T = B·(N − 1).

  A snippet of N rows holds N − 1 transitions: rows 0 … N − 2 have a next
  state inside the snippet. (Row N − 1 may be an episode's last state, whose
  action is a zero placeholder.)
  """
  states: tf.Tensor  # s_t, [T, O]
  actions: tf.Tensor  # a_t, [T, A]
  rewards: Optional[tf.Tensor]  # r_t, [T]; None if the batch has none
  discounts: Optional[tf.Tensor]  # d_t, [T]; None if the batch has none
  next_states: tf.Tensor  # s_{t+1}, [T, O]
  # The rows' behaviour tag indices, [T] (datasets/replay.py); None if the
  # batch has none.
  behaviours: Optional[tf.Tensor] = None


def flatten_snippets(x: tf.Tensor) -> tf.Tensor:
  """[B, N, ...] → [B·N, ...], each snippet's rows in order."""
  return tf.reshape(x, [-1] + list(x.shape[2:]))


def snippet_transitions(batch: Mapping[str, tf.Tensor]) -> Transitions:
  """The transitions of a batch of snippets (dict of [B, N, ...] tensors).

  A behaviour model's batch may hold only 'observation' and 'action'.
  """
  observation = batch['observation']
  def of_rows(x):  # rows 0 … N − 2, the transitions' own
    return None if x is None else flatten_snippets(x[:, :-1])
  return Transitions(
      states=of_rows(observation), actions=of_rows(batch['action']),
      rewards=of_rows(batch.get('reward')),
      discounts=of_rows(batch.get('discount')),
      next_states=flatten_snippets(observation[:, 1:]),
      behaviours=of_rows(batch.get('behaviour')))


def per_behaviour_means(values: tf.Tensor, behaviours: tf.Tensor,
                        num_tags: int) -> tf.Tensor:
  """The mean of `values` [R] over the rows of each behaviour tag, [K].

  Rows whose index is outside 0 … K − 1 (−1: no dataset tag) count for no
  tag; a tag without rows in the batch gets 0 (not NaN: a learner stops on
  non-finite metrics).
  """
  one_hot = tf.one_hot(behaviours, num_tags, dtype=values.dtype)  # [R, K]
  sums = tf.linalg.matvec(one_hot, values, transpose_a=True)
  return tf.math.divide_no_nan(sums, tf.reduce_sum(one_hot, axis=0))
