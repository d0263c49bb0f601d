"""AWR's losses (AWR paper, Algorithm 1 and §3).

  value    min_V E[(R^λ(s, a) − V(s))²], R^λ the TD(λ) return
  policy   max_π E[log π(a|s) · min(exp((R^λ − V(s))/β), ω_max)]

The policy's weights and weighted maximum likelihood are the ones AWR
shares with the ABM prior and AWAC (agents/losses.py).
"""

from typing import Optional

import tensorflow as tf


def td_lambda_returns(reward: tf.Tensor, discount: tf.Tensor,
                      next_value: tf.Tensor, td_lambda: float, gamma: float,
                      valid: Optional[tf.Tensor] = None) -> tf.Tensor:
  """TD(λ) returns over whole episodes, computed backwards:

    R_t = r_t + γ d_t V(s_{t+1})                          at the last step
    R_t = r_t + γ d_t ((1 − λ) V(s_{t+1}) + λ R_{t+1})    before it

  d_t is 0 where the episode terminated (no bootstrap) and 1 at a time limit
  (the official code's rule: timeouts bootstrap with V of the last state).
  Episodes are padded to a common length; `valid` marks their transitions,
  and a transition followed by an invalid one is its episode's last.

  Args:
    reward, discount: r_t, d_t, [B, T].
    next_value: V(s_{t+1}), [B, T].
    valid: 1 on real transitions, [B, T] (None: all are).
  Returns:
    R^λ_t, [B, T] (no gradient; arbitrary where not valid).
  """
  reward, discount, next_value = (tf.stop_gradient(x) for x in
                                  (reward, discount, next_value))
  if valid is None:
    valid = tf.ones_like(reward)
  # 1 where the next transition continues the episode.
  continues = tf.concat([valid[:, 1:], tf.zeros_like(valid[:, :1])], axis=1)

  def backward(following, inputs):
    r, d, v, more = inputs
    blend = tf.where(more > 0, (1. - td_lambda) * v + td_lambda * following, v)
    return r + gamma * d * blend

  time_major = [tf.transpose(x) for x in (reward, discount, next_value,
                                          continues)]
  returns = tf.scan(backward, time_major, initializer=tf.zeros_like(
      reward[:, 0]), reverse=True)
  return tf.transpose(returns)


def value_loss(value: tf.Tensor, returns: tf.Tensor) -> tf.Tensor:
  """E[(R^λ − V(s))²]."""
  return tf.reduce_mean(tf.square(tf.stop_gradient(returns) - value))
