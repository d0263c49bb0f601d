"""MABE's equations (Cang et al. 2021; signs as corrected in the digest,
NOTES_awac_mabe_awr.md §2.1). Shapes: E members, T transitions, D = 1 + O
model outputs."""

import numpy as np
import tensorflow as tf


def gaussian_nll(mean: tf.Tensor, logvar: tf.Tensor,
                 target: tf.Tensor) -> tf.Tensor:
  """Eq. 2 with learned variance, constants dropped:
  Σ_members mean_{t,d} [(μ − y)² e^{−log σ²} + log σ²] (MOPO's form).

  Args:
    mean, logvar: [E, T, D]; target: [T, D] or [E, T, D].
  Returns:
    scalar loss.
  """
  error = tf.square(mean - target) * tf.exp(-logvar) + logvar
  return tf.reduce_sum(tf.reduce_mean(error, axis=[1, 2]))


def logvar_bound_loss(max_logvar: tf.Tensor, min_logvar: tf.Tensor,
                      coefficient: float = 0.01) -> tf.Tensor:
  """MOPO's pull of the learned log-variance limits toward each other."""
  return coefficient * (tf.reduce_sum(max_logvar) - tf.reduce_sum(min_logvar))


def weight_decay(weights, decays) -> tf.Tensor:
  """Σ_l decay_l ‖W_l‖²/2 (MOPO's per-layer L2), over every member."""
  return tf.add_n([d * tf.nn.l2_loss(w) for w, d in zip(weights, decays)])


def member_errors(mean: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  """Each member's mean squared error of its mean, [E] (MOPO's validation
  error, by which elites are chosen)."""
  return tf.reduce_mean(tf.square(mean - target), axis=[1, 2])


def select_elites(errors: np.ndarray, num_elites: int) -> np.ndarray:
  """The `num_elites` members of least validation error, best first."""
  return np.argsort(np.asarray(errors), kind='stable')[:num_elites]


def improved_members(errors: np.ndarray, best: np.ndarray,
                     threshold: float = 0.01) -> np.ndarray:
  """MOPO's early-stopping test: members whose validation error fell by
  more than `threshold` of their best so far (any error improves on none:
  a best of inf), [E] bool."""
  best, errors = np.asarray(best, np.float64), np.asarray(errors, np.float64)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.isinf(best) | ((best - errors) / np.abs(best) > threshold)


def prior_weights(q: tf.Tensor, *, normalisation: str, discount: float,
                  max_reward: tf.Tensor, max_q: tf.Tensor,
                  temperature: float) -> tf.Tensor:
  """Eq. 5's exp(ω/η), no gradient:
    'reward'  ω = Q(s, a) (1 − γ) / r_max   (eq. 5; r_max the data's)
    'max_q'   ω = Q(s, a) / max Q           (App. C.1; max over the data)
  """
  q = tf.stop_gradient(q)
  if normalisation == 'reward':
    omega = q * (1. - discount) / max_reward
  elif normalisation == 'max_q':
    omega = q / max_q
  else:
    raise ValueError(f'unknown prior normalisation {normalisation!r}')
  return tf.exp(omega / temperature)


def regularised_target(reward: tf.Tensor, discount: tf.Tensor, gamma: float,
                       next_q: tf.Tensor, beta: tf.Tensor,
                       next_regulariser: tf.Tensor) -> tf.Tensor:
  """Algorithm 1's target, no gradient:
  r + γ d [min_k Q̄_k(s', a') − β KL(π‖p_α)(s')], a' ~ π(·|s').

  In MOPO mode the regulariser is log π(a'|s') (SAC's entropy term).

  Args:
    reward, discount: [T]; next_q: [K, T] of the target critics at a';
    next_regulariser: KL(π‖p_α)(s') (or log π(a'|s')), [T].
  """
  soft_value = tf.reduce_min(next_q, axis=0) - beta * next_regulariser
  return tf.stop_gradient(reward + gamma * discount * soft_value)


def beta_step(beta: float, mean_kl: float, delta: float,
              learning_rate: float) -> float:
  """The corrected dual ascent of Algorithm 1 (its printed sign would lower
  β when KL > δ): β ← max(0, β + λ_β (E[KL] − δ)). Written for the tests;
  the learner takes this gradient step with Adam, through
  agents/losses.py:constrained_policy_loss's dual loss β (δ − E[KL])."""
  return max(0., beta + learning_rate * (mean_kl - delta))


def real_batch_size(batch_size: int, real_fraction: float,
                    snippets_per_item: int) -> int:
  """Snippets of each RL batch from the data's table: the fraction, rounded
  to whole Reverb items (at least one); the rest come from the model's."""
  k = snippets_per_item
  return min(batch_size - k,
             max(k, int(round(real_fraction * batch_size / k)) * k))
