"""The MABE learner (Cang et al. 2021, Algorithm 1), in three stages:

  1 model   the dynamics-and-reward ensemble by Gaussian NLL (eq. 2), each
            member on its own bootstrap of the batch; validation error per
            member on held-out episodes every `model_eval_every` steps,
            MOPO's early stopping, each member's best weights kept, the
            `elites` best members chosen.
  2 prior   Q of the data by TD, r + γ d E_{a'~π_b}[Q̄(s', a')] with π_b the
            unweighted behaviour model fit alongside (expected SARSA: the
            data's own next action is not in a 2-row snippet's last row);
            then the prior by weighted maximum likelihood with exp(ω/η)
            (eq. 5), early-stopped on the held-out episodes' weighted NLL.
            With `weighted_prior` false it is eq. 3's flat prior (no Q).
  3 RL      SAC-style twin critics and a Gaussian policy on batches of
            real and model transitions (the rollout nodes'):
              critics  Q_k → r + γ d [min_k Q̄_k(s', a') − β KL(π‖p_α)(s')]
              policy   min E_s[β KL(π‖p_α)(s) − min_k Q_k(s, ã)], ã ~ π
              β        dual ascent toward E[KL] = δ (Alg. 1, sign corrected)
            With `use_prior` false (MOPO) the KL is log π(a|s) of a
            tanh-squashed policy: SAC's entropy, its target −|A|.

Stages 1 and 2 do not count as learner steps: `learner_steps` (and so the
evaluators' schedule and --steps) are stage 3's. Each stage has its own
checkpoint, <run_dir>/checkpoints/{model,prior}, with a state.json saying
whether it finished: a rerun reuses a finished stage, resumes an unfinished
one, and `model_from` / `prior_from` take a finished stage of another run.

MABE's policy is the project's Gaussian (no tanh), so KL(π‖p_α) to the
Gaussian prior is in closed form (a squashed policy would need a sample
estimate). MOPO's is squashed into the action bounds by tanh, as MOPO's and
SAC's are (networks.SquashedGaussianPolicy says why its entropy target
needs that). A sampled Gaussian action reaches a critic clipped to the
action bounds, as the environment and the rollout nodes apply it (Acme's
MPO clips the same way, its ClipToSpec): the critics are fit only on
actions inside the bounds and would otherwise be asked about actions
outside them (docs/results/mabe_cheetah_run.md). The clip is here, not in
the critic every agent shares (agents/networks.py), whose change would
alter every other agent's results unmeasured.
"""

import copy
import json
import os
import time
from typing import Callable, Dict, Iterator, Optional, Tuple

from acme.tf import utils as tf2_utils
from acme.utils import counting
from acme.utils import loggers
import numpy as np
import sonnet as snt
import tensorflow as tf

from abmrl.agents import base
from abmrl.agents import loggers as run_loggers
from abmrl.agents import losses as shared_losses
from abmrl.agents.mabe import config as config_lib
from abmrl.agents.mabe import losses
from abmrl.agents.mabe import networks

# What the learner serves under 'stage' (rollout nodes wait for RL).
MODEL_STAGE, PRIOR_STAGE, RL_STAGE = 0, 1, 2
_INPUT_STATS_BATCHES = 20  # batches the model's input statistics come from


class _Stopped(Exception):
  """The program asked the learner to stop during a stage."""


