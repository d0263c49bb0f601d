"""Model-rollout nodes: the learner's policy acting in its learned model.

MABE and MOPO train their policy mostly on transitions of a learned model
(MBPO's Dyna loop): h-step rollouts that start from states of the data.
Here that loop is a node of its own, so more rollout nodes give the learner
more model data without touching it (on a cluster they spread over the
hosts, as restorers do). Each round, a node

  1. fetches the policy and the model ensemble from the learner (every
     `variable_update_period` rounds);
  2. takes M start states: the first rows of a batch of snippets sampled
     from the restorers' table;
  3. steps all M rollouts h times: a ~ π(·|s) clipped to the action bounds;
     each elite member predicts a Gaussian over [r, Δs]; one elite, drawn
     per state and step, gives the sample (MOPO); r̃ = r − ξ max_i ‖σ_i‖
     over the elites (MOPO's penalty, ξ = 0: none);
  4. writes each transition (s, a, r̃, s'), discount 1 (model rollouts
     never terminate), as a 2-row snippet into the model table through the
     SnippetWriter (whose rate limiter paces the node to the learner).

A cut: a transition whose next state or reward is not finite, or whose next
state leaves the data's range (per dimension, the min and max of every
start state this node has seen, widened by `state_margin` of that range on
each side) is not written, and its rollout ends there. Cuts are counted
(`model_rollouts_cut`) and logged.
"""

import time
from typing import Callable, Iterator, Optional, Tuple

from acme.tf import utils as tf2_utils
from acme.tf import variable_utils
from acme.utils import loggers
import numpy as np
import reverb
import sonnet as snt
import tensorflow as tf

from abmrl.datasets import replay as replay_lib


class _Transitions:
  """n model transitions as n 2-row snippets, interleaved (s_i, s'_i), in
  the layout SnippetWriter.add slices (an Episode's fields)."""

  def __init__(self, states, actions, rewards, next_states):
    n = len(states)
    self.observation = np.empty((2 * n,) + states.shape[1:], np.float32)
    self.observation[0::2], self.observation[1::2] = states, next_states
    self.action = np.zeros((2 * n,) + actions.shape[1:], np.float32)
    self.action[0::2] = actions
    self.reward = np.zeros(2 * n, np.float32)
    self.reward[0::2] = rewards
    self.discount = np.zeros(2 * n, np.float32)
    self.discount[0::2] = 1.


