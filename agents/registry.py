"""Agents by name: how to build each learner and which policies to evaluate.

Every learner takes the same inputs (networks sized from the dataset spec, an
iterator of snippet batches, a counter, a logger, a checkpoint directory), so
the launch code is the same for all of them. A new algorithm adds one entry.
"""

import dataclasses
from typing import Any, Callable, Dict, Mapping

from agents import networks
from agents.bm import config as bm_config
from agents.bm import learning as bm_learning


@dataclasses.dataclass(frozen=True)
class AgentDefinition:
  config_class: type
  # make_learner(config, observation_size, action_size, dataset, counter,
  #              logger, checkpoint_dir, max_steps) -> learner
  make_learner: Callable[..., Any]
  # Evaluated policies: label -> (variable key, network factory(action_size)).
  policies: Mapping[str, str]


def _make_bm_learner(config: bm_config.BMConfig, observation_size: int,
                     action_size: int, dataset, counter, logger,
                     checkpoint_dir, max_steps):
  return bm_learning.BMLearner(
      policy_network=make_policy_network(config, action_size),
      dataset=dataset, observation_size=observation_size, config=config,
      counter=counter, logger=logger, checkpoint_dir=checkpoint_dir,
      max_steps=max_steps)


def make_policy_network(config, action_size: int):
  return networks.make_gaussian_policy(
      action_size, layer_sizes=config.policy_layer_sizes,
      min_variance=config.min_variance)


AGENTS: Dict[str, AgentDefinition] = {
    'bm': AgentDefinition(bm_config.BMConfig, _make_bm_learner,
                          policies={'policy': 'policy'}),
}


def get(name: str) -> AgentDefinition:
  if name not in AGENTS:
    raise ValueError(f'unknown agent {name!r}; valid agents: '
                     + ', '.join(sorted(AGENTS)))
  return AGENTS[name]
