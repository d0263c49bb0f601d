"""MABE's dynamics-and-reward model: an ensemble of Gaussian MLPs (MOPO's).

Each member maps (s, a) to a diagonal Gaussian over [r, Δs] (s' = s + Δs):
4 hidden layers of 200 swish units and one output layer giving the mean and
the log-variance, which is soft-bounded between learned limits (PETS and
MOPO: `max_logvar − softplus(max_logvar − ·)`, then the same from below).

The members are one module with stacked weights [E, in, out], so the whole
ensemble is one batched matmul per layer rather than E small ones. Inputs
are standardised by statistics the model stage sets once from the data
(MOPO fits a scaler the same way); the elite members' indices are a
variable too, so a rollout node that fetches the model's variables has
everything it needs.
"""

from typing import Sequence, Tuple

import numpy as np
import sonnet as snt
import tensorflow as tf
import tensorflow_probability as tfp

tfd, tfb = tfp.distributions, tfp.bijectors


class GaussianEnsemble(snt.Module):
  """(inputs [B, I] or [E, B, I]) -> (mean, log-variance), each [E, B, D]."""

  def __init__(self, input_size: int, output_size: int, ensemble_size: int,
               num_elites: int, layer_sizes: Sequence[int] = (200,) * 4,
               name: str = 'model'):
    super().__init__(name=name)
    self.ensemble_size = ensemble_size
    self.output_size = output_size
    sizes = [input_size] + list(layer_sizes) + [2 * output_size]
    self.weights, self.biases = [], []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
      # MOPO's initialiser: truncated normal, std 1 / (2 √in).
      self.weights.append(tf.Variable(tf.random.truncated_normal(
          [ensemble_size, n_in, n_out], stddev=1. / (2. * np.sqrt(n_in))),
          name=f'w{k}'))
      self.biases.append(tf.Variable(tf.zeros([ensemble_size, 1, n_out]),
                                     name=f'b{k}'))
    self.max_logvar = tf.Variable(tf.fill([output_size], 0.5),
                                  name='max_logvar')
    self.min_logvar = tf.Variable(tf.fill([output_size], -10.),
                                  name='min_logvar')
    self.input_mean = tf.Variable(tf.zeros([input_size]), trainable=False,
                                  name='input_mean')
    self.input_std = tf.Variable(tf.ones([input_size]), trainable=False,
                                 name='input_std')
    self.elites = tf.Variable(tf.range(num_elites), trainable=False,
                              name='elites')

  def __call__(self, inputs: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    x = (inputs - self.input_mean) / self.input_std
    if x.shape.rank == 2:  # every member sees the same rows
      x = tf.tile(x[None], [self.ensemble_size, 1, 1])
    for w, b in zip(self.weights[:-1], self.biases[:-1]):
      x = tf.nn.silu(tf.matmul(x, w) + b)  # swish
    out = tf.matmul(x, self.weights[-1]) + self.biases[-1]
    mean, logvar = tf.split(out, 2, axis=-1)
    logvar = self.max_logvar - tf.nn.softplus(self.max_logvar - logvar)
    logvar = self.min_logvar + tf.nn.softplus(logvar - self.min_logvar)
    return mean, logvar

  def layer_weights(self):
    """The weight matrices, input layer first (for weight decay)."""
    return list(self.weights)


def model_inputs(states: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
  """[s, a], the model's input."""
  return tf.concat([states, actions], axis=-1)


def model_targets(states, rewards, next_states) -> tf.Tensor:
  """[r, s' − s], what the model predicts."""
  return tf.concat([rewards[:, None], next_states - states], axis=-1)


class SquashedGaussian(tfd.TransformedDistribution):
  """A Gaussian over u squashed into the action bounds, a = c + h·tanh(u)
  (SAC's policy, MOPO's: softlearning's `squash=True`). Its mean is the
  squashed Gaussian mean, the deterministic action SAC evaluates with."""

  def _mean(self):
    return self.bijector.forward(self.distribution.mean())


class SquashedGaussianPolicy(snt.Module):
  """observation -> SquashedGaussian: the project's Gaussian policy network,
  its samples squashed into [low, high] (MOPO mode's policy).

  Why MOPO needs it: SAC's entropy target, E[log π] ≤ |A|, binds for a
  squashed policy whose actions saturate (the tanh's Jacobian makes log π
  grow), and so keeps it from becoming bang-bang. For the unsquashed
  Gaussian clipped at the bounds, log π only falls as the std grows: the
  target never binds, β falls to 0, and the std grows without limit
  (docs/results/mabe_cheetah_run.md).
  """

  def __init__(self, policy: snt.Module, low: np.ndarray, high: np.ndarray,
               name: str = 'squashed_policy'):
    super().__init__(name=name)
    self._policy = policy
    low, high = (np.asarray(b, np.float32) for b in (low, high))
    self._bijector = tfb.Chain([tfb.Shift((high + low) / 2),
                                tfb.Scale((high - low) / 2), tfb.Tanh()])

  def __call__(self, observation: tf.Tensor) -> SquashedGaussian:
    return SquashedGaussian(self._policy(observation), self._bijector)
