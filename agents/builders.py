"""What the launch code needs of an agent: the builder interface.

Each agent family has a `builder.py` beside its config, networks, losses and
learning modules, with one `AgentBuilder` per agent name it offers (the ABM
family offers seven). A builder makes the agent's config, its networks, its
learner, and the networks evaluators and actors fill with the learner's
variables; it also says what the agent needs of the data path. Every learner
takes the same inputs (networks sized by a `NetworkSpec`, an iterator of
snippet batches, a counter, a logger, a checkpoint directory), so the launch
code is the same for all of them.
"""

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

import numpy as np

if TYPE_CHECKING:
  import sonnet as snt  # pylint: disable=g-bad-import-order

# TensorFlow, Sonnet and the networks are imported where a network is made:
# the command line reads builders (an agent's config, its run defaults) to
# check its flags, and answers before TensorFlow loads.
# pylint: disable=g-import-not-at-top


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
  """What sizes an agent's networks and what they see first."""
  observation_size: int
  action_size: int
  # K for task-conditioned networks (a multi-task environment), else None.
  num_tasks: Optional[int] = None
  # (mean, std) standardising every network's input, or None.
  observation_stats: Optional[Tuple[np.ndarray, np.ndarray]] = None
  # The environment's (minimum, maximum) action, each [A] (None: [−1, 1]),
  # for the networks whose outputs are bounded (BCQ's decoder and
  # perturbation).
  action_bounds: Optional[Tuple[Tuple[float, ...], Tuple[float, ...]]] = None

  def bounds(self) -> Tuple[np.ndarray, np.ndarray]:
    """(minimum, maximum) action, float32 arrays of [A]."""
    low, high = self.action_bounds or ((-1.,) * self.action_size,
                                       (1.,) * self.action_size)
    return (np.asarray(low, np.float32).reshape(self.action_size),
            np.asarray(high, np.float32).reshape(self.action_size))

  def normalised(self, network: 'snt.Module') -> 'snt.Module':
    """The network behind the run's observation standardisation, if any."""
    from abmrl.agents import networks
    if self.observation_stats is None:
      return network
    return networks.Normalised(network, *self.observation_stats)

  def gaussian_policy(self, layer_sizes, min_variance: float,
                      name: str) -> 'snt.Module':
    """A Gaussian policy network of the shared architecture."""
    from abmrl.agents import networks
    return self.normalised(networks.make_gaussian_policy(
        self.action_size, layer_sizes, min_variance, name=name,
        num_tasks=self.num_tasks))

  def mlp(self, output_size: int, layer_sizes, name: str) -> 'snt.Module':
    """(observation, *inputs) -> [B, output_size] of the shared
    architecture."""
    from abmrl.agents import networks
    return self.normalised(networks.make_mlp(output_size, layer_sizes,
                                             self.num_tasks, name=name))

  def critic(self, layer_sizes) -> 'snt.Module':
    """A Q network Q(s, a) of the shared architecture."""
    from abmrl.agents import networks
    return self.normalised(networks.make_critic(layer_sizes, self.num_tasks))


