"""The behaviour-model loss (ABM paper, eq. 3)."""

from typing import Optional

import tensorflow as tf


def transitions_of_snippets(observation: tf.Tensor, action: tf.Tensor):
  """The states and actions of a snippet's transitions.

  A snippet of N rows holds N − 1 transitions: rows 0 … N − 2 have a next
  state inside the snippet. (Row N − 1 may be an episode's last state, whose
  action is a zero placeholder.)

  Args:
    observation: [B, N, O]
    action: [B, N, A]
  Returns:
    states [B·(N−1), O], actions [B·(N−1), A]
  """
  states = observation[:, :-1]
  actions = action[:, :-1]
  return (tf.reshape(states, [-1, states.shape[-1]]),
          tf.reshape(actions, [-1, actions.shape[-1]]))


def behaviour_model_loss(policy_distribution, actions: tf.Tensor,
                         weights: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Eq. 3: −E_τ∼D[Σ_t log π_bm(a_t|s_t)], averaged over transitions.

  With `weights` w_t it is eq. 4's −E[Σ_t log π_abm(a_t|s_t) w_t] (the ABM
  prior, w_t = f(R(τ_t:N) − V̂(s_t))).

  Args:
    policy_distribution: π(·|s_t) for a batch of states, batch shape [T].
    actions: a_t, [T, A].
    weights: optional w_t, [T] (no gradient flows into them).
  Returns:
    scalar loss.
  """
  log_prob = policy_distribution.log_prob(actions)
  if weights is not None:
    log_prob *= tf.stop_gradient(weights)
  return -tf.reduce_mean(log_prob)
