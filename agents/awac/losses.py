"""AWAC's own losses (AWAC paper, eq. 3; rlkit's weight decay).

Written as functions of tensors so tests can check them against NumPy. The
actor's eq. 10 (Z(s) dropped, §5), a maximum likelihood weighted by exp(A/λ),
is made of the losses it shares with the ABM prior and AWR (agents/losses.py).
"""

import tensorflow as tf

from abmrl.agents import losses as shared_losses


def twin_td_loss(q1: tf.Tensor, q2: tf.Tensor, reward: tf.Tensor,
                 discount: tf.Tensor, next_q1: tf.Tensor, next_q2: tf.Tensor,
                 gamma: float) -> tf.Tensor:
  """Eq. 3 with TD3's twin critics: y = r + γ d min(Q1', Q2')(s', a'),
  a' ~ π(·|s'); the loss is the sum of both critics' mean squared errors.

  Args: every tensor [T]; next_q* are the target critics at (s', a').
  """
  target = tf.stop_gradient(
      reward + gamma * discount * tf.minimum(next_q1, next_q2))
  return shared_losses.critic_loss([q1, q2], target)


def l2_penalty(variables, coefficient: float) -> tf.Tensor:
  """coefficient/2 · Σ‖w‖²: torch's Adam(weight_decay=c) adds c·w to the
  gradient, which is this penalty's gradient (rlkit's policy weight decay)."""
  return 0.5 * coefficient * tf.add_n([tf.reduce_sum(tf.square(v))
                                       for v in variables])
