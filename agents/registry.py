"""Agents by name: how to build each learner and which policies to evaluate.

Every learner takes the same inputs (networks sized from the dataset spec, an
iterator of snippet batches, a counter, a logger, a checkpoint directory), so
the launch code is the same for all of them. A new algorithm adds one entry.
"""

import dataclasses
import functools
from typing import Any, Callable, Dict, Optional, Tuple

from acme.tf import utils as tf2_utils
import tensorflow as tf

from abmrl.agents import networks
from abmrl.agents.abm import config as abm_config
from abmrl.agents.abm import learning as abm_learning
from abmrl.agents.awac import config as awac_config
from abmrl.agents.awac import learning as awac_learning
from abmrl.agents.awr import config as awr_config
from abmrl.agents.awr import learning as awr_learning
from abmrl.agents.bm import config as bm_config
from abmrl.agents.bm import learning as bm_learning


@dataclasses.dataclass(frozen=True)
class AgentDefinition:
  config_class: Callable[..., Any]  # keyword overrides -> config
  # make_learner(config, observation_size, action_size, dataset, counter,
  #              logger, checkpoint_dir, max_steps, num_tasks=None,
  #              observation_stats=None) -> learner
  # (num_tasks: task-conditioned networks, for a multi-task environment;
  # observation_stats: (mean, std) standardising every network's input)
  make_learner: Callable[..., Any]
  # Evaluated policies: label -> variable key served by the learner.
  policies: Dict[str, str]
  # Rows per snippet N unless the run says otherwise (N − 1 transitions).
  snippet_length: int = 2
  # Snippets are whole episodes, padded to the longest one (datasets/replay.py)
  whole_episodes: bool = False
  # The run's replay settings (launch.config.TrainConfig fields) unless the
  # run says otherwise.
  replay_defaults: Dict[str, Any] = dataclasses.field(default_factory=dict)


def _normalised(network, observation_stats):
  """The network behind the run's observation standardisation, if any
  (`observation_stats`: (mean, std) or None)."""
  if observation_stats is None:
    return network
  return networks.Normalised(network, *observation_stats)


def make_evaluated_network(config, action_size: int, variable_key: str,
                           num_tasks: Optional[int] = None,
                           observation_stats=None):
  """The network an evaluator fills with the learner's `variable_key`."""
  layer_sizes = (config.prior_layer_sizes if variable_key == 'prior'
                 else config.policy_layer_sizes)
  min_variance = config.min_variance
  prior_floor = getattr(config, 'prior_min_variance', None)  # ABM only
  if variable_key == 'prior' and prior_floor is not None:
    min_variance = prior_floor
  return _normalised(networks.make_gaussian_policy(
      action_size, layer_sizes, min_variance, name=variable_key,
      num_tasks=num_tasks), observation_stats)


def make_critic(config, num_tasks: Optional[int] = None,
                observation_stats=None):
  """A Q network Q(s, a) of `config.critic_layer_sizes`, as the learners
  build theirs (checkpointed under their `critic` key)."""
  return _normalised(networks.make_critic(config.critic_layer_sizes,
                                          num_tasks), observation_stats)


def restore_policy(config, action_size: int, observation_spec,
                   variable_key: str, checkpoint_dir: str,
                   num_tasks: Optional[int] = None, observation_stats=None):
  """The evaluated network `variable_key` ('policy', 'prior') with the
  weights of the learner's latest checkpoint in `checkpoint_dir` (the run
  directory's checkpoints/learner, where StepLoopLearner saves)."""
  network = make_evaluated_network(config, action_size, variable_key,
                                   num_tasks, observation_stats)
  tf2_utils.create_variables(network, [observation_spec])
  path = tf.train.latest_checkpoint(checkpoint_dir)
  if path is None:
    raise FileNotFoundError(f'no learner checkpoint in {checkpoint_dir}')
  tf.train.Checkpoint(**{variable_key: network}).restore(
      path).expect_partial()
  return network


def _compiled_for(config, num_tasks):
  """The config, without XLA for task-conditioned networks: their per-task
  row partitions change size every batch, and XLA would recompile the step
  for each new size (measured: ~30 s per step)."""
  if num_tasks and config.jit_compile:
    return dataclasses.replace(config, jit_compile=False)
  return config