class Stage:
  """A stage's variables, checkpoint and state.json, under
  <run_dir>/checkpoints/<name> (None: nothing is saved)."""

  def __init__(self, name: str, run_dir: Optional[str], objects):
    self.name = name
    self.directory = (os.path.join(run_dir, 'checkpoints', name)
                      if run_dir else None)
    self.steps = tf.Variable(0, dtype=tf.int64, trainable=False)
    self._objects = dict(objects, steps=self.steps)
    self._checkpoint = tf.train.Checkpoint(**self._objects)
    self.info: Dict[str, object] = {}

  @staticmethod
  def read_state(directory: str) -> Dict[str, object]:
    try:
      with open(os.path.join(directory, base.STATE_FILE)) as f:
        return json.load(f)
    except (OSError, ValueError):
      return {}

  def restore(self, directory: Optional[str] = None) -> Dict[str, object]:
    """Restores the stage's latest checkpoint (of this run, or of
    `directory`); its state ({} without one)."""
    directory = directory or self.directory
    path = directory and tf.train.latest_checkpoint(directory)
    if not path:
      return {}
    self._checkpoint.restore(path).expect_partial()
    state = self.read_state(directory)
    self.info = dict(state.get('info', {}))
    return state

  def variables(self):
    found = []
    for saved in self._objects.values():
      found.extend([saved] if isinstance(saved, tf.Variable)
                   else getattr(saved, 'variables', ()))
    return [v for v in found if v.dtype.is_floating]

  def save(self, finished: bool) -> None:
    if self.directory is None:
      return
    if not all(np.all(np.isfinite(v.numpy())) for v in self.variables()):
      raise base.NonFiniteLoss(f'a variable of the {self.name} stage became '
                               'non-finite; its checkpoint was not saved')
    os.makedirs(self.directory, exist_ok=True)
    manager = tf.train.CheckpointManager(self._checkpoint, self.directory,
                                         max_to_keep=1)
    manager.save()
    path = os.path.join(self.directory, base.STATE_FILE)
    with open(path + '.tmp', 'w') as f:
      json.dump(dict(steps=int(self.steps.numpy()), finished=finished,
                     info=self.info), f)
    os.replace(path + '.tmp', path)


def _polyak(pairs, rate: float) -> None:
  for source, target in pairs:
    for s, t in zip(source.variables, target.variables):
      t.assign(rate * s + (1. - rate) * t)


class _BestWeights:
  """Each member's (or the whole network's) best weights so far."""

  def __init__(self, variables, per_member: bool):
    self._variables = [v for v in variables if v.trainable]
    self._best = [tf.Variable(v, trainable=False) for v in self._variables]
    self._per_member = per_member

  def keep(self, improved) -> None:
    """Keeps the current weights of the members `improved` ([E] bool), or
    of the whole network (one bool). Weights shared by all members (the
    model's log-variance limits) are kept when any member improved."""
    improved = np.asarray(improved)
    for v, best in zip(self._variables, self._best):
      if self._per_member and v.shape.rank >= 2:
        mask = tf.reshape(tf.constant(improved), [-1] + [1] * (v.shape.rank - 1))
        best.assign(tf.where(mask, v, best))
      elif improved.any():
        best.assign(v)

  def restore(self) -> None:
    for v, best in zip(self._variables, self._best):
      v.assign(best)


class _StageLogs:
  """A stage's logs, one per kind of row (a CSV's columns are its first
  row's): training rows at most every 5 s, validation rows all."""

  def __init__(self, run_dir: Optional[str], stage: str):
    self._run_dir, self._stage = run_dir, stage
    self._loggers: Dict[str, loggers.Logger] = {}

  def write(self, label: str, row: Dict[str, float]) -> None:
    if label not in self._loggers:
      self._loggers[label] = run_loggers.make_logger(
          self._run_dir, label,
          time_delta=0. if label.endswith('_validation') else 5.,
          steps_key=f'{self._stage}_steps')
    self._loggers[label].write(row)

  def close(self) -> None:
    for logger in self._loggers.values():
      logger.close()


