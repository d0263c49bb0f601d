"""The BEAR agents: `bear` (the ABM paper's: a KL constraint to the
behaviour prior, one critic) and `bear_mmd` (the original's MMD constraint,
two critics, warm-up). Both evaluate their policy and their prior."""

from abmrl.agents import builders
from abmrl.agents.bear import config as config_lib


class BEARBuilder(builders.AgentBuilder):
  config_class = config_lib.BEARConfig
  learner = 'abmrl.agents.bear.learning:BEARLearner'
  policies = {'policy': 'policy', 'prior': 'prior'}

  def __init__(self, name: str):
    self.name = name
    self.fixed = config_lib.VARIANTS[name]

  def make_policy(self, config, variable_key, spec):
    if variable_key != 'prior':
      return super().make_policy(config, variable_key, spec)
    return spec.gaussian_policy(config.prior_layer_sizes, config.min_variance,
                                name='prior')

  def learner_networks(self, config, spec):
    return dict(policy_network=self.make_policy(config, 'policy', spec),
                prior_network=self.make_policy(config, 'prior', spec),
                critic_networks=[spec.critic(config.critic_layer_sizes)
                                 for _ in range(config.num_critics)],
                action_size=spec.action_size)


BUILDERS = {name: BEARBuilder(name) for name in config_lib.VARIANTS}
