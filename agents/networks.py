"""Networks shared by every learner (ABM paper, Table 1).

Policy and prior: a 256-256 MLP torso (elu; layer norm, then tanh, on the
first layer: Acme's LayerNormMLP) and a diagonal Gaussian head with no tanh
on the mean and minimum variance 0.01 (so minimum standard deviation 0.1).
"""

from typing import Sequence

from acme.tf import networks as acme_networks
import numpy as np
import sonnet as snt
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

MIN_VARIANCE = 0.01


def make_gaussian_policy(action_size: int,
                         layer_sizes: Sequence[int] = (256, 256),
                         min_variance: float = MIN_VARIANCE,
                         init_scale: float = 0.7,
                         name: str = 'policy') -> snt.Module:
  """observation [B, O] -> MultivariateNormalDiag over actions [B, A]."""
  return snt.Sequential([
      acme_networks.LayerNormMLP(list(layer_sizes), activate_final=True),
      acme_networks.MultivariateNormalDiagHead(
          action_size, init_scale=init_scale,
          min_scale=float(np.sqrt(min_variance))),
  ], name=name)


class MeanAction(snt.Module):
  """Acts with the mean of a stochastic policy (for evaluation)."""

  def __init__(self, policy: snt.Module, name: str = 'mean_action'):
    super().__init__(name=name)
    self._policy = policy

  def __call__(self, observation: tf.Tensor) -> tf.Tensor:
    return self._policy(observation).mean()


def make_critic(layer_sizes: Sequence[int] = (256, 256, 256)) -> snt.Module:
  """(observation [B, O], action [B, A]) -> Q [B] (Table 1: 256-256-256)."""
  return acme_networks.CriticMultiplexer(
      critic_network=snt.Sequential([
          acme_networks.LayerNormMLP(list(layer_sizes), activate_final=True),
          acme_networks.NearZeroInitializedLinear(1),
          lambda q: tf.squeeze(q, axis=-1),
      ]))


def make_value_network(layer_sizes: Sequence[int] = (128, 64)) -> snt.Module:
  """observation [B, O] -> V [B] (AWR's state-value network)."""
  return snt.Sequential([
      acme_networks.LayerNormMLP(list(layer_sizes), activate_final=True),
      acme_networks.NearZeroInitializedLinear(1),
      lambda v: tf.squeeze(v, axis=-1),
  ], name='value')