class AgentBuilder:
  """One agent: subclasses set `name`, `config_class`, `learner` (and
  `policies` where the agent serves more than its policy) and implement
  `learner_networks`; `make_policy` where the evaluated networks are other
  than one Gaussian policy of `config.policy_layer_sizes`."""

  name: str
  config_class: type
  # 'module:Class' of its learner, imported when a learner is made.
  learner: str
  # Evaluated policies: label (logged as evaluator_<label>_*) -> the
  # variable key the learner serves them under.
  policies: Mapping[str, str] = {'policy': 'policy'}
  # Snippets are whole episodes, padded to the longest one (AWR's returns
  # are computed over whole episodes; datasets/replay.py).
  whole_episodes: bool = False
  # What the agent needs unless the run says otherwise: {section of
  # launch/config.py's TrainConfig: {field: value}}, and under 'agent' the
  # config_class fields where this agent's defaults differ from the class's
  # (the ABM variants' CPU-budget set, agents/abm/config.py).
  run_defaults: Mapping[str, Mapping[str, Any]] = {}
  # Named starting points other than the defaults (`abmrl train --preset
  # NAME`): {name: {'agent': {config field: value}, section of TrainConfig:
  # {field: value}}}. A preset replaces the agent's defaults where it names
  # them; flags and --set then override it.
  presets: Mapping[str, Mapping[str, Mapping[str, Any]]] = {}
  # Keyword arguments that fix the config_class's fields for this agent
  # (an ABM variant's prior and improvement step).
  fixed: Mapping[str, Any] = {}
  # The agent learns a model that rollout nodes sample (MABE, MOPO): the
  # program adds the model table and the rollout nodes, and gives the
  # learner held-out transitions and its RL batches (`make_learner`).
  model_based: bool = False
  # The learner logs what its update does per behaviour tag of the data
  # (the ABM family): it takes `behaviour_tags` (the dataset's sorted tags)
  # and, when the run holds episodes out, `heldout` (their states, actions,
  # Monte-Carlo returns and tags: datasets/episodes.held_out_returns).
  logs_behaviours: bool = False

  def check(self, config) -> str:
    """What in the run configuration (a launch/config.py TrainConfig) this
    agent cannot run with, as one line naming the flag; '' if nothing."""
    del config
    return ''

  def preset(self, name: str) -> Mapping[str, Mapping[str, Any]]:
    """The preset `name` ({} for ''); ValueError naming the agent's presets
    if it has no such one."""
    if not name:
      return {}
    if name not in self.presets:
      known = ', '.join(sorted(self.presets)) or 'none'
      raise ValueError(f'--preset {name}: {self.name} has no such preset '
                       f'(its presets: {known})')
    return self.presets[name]

  @property
  def learner_class(self) -> type:
    module, name = self.learner.split(':')
    return getattr(importlib.import_module(module), name)

  def make_config(self, **overrides):
    """The agent's hyperparameters: its defaults (the config_class's, then
    `run_defaults['agent']`, then `fixed`) with `overrides`."""
    return self.config_class(**{**self.run_defaults.get('agent', {}),
                                **self.fixed, **overrides})

  def make_policy(self, config, variable_key: str,
                  spec: NetworkSpec) -> 'snt.Module':
    """The network the learner serves as `variable_key`, as evaluators and
    actors build it to fill with the learner's variables."""
    if variable_key != 'policy':
      raise ValueError(f'{self.name} serves no policy {variable_key!r}; it '
                       'serves ' + ', '.join(self.policies.values()))
    return spec.gaussian_policy(config.policy_layer_sizes,
                                config.min_variance, name='policy')

  def learner_networks(self, config, spec: NetworkSpec) -> Dict[str, Any]:
    """The learner's networks (and sizes), as its constructor's keyword
    arguments."""
    raise NotImplementedError

  def make_learner(self, config, spec: NetworkSpec, dataset, counter, logger,
                   checkpoint_dir: Optional[str], max_steps: Optional[int],
                   **inputs):
    """The learner, with networks built from `spec`, fed by `dataset`, saving
    to (and resuming from) `checkpoint_dir`, stopping after `max_steps`;
    `inputs`: what a `model_based` or `logs_behaviours` agent's learner
    takes besides."""
    config = compiled_for(config, spec)
    return self.learner_class(
        config=config, dataset=dataset,
        observation_size=spec.observation_size, counter=counter,
        logger=logger, checkpoint_dir=checkpoint_dir, max_steps=max_steps,
        **self.learner_networks(config, spec), **inputs)

  def restore_policy(self, config, variable_key: str, spec: NetworkSpec,
                     observation_spec, checkpoint_dir: str) -> 'snt.Module':
    """The network `variable_key` with the weights of the learner's latest
    checkpoint in `checkpoint_dir` (a run directory's checkpoints/learner,
    where StepLoopLearner saves)."""
    from acme.tf import utils as tf2_utils
    import tensorflow as tf
    network = self.make_policy(config, variable_key, spec)
    tf2_utils.create_variables(network, [observation_spec])
    path = tf.train.latest_checkpoint(checkpoint_dir)
    if path is None:
      raise FileNotFoundError(f'no learner checkpoint in {checkpoint_dir}')
    tf.train.Checkpoint(**{variable_key: network}).restore(
        path).expect_partial()
    return network


def compiled_for(config, spec: NetworkSpec):
  """The config, without XLA for task-conditioned networks: their per-task
  row partitions change size every batch, and XLA would recompile the step
  for each new size (measured: ~30 s per step)."""
  if spec.num_tasks and config.jit_compile:
    return dataclasses.replace(config, jit_compile=False)
  return config

