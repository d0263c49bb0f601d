"""BEAR's own loss: the maximum mean discrepancy (Kumar et al. 2019, §4;
Gretton et al. 2012).

The policy's Lagrangian with either constraint, and the critics' target, are
shared (agents/losses.py: constrained_policy_loss, soft_clipped_max_target).
"""

import tensorflow as tf


def mmd(x: tf.Tensor, y: tf.Tensor, kernel: str, sigma: float) -> tf.Tensor:
  """MMD(x, y) = sqrt(E k(x, x') − 2 E k(x, y) + E k(y, y') + 1e-6) per
  state, from samples, the expectations over all pairs (the official
  code's biased estimate, with its square root).

  kernel: 'laplacian', k(x, y) = exp(−‖x − y‖₁ / 2σ), or 'gaussian',
  k(x, y) = exp(−‖x − y‖²₂ / 2σ) (the official code's bandwidths).

  Args:
    x: [n, B, A] samples of one distribution per state; y: [m, B, A].
  Returns:
    [B].
  """
  def mean_kernel(a, b):
    diff = a[:, None] - b[None]  # [n, m, B, A]
    if kernel == 'laplacian':
      distance = tf.reduce_sum(tf.abs(diff), axis=-1)
    elif kernel == 'gaussian':
      distance = tf.reduce_sum(tf.square(diff), axis=-1)
    else:
      raise ValueError(f'unknown MMD kernel {kernel!r}: laplacian or gaussian')
    return tf.reduce_mean(tf.exp(-distance / (2. * sigma)), axis=[0, 1])
  return tf.sqrt(mean_kernel(x, x) - 2. * mean_kernel(x, y)
                 + mean_kernel(y, y) + 1e-6)
