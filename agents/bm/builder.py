"""The BM agent: the behaviour model alone (ABM paper, eq. 3)."""

from abmrl.agents import builders
from abmrl.agents.bm import config as config_lib


class BMBuilder(builders.AgentBuilder):
  name = 'bm'
  config_class = config_lib.BMConfig
  learner = 'abmrl.agents.bm.learning:BMLearner'

  def learner_networks(self, config, spec):
    return dict(policy_network=self.make_policy(config, 'policy', spec))


BUILDERS = {'bm': BMBuilder()}