def _make_bm_learner(config: bm_config.BMConfig, observation_size: int,
                     action_size: int, dataset, counter, logger,
                     checkpoint_dir, max_steps, num_tasks=None,
                     observation_stats=None):
  config = _compiled_for(config, num_tasks)
  return bm_learning.BMLearner(
      policy_network=make_evaluated_network(config, action_size, 'policy',
                                            num_tasks, observation_stats),
      dataset=dataset, observation_size=observation_size, config=config,
      counter=counter, logger=logger, checkpoint_dir=checkpoint_dir,
      max_steps=max_steps)


def _make_abm_learner(config: abm_config.ABMConfig, observation_size: int,
                      action_size: int, dataset, counter, logger,
                      checkpoint_dir, max_steps, num_tasks=None,
                      observation_stats=None):
  config = _compiled_for(config, num_tasks)
  return abm_learning.ABMLearner(
      policy_network=make_evaluated_network(config, action_size, 'policy',
                                            num_tasks, observation_stats),
      prior_network=make_evaluated_network(config, action_size, 'prior',
                                           num_tasks, observation_stats),
      critic_network=make_critic(config, num_tasks, observation_stats),
      dataset=dataset, observation_size=observation_size,
      action_size=action_size, config=config, counter=counter, logger=logger,
      checkpoint_dir=checkpoint_dir, max_steps=max_steps)


def _make_awac_learner(config: awac_config.AWACConfig, observation_size: int,
                       action_size: int, dataset, counter, logger,
                       checkpoint_dir, max_steps, num_tasks=None,
                       observation_stats=None):
  config = _compiled_for(config, num_tasks)
  return awac_learning.AWACLearner(
      policy_network=make_evaluated_network(config, action_size, 'policy',
                                            num_tasks, observation_stats),
      critic_networks=[make_critic(config, num_tasks, observation_stats)
                       for _ in range(2)],
      dataset=dataset, observation_size=observation_size,
      action_size=action_size, config=config, counter=counter, logger=logger,
      checkpoint_dir=checkpoint_dir, max_steps=max_steps)


def _make_awr_learner(config: awr_config.AWRConfig, observation_size: int,
                      action_size: int, dataset, counter, logger,
                      checkpoint_dir, max_steps, num_tasks=None,
                      observation_stats=None):
  config = _compiled_for(config, num_tasks)
  return awr_learning.AWRLearner(
      policy_network=make_evaluated_network(config, action_size, 'policy',
                                            num_tasks, observation_stats),
      value_network=_normalised(
          networks.make_value_network(config.value_layer_sizes, num_tasks),
          observation_stats),
      dataset=dataset, observation_size=observation_size, config=config,
      counter=counter, logger=logger, checkpoint_dir=checkpoint_dir,
      max_steps=max_steps)


def _abm_variant(name: str) -> Tuple[str, AgentDefinition]:
  variant = abm_config.VARIANTS[name]
  policies = {}
  if variant['improvement'] != 'none':
    policies['policy'] = 'policy'
  if variant['prior'] != 'none':
    policies['prior'] = 'prior'
  return name, AgentDefinition(
      functools.partial(abm_config.ABMConfig, **variant), _make_abm_learner,
      policies)


AGENTS: Dict[str, AgentDefinition] = {
    'bm': AgentDefinition(bm_config.BMConfig, _make_bm_learner,
                          policies={'policy': 'policy'}),
    **dict(_abm_variant(name) for name in abm_config.VARIANTS),
    'awac': AgentDefinition(awac_config.AWACConfig, _make_awac_learner,
                            policies={'policy': 'policy'}),
    # TD(λ) returns over whole episodes; sizes in episodes (a control-suite
    # episode is ≈ 100 kB in replay).
    'awr': AgentDefinition(
        awr_config.AWRConfig, _make_awr_learner, policies={'policy': 'policy'},
        whole_episodes=True,
        replay_defaults=dict(snippets_per_item=1, replay_size=1_000,
                             min_replay_size=50, samples_per_insert=8.0,
                             online_replay_size=1_000,
                             online_min_replay_size=10)),
}


def get(name: str) -> AgentDefinition:
  if name not in AGENTS:
    raise ValueError(f'unknown agent {name!r}; valid agents: '
                     + ', '.join(sorted(AGENTS)))
  return AGENTS[name]
