"""The AWAC agent (AWAC paper, Algorithm 1): offline, then online."""

from abmrl.agents import builders
from abmrl.agents.awac import config as config_lib


class AWACBuilder(builders.AgentBuilder):
  name = 'awac'
  config_class = config_lib.AWACConfig
  learner = 'abmrl.agents.awac.learning:AWACLearner'

  def make_critic(self, config, spec):
    """One of the twin Q networks (checkpointed as critic_1, critic_2)."""
    return spec.critic(config.critic_layer_sizes)

  def learner_networks(self, config, spec):
    return dict(policy_network=self.make_policy(config, 'policy', spec),
                critic_networks=[self.make_critic(config, spec)
                                 for _ in range(2)],
                action_size=spec.action_size)


BUILDERS = {'awac': AWACBuilder()}
