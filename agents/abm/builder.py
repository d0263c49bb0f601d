"""The learners of "Keep Doing What Worked": one builder per variant
(abm_mpo, bm_mpo, mpo, abm_svg, bm_svg, svg, abm_prior), which differ only
in the prior and the improvement step their config fixes."""

from abmrl.agents import builders
from abmrl.agents.abm import config as config_lib


class ABMBuilder(builders.AgentBuilder):
  config_class = config_lib.ABMConfig
  learner = 'abmrl.agents.abm.learning:ABMLearner'
  logs_behaviours = True
  presets = {'paper': config_lib.PAPER}

  def __init__(self, name: str):
    self.name = name
    self.fixed = config_lib.VARIANTS[name]
    if name in config_lib.CPU_BUDGET_VARIANTS:
      self.run_defaults = config_lib.CPU_BUDGET
    # Evaluated: the RL policy where there is an improvement step, the prior
    # where there is one.
    self.policies = {}
    if self.fixed['improvement'] != 'none':
      self.policies['policy'] = 'policy'
    if self.fixed['prior'] != 'none':
      self.policies['prior'] = 'prior'

  def make_policy(self, config, variable_key, spec):
    if variable_key != 'prior':
      return super().make_policy(config, variable_key, spec)
    floor = (config.min_variance if config.prior_min_variance is None
             else config.prior_min_variance)
    return spec.gaussian_policy(config.prior_layer_sizes, floor, name='prior')

  def make_critic(self, config, spec):
    """Q(s, a), as the learner checkpoints it under `critic`."""
    return spec.critic(config.critic_layer_sizes)

  def learner_networks(self, config, spec):
    # Every variant has all three networks; the variant decides which of
    # them its update trains and serves.
    return dict(policy_network=self.make_policy(config, 'policy', spec),
                prior_network=self.make_policy(config, 'prior', spec),
                critic_network=self.make_critic(config, spec),
                action_size=spec.action_size)


BUILDERS = {name: ABMBuilder(name) for name in config_lib.VARIANTS}
