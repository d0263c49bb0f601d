"""AWR's losses (AWR paper, Algorithm 1 and §3).

  value    min_V E[(R^λ(s, a) − V(s))²], R^λ the TD(λ) return
  policy   max_π E[log π(a|s) · min(exp((R^λ − V(s))/β), ω_max)]

The policy's weighted maximum likelihood is agents/bm/losses.py's
`behaviour_model_loss` with these weights.
"""

import tensorflow as tf


def td_lambda_returns(reward: tf.Tensor, discount: tf.Tensor,
                      next_value: tf.Tensor, td_lambda: float,
                      gamma: float) -> tf.Tensor:
  """TD(λ) returns over the transitions of snippets, computed backwards:

    R_{T−1} = r_{T−1} + γ d_{T−1} V(s_T)
    R_t     = r_t + γ d_t ((1 − λ) V(s_{t+1}) + λ R_{t+1})

  d_t is 0 where the episode terminated (no bootstrap) and 1 at a time limit
  (the official code's rule: timeouts bootstrap). A snippet never crosses an
  episode, and one that ends before its episode does bootstraps with V(s_T):
  the λ-return truncated at the snippet's end.

  Args:
    reward, discount: r_t, d_t, [B, T].
    next_value: V(s_{t+1}), [B, T].
  Returns:
    R^λ_t, [B, T] (no gradient).
  """
  reward, discount, next_value = (tf.stop_gradient(x) for x in
                                  (reward, discount, next_value))
  steps = reward.shape[1]
  following = next_value[:, -1]
  returns = []
  for t in reversed(range(steps)):
    blend = next_value[:, t] if t == steps - 1 else (
        (1. - td_lambda) * next_value[:, t] + td_lambda * following)
    following = reward[:, t] + gamma * discount[:, t] * blend
    returns.append(following)
  return tf.stack(returns[::-1], axis=1)


def advantage_weights(advantage: tf.Tensor, temperature: float,
                      max_weight: float,
                      normalisation: str = 'none') -> tf.Tensor:
  """min(exp(A/β), ω_max); with 'batch', A is first normalised over the batch."""
  advantage = tf.stop_gradient(advantage)
  if normalisation == 'batch':
    mean, variance = tf.nn.moments(advantage, axes=[0])
    advantage = (advantage - mean) / (tf.sqrt(variance) + 1e-5)
  elif normalisation != 'none':
    raise ValueError(f'unknown advantage normalisation {normalisation!r}')
  return tf.minimum(tf.exp(advantage / temperature), max_weight)


def value_loss(value: tf.Tensor, returns: tf.Tensor) -> tf.Tensor:
  """E[(R^λ − V(s))²]."""
  return tf.reduce_mean(tf.square(tf.stop_gradient(returns) - value))
