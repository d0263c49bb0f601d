"""The BCQ agent (Fujimoto et al. 2019; ABM paper Table 3): a VAE behaviour
model, a perturbation network and twin critics, acting by the argmax of Q1
over perturbed decoder samples."""

from abmrl.agents import builders
from abmrl.agents.bcq import config as config_lib


class BCQBuilder(builders.AgentBuilder):
  name = 'bcq'
  config_class = config_lib.BCQConfig
  learner = 'abmrl.agents.bcq.learning:BCQLearner'

  def _parts(self, config, spec):
    """(decoder, perturbation, critic), the policy's parts."""
    from abmrl.agents.bcq import networks  # pylint: disable=g-import-not-at-top
    decoder = networks.Decoder(
        spec.mlp(spec.action_size, config.decoder_layer_sizes, 'decoder_mlp'),
        config.latent_size, config.latent_clip, spec.bounds())
    perturbation = networks.Perturbation(
        spec.mlp(spec.action_size, config.perturbation_layer_sizes,
                 'perturbation_mlp'),
        config.perturbation_scale, spec.bounds())
    return decoder, perturbation, spec.critic(config.critic_layer_sizes)

  def make_policy(self, config, variable_key, spec):
    if variable_key != 'policy':
      return super().make_policy(config, variable_key, spec)
    from abmrl.agents.bcq import networks  # pylint: disable=g-import-not-at-top
    return networks.BCQPolicy(*self._parts(config, spec),
                              config.acting_samples)

  def learner_networks(self, config, spec):
    from abmrl.agents.bcq import networks  # pylint: disable=g-import-not-at-top
    decoder, perturbation, critic = self._parts(config, spec)
    return dict(
        encoder=networks.Encoder(
            spec.mlp(2 * config.latent_size, config.encoder_layer_sizes,
                     'encoder_mlp')),
        decoder=decoder, perturbation=perturbation,
        critic_networks=[critic, spec.critic(config.critic_layer_sizes)],
        action_size=spec.action_size)


BUILDERS = {'bcq': BCQBuilder()}
