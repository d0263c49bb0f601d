"""The AWR agent (AWR paper, Algorithm 1): whole episodes, TD(λ) returns."""

from abmrl.agents import builders
from abmrl.agents.awr import config as config_lib


class AWRBuilder(builders.AgentBuilder):
  name = 'awr'
  config_class = config_lib.AWRConfig
  learner = 'abmrl.agents.awr.learning:AWRLearner'
  whole_episodes = True
  # Replay items are whole episodes, so sizes are in episodes (a
  # control-suite episode is ≈ 100 kB in replay).
  run_defaults = {
      'replay': dict(snippets_per_item=1, replay_size=1_000,
                     min_replay_size=50),
      'online': dict(replay_size=1_000, min_replay_size=10),
  }

  def learner_networks(self, config, spec):
    from abmrl.agents import networks  # pylint: disable=g-import-not-at-top
    return dict(policy_network=self.make_policy(config, 'policy', spec),
                value_network=spec.normalised(networks.make_value_network(
                    config.value_layer_sizes, spec.num_tasks)))


BUILDERS = {'awr': AWRBuilder()}
