"""The BCQ learner (Fujimoto et al. 2019, Algorithm 1), as the ABM paper ran
it (Table 3, App. C.2). One step:

  VAE            reconstruct the data's actions: mean (D(s, z) − a)² + ½ KL
  critics        twin Q toward r + γ d max_j [λ min + (1 − λ) max]_k
                 Q'_k(s', a_j), a_j the target perturbation of n decoder
                 samples at s' (the soft clipped double-Q target)
  perturbation   max E[Q1(s, ξ(s, D(s, z)))]

All three in one step from the same batch (the official code updates them in
sequence, each seeing the others' update; here each sees the others'
variables of the step's start, as the project's other learners do). Target
networks (the critics and the perturbation) are copied every
`target_update_period` steps, as the project's other ABM-paper learners.
"""

import copy
from typing import Dict, Iterator, Optional

from acme.tf import utils as tf2_utils
from acme.utils import counting
from acme.utils import loggers
import sonnet as snt
import tensorflow as tf

from abmrl.agents import base
from abmrl.agents import losses as shared_losses
from abmrl.agents.bcq import config as config_lib
from abmrl.agents.bcq import losses
from abmrl.agents.bcq import networks


class BCQLearner(base.StepLoopLearner):
  """Batch-constrained deep Q-learning."""

  def __init__(self,
               encoder: networks.Encoder,
               decoder: networks.Decoder,
               perturbation: networks.Perturbation,
               critic_networks,  # two critics: (observation, action) -> [B]
               dataset: Iterator[Dict[str, tf.Tensor]],
               observation_size: int,
               action_size: int,
               config: config_lib.BCQConfig = config_lib.BCQConfig(),
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None,
               checkpoint_dir: Optional[str] = None,
               max_steps: Optional[int] = None):
    self._config = config
    self._init_loop(dataset, counter, logger, max_steps)
    self._encoder, self._decoder = encoder, decoder
    self._perturbation = perturbation
    self._critics = list(critic_networks)
    self._target_perturbation = copy.deepcopy(perturbation)
    self._target_critics = [copy.deepcopy(c) for c in self._critics]
    # What evaluators and actors act with: the decoder, the perturbation and
    # the first critic (agents/bcq/builder.py builds the same module).
    self._policy = networks.BCQPolicy(decoder, perturbation, self._critics[0],
                                      config.acting_samples)
    observation = tf.TensorSpec([observation_size], tf.float32)
    action = tf.TensorSpec([action_size], tf.float32)
    latent = tf.TensorSpec([config.latent_size], tf.float32)
    tf2_utils.create_variables(encoder, [observation, action])
    tf2_utils.create_variables(decoder, [observation, latent])
    for network in ([perturbation, self._target_perturbation]
                    + self._critics + self._target_critics):
      tf2_utils.create_variables(network, [observation, action])
    self._sources_and_targets = (
        [(perturbation, self._target_perturbation)]
        + list(zip(self._critics, self._target_critics)))
    base.copy_networks(self._sources_and_targets)
    self._vae_optimizer = snt.optimizers.Adam(config.learning_rate)
    self._perturbation_optimizer = snt.optimizers.Adam(config.learning_rate)
    self._critic_optimizer = snt.optimizers.Adam(config.learning_rate)
    self._num_steps = tf.Variable(0, dtype=tf.int64, trainable=False)
    self._variables = {'policy': self._policy.variables}
    self._checkpointer = self._make_checkpointer(
        checkpoint_dir,
        dict(policy=self._policy, encoder=encoder,
             critic_2=self._critics[1],
             target_perturbation=self._target_perturbation,
             target_critic_1=self._target_critics[0],
             target_critic_2=self._target_critics[1],
             vae_optimizer=self._vae_optimizer,
             perturbation_optimizer=self._perturbation_optimizer,
             critic_optimizer=self._critic_optimizer,
             num_steps=self._num_steps))
    self._step_fn = base.compiled(self._step, config.jit_compile)

  def _target(self, data: shared_losses.Transitions) -> tf.Tensor:
    """y = r + γ d max_j [λ min_k + (1 − λ) max_k] Q'_k(s', a_j)."""
    config = self._config
    n = config.target_samples
    tiled = tf.tile(data.next_states, [n, 1])  # [n·T, O]
    next_actions = self._target_perturbation(
        tiled, self._decoder.sample(tiled))
    next_q = tf.stack([tf.reshape(critic(tiled, next_actions), [n, -1])
                       for critic in self._target_critics])  # [2, n, T]
    return shared_losses.soft_clipped_max_target(
        next_q, data.rewards, data.discounts, config.discount, config.mixing)

  def _step(self, batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    config = self._config
    data = shared_losses.snippet_transitions(batch)
    target = self._target(data)
    vae_variables = (self._encoder.trainable_variables
                     + self._decoder.trainable_variables)
    critic_variables = [v for c in self._critics
                        for v in c.trainable_variables]
    perturbation_variables = self._perturbation.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
      mean, std = self._encoder(data.states, data.actions)
      latent = mean + std * tf.random.normal(tf.shape(mean))
      vae_loss, reconstruction, kl = losses.vae_loss(
          self._decoder(data.states, latent), data.actions, mean, std,
          config.kl_weight)
      q = [critic(data.states, data.actions) for critic in self._critics]
      critic_loss = shared_losses.critic_loss(q, target)
      sampled = tf.stop_gradient(self._decoder.sample(data.states))
      perturbed = self._perturbation(data.states, sampled)
      perturbation_loss = losses.perturbation_loss(
          self._critics[0](data.states, perturbed))
    for loss, variables, optimizer in (
        (vae_loss, vae_variables, self._vae_optimizer),
        (critic_loss, critic_variables, self._critic_optimizer),
        (perturbation_loss, perturbation_variables,
         self._perturbation_optimizer)):
      optimizer.apply(tape.gradient(loss, variables), variables)
    del tape
    self._num_steps.assign_add(1)
    base.copy_every(self._num_steps, config.target_update_period,
                    self._sources_and_targets)
    return {'vae_loss': vae_loss, 'reconstruction_loss': reconstruction,
            'kl': kl, 'critic_loss': critic_loss,
            'policy_loss': perturbation_loss, 'q_mean': tf.reduce_mean(q[0]),
            'perturbation_mean': tf.reduce_mean(tf.abs(perturbed - sampled))}
