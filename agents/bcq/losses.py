"""BCQ's own losses (Fujimoto et al. 2019, §4 and Algorithm 1).

The critics' target, the soft clipped double-Q maximum over perturbed
samples, and their loss are shared with BEAR (agents/losses.py:
soft_clipped_max_target, critic_loss).
"""

from typing import Tuple

import tensorflow as tf


def vae_loss(reconstruction: tf.Tensor, actions: tf.Tensor, mean: tf.Tensor,
             std: tf.Tensor, kl_weight: float
             ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """The conditional VAE's negative ELBO (BCQ §4.1):
  mean (D(s, z) − a)² + kl_weight · KL(N(μ, σ²) ‖ N(0, I)), z ~ N(μ, σ²).

  Both terms are averaged over the batch and the dimensions, as the official
  code does (its KL is a mean over latent dimensions, not their sum), with
  its weight 0.5 on the KL.

  Args:
    reconstruction: D(s, z), [B, A]; actions: a, [B, A];
    mean, std: the encoder's μ, σ, [B, latent].
  Returns:
    (loss, reconstruction term, KL term).
  """
  reconstruction_loss = tf.reduce_mean(tf.square(reconstruction - actions))
  kl = -0.5 * tf.reduce_mean(1. + tf.math.log(tf.square(std))
                             - tf.square(mean) - tf.square(std))
  return reconstruction_loss + kl_weight * kl, reconstruction_loss, kl


def perturbation_loss(q_of_perturbed: tf.Tensor) -> tf.Tensor:
  """The perturbation's objective (BCQ §4.1, DDPG-style):
  max_φ E_s[Q1(s, ξ_φ(s, a, Φ))], a ~ D(s, z), as a loss −mean Q1."""
  return -tf.reduce_mean(q_of_perturbed)
