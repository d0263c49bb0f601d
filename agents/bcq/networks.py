"""BCQ's networks (Fujimoto et al. 2019, §4; ABM paper Table 3).

  Encoder        E(s, a) -> (μ, σ) of the latent z, [B, latent]
  Decoder        D(s, z) -> an action inside the bounds; z ~ N(0, 1), clipped
                 to ±latent_clip, when it samples
  Perturbation   ξ(s, a) -> clip(a + Φ·h·tanh(·), bounds), h the bounds' half
                 width
  BCQPolicy      n decoded, perturbed actions; the one of largest Q1

The MLPs are the project's (agents/networks.py:make_mlp, via
NetworkSpec.mlp), so every network sees the run's observation standardisation
and, in a multi-task environment, has per-task heads.
"""

from typing import Tuple

import numpy as np
import sonnet as snt
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


class _Bounded(snt.Module):
  """A module whose outputs lie in [minimum, maximum]."""

  def __init__(self, bounds: Tuple[np.ndarray, np.ndarray], name: str):
    super().__init__(name=name)
    low, high = (np.asarray(b, np.float32) for b in bounds)
    self._low, self._high = tf.constant(low), tf.constant(high)
    self._centre = tf.constant((high + low) / 2)
    self._half_width = tf.constant((high - low) / 2)


class Encoder(snt.Module):
  """(s, a) -> (μ, σ) of q(z|s, a); log σ clipped to [−4, 15] (official)."""

  def __init__(self, mlp: snt.Module, name: str = 'encoder'):
    super().__init__(name=name)
    self._mlp = mlp  # output 2·latent_size

  def __call__(self, observation, action) -> Tuple[tf.Tensor, tf.Tensor]:
    mean, log_std = tf.split(self._mlp(observation, action), 2, axis=-1)
    return mean, tf.exp(tf.clip_by_value(log_std, -4., 15.))


class Decoder(_Bounded):
  """(s, z) -> centre + h·tanh(mlp(s, z)), an action inside the bounds."""

  def __init__(self, mlp: snt.Module, latent_size: int, latent_clip: float,
               bounds, name: str = 'decoder'):
    super().__init__(bounds, name=name)
    self._mlp = mlp
    self.latent_size = latent_size
    self._latent_clip = latent_clip

  def __call__(self, observation, latent) -> tf.Tensor:
    return self._centre + self._half_width * tf.tanh(
        self._mlp(observation, latent))

  def sample(self, observation) -> tf.Tensor:
    """D(s, z), z ~ N(0, I) clipped to ±latent_clip: an action like the
    data's at s."""
    latent = tf.clip_by_value(
        tf.random.normal([tf.shape(observation)[0], self.latent_size]),
        -self._latent_clip, self._latent_clip)
    return self(observation, latent)


class Perturbation(_Bounded):
  """ξ_φ(s, a, Φ): the action moved by at most Φ·h per dimension, then
  clipped to the bounds."""

  def __init__(self, mlp: snt.Module, scale: float, bounds,
               name: str = 'perturbation'):
    super().__init__(bounds, name=name)
    self._mlp = mlp
    self._scale = scale

  def __call__(self, observation, action) -> tf.Tensor:
    return perturb(action, self._mlp(observation, action), self._scale,
                   self._low, self._high)


def perturb(action, output, scale: float, low, high) -> tf.Tensor:
  """clip(a + Φ·h·tanh(output), low, high), h = (high − low)/2."""
  half_width = (high - low) / 2
  return tf.clip_by_value(action + scale * half_width * tf.tanh(output),
                          low, high)


def perturbed_samples(observation, decoder: Decoder,
                      perturbation: snt.Module, critic: snt.Module,
                      num_samples: int) -> Tuple[tf.Tensor, tf.Tensor]:
  """n perturbed decoder samples per state and their Q: ([n, B, A], [n, B]).

  The decoder's samples carry no gradient (the perturbation and the critic
  are what the callers train or read)."""
  batch = tf.shape(observation)[0]
  tiled = tf.tile(observation, [num_samples, 1])  # [n·B, O], sample-major
  actions = perturbation(tiled, tf.stop_gradient(decoder.sample(tiled)))
  q = critic(tiled, actions)
  return (tf.reshape(actions, [num_samples, batch, -1]),
          tf.reshape(q, [num_samples, batch]))


class BCQPolicy(snt.Module):
  """s -> a point mass on argmax_j Q1(s, a_j) over n perturbed decoder
  samples a_j (BCQ's acting, Algorithm 1). As a distribution, so evaluators
  (its mean) and online actors (its sample) act with it as with a Gaussian
  policy; both take the same argmax."""

  def __init__(self, decoder: Decoder, perturbation: Perturbation,
               critic: snt.Module, num_samples: int, name: str = 'policy'):
    super().__init__(name=name)
    self.decoder = decoder
    self.perturbation = perturbation
    self.critic = critic
    self._num_samples = num_samples

  def __call__(self, observation) -> tfd.Distribution:
    actions, q = perturbed_samples(observation, self.decoder,
                                   self.perturbation, self.critic,
                                   self._num_samples)
    best = tf.argmax(q, axis=0, output_type=tf.int32)  # [B]
    chosen = tf.gather(tf.transpose(actions, [1, 0, 2]), best[:, None],
                       batch_dims=1)[:, 0]
    return tfd.Independent(tfd.Deterministic(chosen),
                           reinterpreted_batch_ndims=1)
