"""The model-based agents: `mabe` (MABE: model, adaptive prior, KL-regularised
model-based SAC) and `mopo` (the same without the prior: MOPO). Both need
model-rollout nodes and a model table (`model_based`), and validate on
held-out episodes (`run_defaults`: 10% of episodes kept from the restorers).
"""

import os

from abmrl.agents import builders
from abmrl.agents.mabe import config as config_lib


class MABEBuilder(builders.AgentBuilder):
  config_class = config_lib.MABEConfig
  learner = 'abmrl.agents.mabe.learning:MABELearner'
  model_based = True
  # The model's and the prior's validation split: episodes, not
  # transitions (MABE/MOPO hold out 10% of the data).
  run_defaults = {'data': {'holdout_fraction': 0.1}}

  def __init__(self, name: str):
    self.name = name
    self.fixed = config_lib.VARIANTS[name]
    self.policies = ({'policy': 'policy', 'prior': 'prior'}
                     if self.fixed['use_prior'] else {'policy': 'policy'})

  def check(self, config) -> str:
    agent_config = config.agent_config
    if agent_config.use_prior != self.fixed['use_prior']:
      return (f'--set use_prior: {self.name} '
              + ('has its prior; without one, --agent mopo'
                 if self.fixed['use_prior'] else 'has no prior (mabe does)'))
    message = agent_config.check()
    if message:
      return f'--set: {message}'
    if config.replay.snippet_length != 2:
      return (f'--snippet-length: {self.name} learns from transitions (2 '
              f'rows), got {config.replay.snippet_length}')
    if not 0 < config.data.holdout_fraction < 1:
      return (f'{self.name} validates its model and prior on held-out '
              'episodes: --holdout-fraction must be in (0, 1), got '
              f'{config.data.holdout_fraction}')
    for stage in ('model', 'prior'):
      source = getattr(agent_config, f'{stage}_from')
      state = os.path.join(source, 'checkpoints', stage, 'state.json')
      if source and not os.path.isfile(state):
        return (f'--set {stage}_from={source}: no {stage} stage in it '
                f'({state} is missing)')
    return ''

  def make_policy(self, config, variable_key, spec):
    if variable_key == 'prior':
      return spec.gaussian_policy(config.prior_layer_sizes,
                                  config.min_variance, name='prior')
    policy = super().make_policy(config, variable_key, spec)
    if config.use_prior:  # MABE: a Gaussian, for KL(π‖p_α) in closed form
      return policy
    from abmrl.agents.mabe import networks  # pylint: disable=g-import-not-at-top
    return networks.SquashedGaussianPolicy(policy, *spec.bounds())

  def make_model(self, config, spec):
    """The dynamics-and-reward ensemble: (s, a) -> [r, Δs]."""
    from abmrl.agents.mabe import networks  # pylint: disable=g-import-not-at-top
    return networks.GaussianEnsemble(
        spec.observation_size + spec.action_size, 1 + spec.observation_size,
        config.ensemble_size, config.elites, config.model_layer_sizes)

  def learner_networks(self, config, spec):
    if spec.num_tasks:
      raise ValueError(f'{self.name} does not learn multi-task environments')
    with_prior = config.use_prior
    with_q = with_prior and config.weighted_prior
    return dict(
        model=self.make_model(config, spec),
        policy_network=self.make_policy(config, 'policy', spec),
        prior_network=(self.make_policy(config, 'prior', spec) if with_prior
                       else None),
        behaviour_network=(spec.gaussian_policy(
            config.prior_layer_sizes, config.min_variance, name='behaviour')
                           if with_q else None),
        data_critic=(spec.critic(config.critic_layer_sizes) if with_q
                     else None),
        critic_networks=[spec.critic(config.critic_layer_sizes)
                         for _ in range(2)],
        action_size=spec.action_size, action_bounds=spec.bounds())


BUILDERS = {name: MABEBuilder(name) for name in config_lib.VARIANTS}