class MABELearner(base.StepLoopLearner):
  """Model, prior, then behaviour-regularised model-based RL."""

  def __init__(self,
               model: networks.GaussianEnsemble,
               policy_network: snt.Module,
               prior_network: Optional[snt.Module],
               behaviour_network: Optional[snt.Module],
               data_critic: Optional[snt.Module],
               critic_networks,
               dataset: Iterator[Dict[str, tf.Tensor]],
               observation_size: int,
               action_size: int,
               validation: Dict[str, np.ndarray],
               action_bounds: Tuple[np.ndarray, np.ndarray],
               rl_dataset: Optional[Callable[[], Iterator]] = None,
               real_snippets: Optional[int] = None,
               config: config_lib.MABEConfig = config_lib.MABEConfig(),
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None,
               checkpoint_dir: Optional[str] = None,
               max_steps: Optional[int] = None):
    """`validation`: held-out transitions {observation, action, reward,
    discount, next_observation} (arrays of [V, ...]); `action_bounds`:
    (minimum, maximum) of [A] (NetworkSpec.bounds()); `rl_dataset`: makes
    stage 3's iterator of batches whose first `real_snippets` snippets are
    the data's and the rest the model's (None: `dataset`, tests)."""
    message = config.check()
    if message:
      raise ValueError(message)
    self._config = config
    self._init_loop(dataset, counter, logger, max_steps)
    self._action_low, self._action_high = (
        tf.constant(np.asarray(b, np.float32)) for b in action_bounds)
    self._run_dir = checkpoint_dir
    self._rl_dataset, self._real_snippets = rl_dataset, real_snippets
    self._validation = {k: tf.constant(np.asarray(v, np.float32))
                        for k, v in validation.items()}
    self._model = model
    if prior_network is None and not isinstance(
        policy_network, networks.SquashedGaussianPolicy):
      raise ValueError('MOPO mode (no prior) needs a SquashedGaussianPolicy '
                       'for its entropy term')
    self._policy, self._prior = policy_network, prior_network
    self._behaviour, self._data_critic = behaviour_network, data_critic
    self._critics = list(critic_networks)
    self._target_critics = [copy.deepcopy(c) for c in self._critics]
    observation = tf.TensorSpec([observation_size], tf.float32)
    action = tf.TensorSpec([action_size], tf.float32)
    for network in (self._policy, self._prior, self._behaviour):
      if network is not None:
        tf2_utils.create_variables(network, [observation])
    self._target_data_critic = None
    if data_critic is not None:
      self._target_data_critic = copy.deepcopy(data_critic)
      for network in (data_critic, self._target_data_critic):
        tf2_utils.create_variables(network, [observation, action])
    for network in self._critics + self._target_critics:
      tf2_utils.create_variables(network, [observation, action])
    base.copy_networks(zip(self._critics, self._target_critics))
    self._action_size = action_size
    self._stage_variable = tf.Variable(MODEL_STAGE, trainable=False,
                                       name='stage')
    self._active: Optional[Stage] = None

    # Stage 1.
    self._model_optimizer = snt.optimizers.Adam(config.model_learning_rate)
    self._model_stage = Stage('model', checkpoint_dir, dict(
        model=model, optimizer=self._model_optimizer))
    # Stage 2.
    self._max_reward = tf.Variable(-np.inf, trainable=False)
    self._max_q = tf.Variable(1.0, trainable=False)
    if config.use_prior:
      self._prior_optimizer = snt.optimizers.Adam(config.prior_learning_rate)
      prior_objects = dict(prior=self._prior, optimizer=self._prior_optimizer)
      if data_critic is not None:  # the weighted prior's (the flat has none:
        # its max_reward stays −inf, which the save's finite check refuses)
        self._q_optimizer = snt.optimizers.Adam(config.prior_learning_rate)
        self._behaviour_optimizer = snt.optimizers.Adam(
            config.prior_learning_rate)
        prior_objects.update(
            data_critic=data_critic, target_data_critic=self._target_data_critic,
            behaviour=self._behaviour, q_optimizer=self._q_optimizer,
            behaviour_optimizer=self._behaviour_optimizer,
            max_reward=self._max_reward, max_q=self._max_q)
      self._prior_stage = Stage('prior', checkpoint_dir, prior_objects)
    # Stage 3.
    self._policy_optimizer = snt.optimizers.Adam(config.learning_rate)
    self._critic_optimizer = snt.optimizers.Adam(config.learning_rate)
    self._beta_optimizer = snt.optimizers.Adam(config.beta_learning_rate)
    self._beta = tf.Variable(config.init_beta, name='beta')
    # E[KL(π‖p_α)] ≤ δ; MOPO: E[log π] ≤ −target entropy = |A| (SAC's).
    self._delta = config.target_kl if config.use_prior else float(action_size)
    self._num_steps = tf.Variable(0, dtype=tf.int64, trainable=False)
    self._variables = {'policy': self._policy.variables,
                       'model': model.variables,
                       'stage': [self._stage_variable]}
    if self._prior is not None:
      self._variables['prior'] = self._prior.variables
    saved = dict(policy=self._policy, policy_optimizer=self._policy_optimizer,
                 critic_optimizer=self._critic_optimizer,
                 beta_optimizer=self._beta_optimizer, beta=self._beta,
                 num_steps=self._num_steps)
    for k, (critic, target) in enumerate(zip(self._critics,
                                             self._target_critics)):
      saved[f'critic_{k + 1}'] = critic
      saved[f'target_critic_{k + 1}'] = target
    self._checkpointer = self._make_checkpointer(checkpoint_dir, saved)
    jit = config.jit_compile
    self._model_step = base.compiled(self._model_update, jit)
    self._model_validation = base.compiled(self._model_errors, jit)
    self._q_step = base.compiled(self._q_update, jit)
    self._prior_step = base.compiled(self._prior_update, jit)
    self._prior_validation = base.compiled(self._prior_nll, jit)
    self._step_fn = base.compiled(self._rl_update, jit)

  # --- stage 1: the model ---------------------------------------------------

  def _transitions(self, batch):
    data = shared_losses.snippet_transitions(batch)
    return (networks.model_inputs(data.states, data.actions),
            networks.model_targets(data.states, data.rewards,
                                   data.next_states), data)

  def _model_update(self, batch):
    config = self._config
    inputs, targets, _ = self._transitions(batch)
    rows = tf.shape(inputs)[0]
    # Each member its own bootstrap of the batch (MOPO's bootstraps).
    index = tf.random.uniform([config.ensemble_size, rows], 0, rows,
                              dtype=tf.int32)
    inputs, targets = tf.gather(inputs, index), tf.gather(targets, index)
    model = self._model
    with tf.GradientTape() as tape:
      mean, logvar = model(inputs)
      nll = losses.gaussian_nll(mean, logvar, targets)
      loss = (nll + losses.logvar_bound_loss(model.max_logvar,
                                             model.min_logvar)
              + losses.weight_decay(model.layer_weights(),
                                    config.model_weight_decays))
    variables = model.trainable_variables
    self._model_optimizer.apply(tape.gradient(loss, variables), variables)
    self._model_stage.steps.assign_add(1)
    return {'model_loss': loss, 'model_nll': nll / config.ensemble_size,
            'model_logvar_mean': tf.reduce_mean(logvar)}

  def _model_errors(self):
    v = self._validation
    mean, logvar = self._model(networks.model_inputs(v['observation'],
                                                     v['action']))
    targets = networks.model_targets(v['observation'], v['reward'],
                                     v['next_observation'])
    nll = tf.reduce_mean(tf.square(mean - targets) * tf.exp(-logvar) + logvar,
                         axis=[1, 2])
    return losses.member_errors(mean, targets), nll

  def _set_input_statistics(self) -> None:
    inputs = [self._transitions(next(self._iterator))[0]
              for _ in range(_INPUT_STATS_BATCHES)]
    inputs = tf.concat(inputs, axis=0)
    std = tf.math.reduce_std(inputs, axis=0)
    self._model.input_mean.assign(tf.reduce_mean(inputs, axis=0))
    # A constant input (MOPO's scaler: std below 1e-12 becomes 1).
    self._model.input_std.assign(tf.where(std < 1e-12, tf.ones_like(std),
                                          std))

  def _train_model(self, logs: '_StageLogs') -> None:
    config, stage = self._config, self._model_stage
    best = _BestWeights(self._model.variables, per_member=True)
    best_errors = np.full(config.ensemble_size, np.inf)
    if stage.info.get('best_errors'):
      best_errors = np.asarray(stage.info['best_errors'])
    if int(stage.steps.numpy()) == 0:
      with self._step_lock:
        self._set_input_statistics()
    since_improved = int(stage.info.get('since_improved', 0))
    while int(stage.steps.numpy()) < config.model_max_steps:
      metrics = self._stage_step(self._model_step)
      steps = int(stage.steps.numpy())
      logs.write('model', dict(metrics, model_steps=steps))
      if steps % config.model_eval_every and steps < config.model_max_steps:
        continue
      errors, nll = (x.numpy() for x in self._model_validation())
      improved = losses.improved_members(errors, best_errors)
      best.keep(improved)
      best_errors = np.where(improved, errors, best_errors)
      since_improved = 0 if improved.any() else since_improved + 1
      elites = losses.select_elites(best_errors, config.elites)
      stage.info.update(best_errors=best_errors.tolist(),
                        since_improved=since_improved, elites=elites.tolist(),
                        elite_validation_mse=best_errors[elites].tolist())
      logs.write('model_validation', dict(
          model_steps=steps, model_validation_mse=float(np.mean(errors)),
          model_validation_nll=float(np.mean(nll)),
          model_elite_mse=float(np.mean(best_errors[elites])),
          **{f'model_validation_mse_{i}': float(e)
             for i, e in enumerate(errors)},
          **{f'model_elite_{i}': int(m) for i, m in enumerate(elites)}))
      if since_improved >= config.model_patience:
        break
    best.restore()
    self._model.elites.assign(np.asarray(stage.info['elites'], np.int32))

  # --- stage 2: the prior ---------------------------------------------------

  def _q_update(self, batch):
    config = self._config
    data = shared_losses.snippet_transitions(batch)
    next_action = self._clip(self._behaviour(data.next_states).sample())
    target = tf.stop_gradient(
        data.rewards + config.discount * data.discounts
        * self._target_data_critic(data.next_states, next_action))
    with tf.GradientTape(persistent=True) as tape:
      q = self._data_critic(data.states, data.actions)
      q_loss = tf.reduce_mean(tf.square(q - target))
      behaviour_loss = shared_losses.weighted_maximum_likelihood(
          self._behaviour(data.states), data.actions)
    for loss, network, optimizer in (
        (q_loss, self._data_critic, self._q_optimizer),
        (behaviour_loss, self._behaviour, self._behaviour_optimizer)):
      variables = network.trainable_variables
      optimizer.apply(tape.gradient(loss, variables), variables)
    del tape
    _polyak([(self._data_critic, self._target_data_critic)],
            config.target_update_rate)
    self._max_reward.assign(tf.maximum(self._max_reward,
                                       tf.reduce_max(data.rewards)))
    self._prior_stage.steps.assign_add(1)
    return {'data_q_loss': q_loss, 'data_q_mean': tf.reduce_mean(q),
            'behaviour_loss': behaviour_loss}

  def _weights(self, states, actions):
    config = self._config
    if not config.weighted_prior:
      return tf.ones(tf.shape(states)[:1])
    return losses.prior_weights(
        self._data_critic(states, actions),
        normalisation=config.prior_normalisation, discount=config.discount,
        max_reward=self._max_reward, max_q=self._max_q,
        temperature=config.prior_temperature)

  def _prior_update(self, batch):
    data = shared_losses.snippet_transitions(batch)
    weights = self._weights(data.states, data.actions)
    with tf.GradientTape() as tape:
      loss = shared_losses.weighted_maximum_likelihood(
          self._prior(data.states), data.actions, weights)
    variables = self._prior.trainable_variables
    self._prior_optimizer.apply(tape.gradient(loss, variables), variables)
    self._prior_stage.steps.assign_add(1)
    return {'prior_loss': loss, 'prior_weight_mean': tf.reduce_mean(weights),
            'prior_weight_max': tf.reduce_max(weights)}

  def _prior_nll(self):
    v = self._validation
    return shared_losses.weighted_maximum_likelihood(
        self._prior(v['observation']), v['action'],
        self._weights(v['observation'], v['action']))

  def _train_prior(self, logs: '_StageLogs') -> None:
    config, stage = self._config, self._prior_stage
    q_steps = config.q_steps if config.weighted_prior else 0
    while int(stage.steps.numpy()) < q_steps:
      metrics = self._stage_step(self._q_step)
      logs.write('data_q', dict(metrics, prior_steps=int(stage.steps.numpy())))
    if config.weighted_prior and 'max_q' not in stage.info:
      v = self._validation
      self._max_reward.assign(tf.maximum(self._max_reward,
                                         tf.reduce_max(v['reward'])))
      # App. C.1's max Q over the data: here over the held-out episodes.
      max_q = float(tf.reduce_max(self._data_critic(v['observation'],
                                                    v['action'])))
      self._max_q.assign(max_q)
      stage.info.update(max_q=max_q, max_reward=float(self._max_reward))
    best = _BestWeights(self._prior.variables, per_member=False)
    best_nll = float(stage.info.get('best_nll', np.inf))
    since_improved = int(stage.info.get('since_improved', 0))
    while int(stage.steps.numpy()) < q_steps + config.prior_max_steps:
      metrics = self._stage_step(self._prior_step)
      steps = int(stage.steps.numpy())
      logs.write('prior', dict(metrics, prior_steps=steps))
      if (steps - q_steps) % config.prior_eval_every:
        continue
      nll = float(self._prior_validation())
      improved = nll < best_nll
      best.keep(np.array(improved))
      best_nll = min(nll, best_nll)
      since_improved = 0 if improved else since_improved + 1
      stage.info.update(best_nll=best_nll, since_improved=since_improved)
      logs.write('prior_validation', dict(prior_steps=steps,
                                          prior_validation_nll=nll))
      if since_improved >= config.prior_patience:
        break
    best.restore()

  # --- the stages' loop -----------------------------------------------------

  def _stage_step(self, step_fn) -> Dict[str, float]:
    """One compiled stage update on the next batch, under the step lock."""
    if self._stopping.is_set():
      raise _Stopped
    with self._step_lock:
      try:
        metrics = tf2_utils.to_numpy(step_fn(next(self._iterator)))
      except StopIteration:
        raise _Stopped from None
    bad = base.non_finite(metrics)
    if bad:
      self._poisoned = (f'{bad} is {metrics[bad]} at step '
                        f'{int(self._active.steps.numpy())} of the '
                        f'{self._active.name} stage')
      raise base.NonFiniteLoss(self._poisoned)
    return metrics

  def _run_stage(self, stage: Stage, train: Callable, source: str) -> None:
    """Restores `stage` if it finished (in this run or in `source`'s), else
    trains it (resuming what was saved) and saves it finished."""
    state = stage.restore()
    if state.get('finished'):
      print(f'[learner] {stage.name} stage: reusing the finished stage in '
            f'{stage.directory}', flush=True)
      return
    if source:
      directory = os.path.join(source, 'checkpoints', stage.name)
      if not Stage.read_state(directory).get('finished'):
        raise ValueError(f'{stage.name}_from {source}: no finished '
                         f'{stage.name} stage in {directory}')
      stage.restore(directory)
      print(f'[learner] {stage.name} stage: taken from {directory}',
            flush=True)
    else:
      started = time.time()
      self._active = stage
      logs = _StageLogs(self._run_dir, stage.name)
      try:
        train(logs)
      finally:
        logs.close()
      self._active = None
      print(f'[learner] {stage.name} stage: finished after '
            f'{int(stage.steps.numpy())} steps in {time.time() - started:.0f}'
            ' s', flush=True)
    stage.save(finished=True)

  def run_stages(self) -> bool:
    """Stages 1 and 2; False if the program stopped during one (what it had
    done is saved)."""
    config = self._config
    try:
      self._run_stage(self._model_stage, self._train_model, config.model_from)
      if config.use_prior:
        self._stage_variable.assign(PRIOR_STAGE)
        self._run_stage(self._prior_stage, self._train_prior,
                        config.prior_from)
    except _Stopped:
      return False
    self._stage_variable.assign(RL_STAGE)
    return True

  def run(self, num_steps: Optional[int] = None) -> None:
    if not self.run_stages():
      self._logger.close()
      return
    if not self._config.use_rl:
      num_steps = 0  # the prior alone: evaluated as it is
    if self._rl_dataset is not None:
      with self._step_lock:
        self._iterator = base._ReleasingIterator(  # pylint: disable=protected-access
            self._rl_dataset(), self._step_lock, self._stopping)
    super().run(num_steps)

  def _save(self) -> None:
    if self._active is not None:  # a stop during a stage
      self._active.save(finished=False)
      return
    super()._save()

  # --- stage 3: behaviour-regularised model-based RL -----------------------

  def _clip(self, actions: tf.Tensor) -> tf.Tensor:
    """A sampled action as a critic sees it (see the module docstring)."""
    return tf.clip_by_value(actions, self._action_low, self._action_high)

  def _sample(self, policy, states) -> Tuple[tf.Tensor, tf.Tensor]:
    """A reparameterised action of π at `states`, as the critics see it, and
    its regulariser: KL(π‖p_α)(s) in closed form; MOPO: log π(a|s) of its
    squashed action, the tanh's Jacobian included (SAC's entropy term)."""
    if self._prior is None:
      u = policy.distribution.sample()
      return policy.bijector.forward(u), (
          policy.distribution.log_prob(u)
          - policy.bijector.forward_log_det_jacobian(u, event_ndims=1))
    return self._clip(policy.sample()), policy.kl_divergence(
        shared_losses.detached(self._prior(states)))

  def _rl_update(self, batch):
    config = self._config
    data = shared_losses.snippet_transitions(batch)
    next_action, next_regulariser = self._sample(
        self._policy(data.next_states), data.next_states)
    next_q = tf.stack([c(data.next_states, next_action)
                       for c in self._target_critics])
    target = losses.regularised_target(
        data.rewards, data.discounts, config.discount, next_q, self._beta,
        next_regulariser)
    with tf.GradientTape(persistent=True) as tape:
      q = [critic(data.states, data.actions) for critic in self._critics]
      critic_loss = shared_losses.critic_loss(q, target)
      policy = self._policy(data.states)
      action, regulariser = self._sample(policy, data.states)
      q_policy = tf.reduce_min(tf.stack([c(data.states, action)
                                         for c in self._critics]), axis=0)
      policy_loss, beta_loss = shared_losses.constrained_policy_loss(
          q_policy[None], regulariser, self._beta, self._delta)
    critic_variables = [v for c in self._critics
                        for v in c.trainable_variables]
    for loss, variables, optimizer in (
        (critic_loss, critic_variables, self._critic_optimizer),
        (policy_loss, self._policy.trainable_variables,
         self._policy_optimizer),
        (beta_loss, [self._beta], self._beta_optimizer)):
      optimizer.apply(tape.gradient(loss, variables), variables)
    del tape
    self._beta.assign(tf.maximum(self._beta, 0.))
    _polyak(zip(self._critics, self._target_critics),
            config.target_update_rate)
    self._num_steps.assign_add(1)
    metrics = {'critic_loss': critic_loss, 'policy_loss': policy_loss,
               'q_mean': tf.reduce_mean(q[0]), 'beta': self._beta,
               ('kl_to_prior' if self._prior is not None else 'log_pi'):
                   tf.reduce_mean(regulariser),
               # MOPO's: the std of the Gaussian before the squash.
               'policy_stddev': tf.reduce_mean(
                   (policy if self._prior is not None
                    else policy.distribution).stddev())}
    if self._real_snippets is not None:  # real rows first, then the model's
      rewards = batch['reward'][:, 0]
      metrics['real_reward_mean'] = tf.reduce_mean(
          rewards[:self._real_snippets])
      metrics['model_reward_mean'] = tf.reduce_mean(
          rewards[self._real_snippets:])
      metrics['real_share'] = tf.constant(
          self._real_snippets / config.batch_size, tf.float32)
    return metrics
