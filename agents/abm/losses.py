"""The objectives of "Keep Doing What Worked" (ABM paper §3, Appendix B).

Shapes: B states (transitions of a batch of snippets, flattened), M action
samples per state, A action dimensions, T transitions per snippet.

The prior's loss (eq. 3 / eq. 4, weighted maximum likelihood) and eq. 4's
weights f are shared with the other families: agents/losses.py.
"""

from typing import Tuple

from acme.tf.losses import mpo as acme_mpo
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def policy_evaluation_td0(q: tf.Tensor, reward: tf.Tensor, discount: tf.Tensor,
                          next_value: tf.Tensor, gamma: float) -> tf.Tensor:
  """Eq. 1: mean (r + γ V̂(s') − Q̂(s, a))², V̂ from target networks.

  Args:
    q: Q̂(s_t, a_t; φ), [B].
    reward, discount: r_t and the environment's discount d_t, [B].
    next_value: V̂(s_{t+1}) = 1/M Σ_j Q̂(s_{t+1}, a_j; φ'), [B].
  """
  target = tf.stop_gradient(reward + gamma * discount * next_value)
  return 0.5 * tf.reduce_mean(tf.square(target - q))


def policy_evaluation_n_step(q: tf.Tensor, returns: tf.Tensor) -> tf.Tensor:
  """Eq. 1 with the snippet's return as the target (`policy_evaluation`
  'n_step', config.py): mean (R(τ_t:N) − Q̂(s_t, a_t))².

  Args:
    q: Q̂(s_t, a_t; φ), [B].
    returns: R(τ_t:N) (`n_step_returns`, bootstrapped from target
      networks), [B].
  """
  return 0.5 * tf.reduce_mean(tf.square(tf.stop_gradient(returns) - q))


def n_step_returns(reward: tf.Tensor, discount: tf.Tensor,
                   bootstrap_value: tf.Tensor, gamma: float) -> tf.Tensor:
  """Eq. 4's R(τ_t:N) for every t of a snippet.

  R(τ_t:N) = Σ_{j=t}^{N−1} γ^{j−t} r_j + γ^{N−t} V̂(s_N), with the
  environment's discounts d_j folded in, so an episode that terminates inside
  the snippet stops the bootstrap there.

  Args:
    reward, discount: [B, T], the snippet's transitions.
    bootstrap_value: V̂(s_N), [B], the value of the snippet's last state.
  Returns:
    [B, T].
  """
  returns = []
  value = bootstrap_value
  for t in reversed(range(reward.shape[1])):
    value = reward[:, t] + gamma * discount[:, t] * value
    returns.append(value)
  return tf.stack(returns[::-1], axis=1)


def mpo_temperature_dual(q_values: tf.Tensor, temperature: tf.Tensor,
                         epsilon: float) -> Tuple[tf.Tensor, tf.Tensor]:
  """Eq. 7–9: sample weights of π̂ ∝ π_prior exp(Q/η), and the dual g(η).

  Args:
    q_values: Q̂(s, a_j) for a_j ~ π_prior(·|s), [M, B].
    temperature: η > 0.
  Returns:
    weights [M, B] (softmax over the M samples: exp(Q/η)/Z), and the dual
    loss η ε + η mean_s log 1/M Σ_j exp(Q(s, a_j)/η) to minimise over η.
  """
  # Acme's helper computes exactly eq. 9 (averaged over states).
  return acme_mpo.compute_weights_and_temperature_loss(q_values, epsilon,
                                                       temperature)


def decoupled_trust_region(online: tfd.Distribution, target: tfd.Distribution
                           ) -> Tuple[tfd.Distribution, tfd.Distribution,
                                      tf.Tensor, tf.Tensor]:
  """Splits π_θ into a mean part and a covariance part (decoupled KLs).

  Returns (π with online mean and target stddev, π with target mean and
  online stddev, KL_μ(π_θ'‖·) [B], KL_Σ(π_θ'‖·) [B]).
  """
  online_mean, online_scale = online.mean(), online.stddev()
  target_mean, target_scale = target.mean(), target.stddev()
  fixed_stddev = tfd.Independent(tfd.Normal(online_mean, target_scale), 1)
  fixed_mean = tfd.Independent(tfd.Normal(target_mean, online_scale), 1)
  target = tfd.Independent(tfd.Normal(target_mean, target_scale), 1)
  return (fixed_stddev, fixed_mean, target.kl_divergence(fixed_stddev),
          target.kl_divergence(fixed_mean))


def mpo_weighted_maximum_likelihood(
    actions: tf.Tensor, weights: tf.Tensor, online: tfd.Distribution,
    target: tfd.Distribution, alpha_mean: tf.Tensor, alpha_stddev: tf.Tensor,
    epsilon_mean: float, epsilon_stddev: float):
  """Eq. 5 and 10: max Σ_j w_j log π_θ(a_j|s) s.t. KL(π_θ'‖π_θ) < ε_trust.

  The trust region is decoupled into a mean and a covariance constraint, each
  with its Lagrange multiplier α (Acme's helpers compute the penalties).

  Args:
    actions: a_j ~ π_prior(·|s), [M, B, A].
    weights: normalised exp(Q/η), [M, B].
    online, target: π_θ and π_θ' at s, batch [B].
  Returns:
    policy loss (for θ), dual loss (for α_μ, α_Σ), KL_μ [B], KL_Σ [B].
  """
  fixed_stddev, fixed_mean, kl_mean, kl_stddev = decoupled_trust_region(
      online, target)
  loss_mean = acme_mpo.compute_cross_entropy_loss(actions, weights,
                                                  fixed_stddev)
  loss_stddev = acme_mpo.compute_cross_entropy_loss(actions, weights,
                                                    fixed_mean)
  penalty_mean, dual_mean = acme_mpo.compute_parametric_kl_penalty_and_dual_loss(
      kl_mean, alpha_mean, epsilon_mean)
  penalty_stddev, dual_stddev = (
      acme_mpo.compute_parametric_kl_penalty_and_dual_loss(
          kl_stddev, alpha_stddev, epsilon_stddev))
  policy_loss = loss_mean + loss_stddev + penalty_mean + penalty_stddev
  return policy_loss, dual_mean + dual_stddev, kl_mean, kl_stddev