class ModelRollouts:
  """Writes rollouts of the learner's policy in its model, until stopped."""

  def __init__(self,
               model: snt.Module,
               policy_network: snt.Module,
               variable_source,
               start_states: Iterator[np.ndarray],
               replay: reverb.Client,
               table: str,
               observation_size: int,
               action_bounds: Tuple[np.ndarray, np.ndarray],
               rollout_length: int,
               rollout_batch: int,
               penalty: float,
               state_margin: float = 0.1,
               snippets_per_item: int = 1,
               variable_update_period: int = 1,
               counter=None,
               logger: Optional[loggers.Logger] = None,
               should_start: Optional[Callable[[], bool]] = None,
               should_stop: Optional[Callable[[], bool]] = None):
    """`start_states`: batches of [M, O] states of the data; `model`: a
    GaussianEnsemble (agents/mabe/networks.py) of inputs [s, a] and outputs
    [r, Δs] with an `elites` variable; `should_start`: polled once a second
    before the first round (the learner's RL stage)."""
    self._start_states = start_states
    self._length = rollout_length
    self._batch = rollout_batch
    self._margin = state_margin
    self._period = variable_update_period
    self._counter = counter
    self._logger = logger or loggers.make_default_logger('rollout')
    self._should_start = should_start or (lambda: True)
    self._should_stop = should_stop or (lambda: False)
    self._writer = replay_lib.SnippetWriter(
        replay, table, 2, snippets_per_item, should_stop=self._should_stop)
    tf2_utils.create_variables(policy_network, [
        tf.TensorSpec([observation_size], tf.float32)])
    self._variable_client = variable_utils.VariableClient(
        variable_source, {'policy': policy_network.variables,
                          'model': model.variables})
    low, high = (tf.constant(b, tf.float32) for b in action_bounds)

    def step(states):
      actions = tf.clip_by_value(policy_network(states).sample(), low, high)
      mean, logvar = model(tf.concat([states, actions], axis=-1))  # [E,M,D]
      mean = tf.gather(mean, model.elites)
      std = tf.exp(0.5 * tf.gather(logvar, model.elites))
      samples = mean + std * tf.random.normal(tf.shape(mean))
      rows = tf.shape(states)[0]
      member = tf.random.uniform([rows], 0, tf.shape(mean)[0], tf.int32)
      chosen = tf.gather(tf.transpose(samples, [1, 0, 2]), member,
                         batch_dims=1)  # [M, D]
      uncertainty = tf.reduce_max(tf.norm(std, axis=-1), axis=0)
      return (actions, chosen[:, 0] - penalty * uncertainty,
              states + chosen[:, 1:], uncertainty, chosen[:, 0])

    # One shape, traced once (cut rollouts keep their rows, masked).
    self._step = tf.function(step, jit_compile=True, autograph=False,
                             input_signature=[tf.TensorSpec(
                                 [rollout_batch, observation_size],
                                 tf.float32)])
    self._low = self._high = None
    self.rounds = self.transitions = self.cut = 0
    self._warned = False

  def _in_range(self, states: np.ndarray) -> np.ndarray:
    width = (self._high - self._low) * self._margin
    return np.all((states >= self._low - width)
                  & (states <= self._high + width), axis=-1)

  def _starts(self) -> np.ndarray:
    states = np.asarray(next(self._start_states), np.float32)[:self._batch]
    low, high = states.min(axis=0), states.max(axis=0)
    self._low = low if self._low is None else np.minimum(self._low, low)
    self._high = high if self._high is None else np.maximum(self._high, high)
    return states

  def run(self) -> None:
    while not self._should_stop() and not self._should_start():
      time.sleep(1.0)
    while not self._should_stop():
      if not self.run_round():
        return

  def run_round(self) -> bool:
    """One round of M rollouts of h steps; False if the program stopped."""
    started = time.time()
    if self.rounds % self._period == 0:
      self._variable_client.update_and_wait()
    states = self._starts()
    alive = np.ones(len(states), bool)
    written = cut = 0
    penalties, rewards = [], []
    for _ in range(self._length):
      actions, reward, next_states, uncertainty, raw = (
          x.numpy() for x in self._step(tf.constant(states)))
      valid = (np.isfinite(next_states).all(axis=-1) & np.isfinite(reward)
               & self._in_range(next_states))
      cut += int(np.sum(alive & ~valid))
      keep = alive & valid
      if keep.any():
        batch = _Transitions(states[keep], actions[keep], reward[keep],
                             next_states[keep])
        for i in range(int(keep.sum())):
          if not self._writer.add(batch, 2 * i):
            return False
        written += int(keep.sum())
        penalties.append(uncertainty[keep])
        rewards.append(raw[keep])
      alive = keep
      if not alive.any():
        break
      states = np.where(alive[:, None], next_states, states)
    self.rounds += 1
    self.transitions += written
    self.cut += cut
    if not written:
      # Nothing for the rate limiter to pace: wait instead of sampling
      # start states in a tight loop while the model leaves the data.
      if not self._warned:
        print(f'[rollout] every rollout of round {self.rounds} was cut at '
              'its first step (the model leaves the data\'s range); see '
              'model_rollouts_cut in logs/rollout_*', flush=True)
        self._warned = True
      time.sleep(1.0)
    if self._counter is not None and not self._should_stop():
      self._counter.increment(model_transitions=written,
                              model_rollouts_cut=cut)
    seconds = time.time() - started
    self._logger.write({
        'rollout_rounds': self.rounds, 'model_transitions': self.transitions,
        'model_rollouts_cut': self.cut,
        'round_transitions': written, 'round_cut': cut,
        'uncertainty_mean': float(np.mean(np.concatenate(penalties)))
                            if penalties else float('nan'),
        'model_reward_mean': float(np.mean(np.concatenate(rewards)))
                             if rewards else float('nan'),
        'transitions_per_second': written / max(seconds, 1e-9)})
    return True
