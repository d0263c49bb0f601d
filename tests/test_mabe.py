"""MABE and MOPO (agents/mabe, datasets/rollout.py): each equation against
NumPy written from the paper (signs as corrected in the digest), the model
on a linear system, rollout nodes on a real Reverb server, stage reuse."""

import json
import os

import numpy as np
import pytest
import reverb
import sonnet as snt
import tensorflow as tf

from abmrl.agents import builders
from abmrl.agents import losses as shared_losses
from abmrl.agents import registry
from abmrl.agents.mabe import learning
from abmrl.agents.mabe import losses
from abmrl.agents.mabe import networks
from abmrl.datasets import episodes
from abmrl.datasets import replay as replay_lib
from abmrl.datasets import rollout as rollout_lib
from abmrl.launch import config as config_lib

RNG = np.random.default_rng(0)

# --- equations ----------------------------------------------------------------


def test_gaussian_nll_is_eq_2_with_learned_variance():
  mean = RNG.normal(size=(3, 5, 4)).astype(np.float32)
  logvar = RNG.normal(size=(3, 5, 4)).astype(np.float32)
  target = RNG.normal(size=(5, 4)).astype(np.float32)
  # −log N(y; μ, σ²) up to constants and a factor 2, per member, averaged
  # over transitions and outputs, summed over members.
  expected = sum(np.mean((mean[e] - target) ** 2 / np.exp(logvar[e])
                         + logvar[e]) for e in range(3))
  np.testing.assert_allclose(losses.gaussian_nll(mean, logvar, target),
                             expected, rtol=1e-5)
  np.testing.assert_allclose(
      losses.member_errors(mean, target),
      [np.mean((mean[e] - target) ** 2) for e in range(3)], rtol=1e-5)


def test_elites_are_the_least_validation_errors_and_early_stopping_rule():
  errors = np.array([0.5, 0.1, 0.9, 0.2, 0.3, 0.05, 0.7])
  np.testing.assert_array_equal(losses.select_elites(errors, 5),
                                [5, 1, 3, 4, 0])
  best = np.array([1.0, 1.0, np.inf])
  # MOPO: an improvement is a fall of more than 1% of the best so far.
  np.testing.assert_array_equal(
      losses.improved_members(np.array([0.995, 0.98, 5.0]), best),
      [False, True, True])


@pytest.mark.parametrize('normalisation', ['reward', 'max_q'])
def test_prior_weights_are_eq_5(normalisation):
  q = RNG.uniform(0, 80, size=32).astype(np.float32)
  gamma, r_max, q_max, eta = 0.99, 0.9, float(q.max()), 0.5
  omega = q * (1 - gamma) / r_max if normalisation == 'reward' else q / q_max
  np.testing.assert_allclose(
      losses.prior_weights(q, normalisation=normalisation, discount=gamma,
                           max_reward=r_max, max_q=q_max, temperature=eta),
      np.exp(omega / eta), rtol=1e-5)


def test_target_and_beta_dual_have_the_corrected_signs():
  reward, discount = np.array([1., 0.5], np.float32), np.array([1., 0.],
                                                                np.float32)
  next_q = np.array([[3., 2.], [4., 1.]], np.float32)  # [K=2, T=2]
  kl, beta = np.array([0.5, 2.0], np.float32), 0.3
  # r + γ d [min_k Q̄_k − β KL]: the KL lowers the target (eq. 6 as printed,
  # −β(log π + log p), would raise it where the prior is likely).
  expected = reward + 0.99 * discount * (next_q.min(0) - beta * kl)
  np.testing.assert_allclose(
      losses.regularised_target(reward, discount, 0.99, next_q, beta, kl),
      expected, rtol=1e-6)
  # The dual: one SGD step on the shared Lagrangian's dual loss is the
  # corrected ascent β ← β + λ(E[KL] − δ): up when KL > δ, down below.
  for delta in (0.2, 3.0):
    variable = tf.Variable(beta)
    with tf.GradientTape() as tape:
      _, dual_loss = shared_losses.constrained_policy_loss(
          tf.zeros([1, 2]), tf.constant(kl), variable, delta)
    variable.assign_sub(0.1 * tape.gradient(dual_loss, variable))
    np.testing.assert_allclose(
        variable.numpy(), losses.beta_step(beta, kl.mean(), delta, 0.1),
        rtol=1e-6)
    assert (variable.numpy() > beta) == (kl.mean() > delta)
  assert losses.beta_step(0.01, 0.0, 1.0, 1.0) == 0.  # projected to β ≥ 0


def test_real_share_of_a_batch_is_whole_items():
  assert losses.real_batch_size(256, 0.05, 16) == 16
  assert losses.real_batch_size(256, 0.5, 16) == 128
  assert losses.real_batch_size(32, 0.99, 16) == 16  # room for the model's


# --- the model and the rollout node on a linear system -----------------------

O, A = 3, 1
_A = np.array([[1., 0.1, 0.], [0., 0.9, 0.1], [0., 0., 0.95]], np.float32)
_B = np.array([[0.], [0.1], [0.2]], np.float32)


def _linear(states, actions):
  """s' = A s + B a, r = s_0 − 0.1 a²."""
  return states @ _A.T + actions @ _B.T, states[:, 0] - 0.1 * actions[:, 0] ** 2


def _transitions(rows, rng):
  states = rng.uniform(-1, 1, (rows, O)).astype(np.float32)
  actions = rng.uniform(-1, 1, (rows, A)).astype(np.float32)
  next_states, rewards = _linear(states, actions)
  return states, actions, rewards.astype(np.float32), next_states


def _batches(batch_size, seed=1):
  """Snippet batches of the linear system, as the learner's dataset."""
  rng = np.random.default_rng(seed)
  while True:
    s, a, r, s2 = _transitions(batch_size, rng)
    yield {'observation': tf.constant(np.stack([s, s2], 1)),
           'action': tf.constant(np.stack([a, np.zeros_like(a)], 1)),
           'reward': tf.constant(np.stack([r, np.zeros_like(r)], 1)),
           'discount': tf.constant(np.stack([np.ones_like(r),
                                             np.zeros_like(r)], 1))}


def _validation():
  s, a, r, s2 = _transitions(2000, np.random.default_rng(2))
  return dict(observation=s, action=a, reward=r, discount=np.ones_like(r),
              next_observation=s2)


SMALL = dict(batch_size=128, model_layer_sizes=(64, 64),
             model_weight_decays=(0., 0., 0.), ensemble_size=4, elites=3,
             model_max_steps=1500, model_eval_every=100, model_patience=50,
             policy_layer_sizes=(16,), prior_layer_sizes=(16,),
             critic_layer_sizes=(16,), q_steps=20, prior_max_steps=40,
             prior_eval_every=20)


def _learner(checkpoint_dir=None, agent='mabe', **overrides):
  builder = registry.get(agent)
  config = builder.make_config(**{**SMALL, **overrides})
  return builder.make_learner(
      config, builders.NetworkSpec(O, A), _batches(config.batch_size),
      counter=None, logger=None, checkpoint_dir=checkpoint_dir, max_steps=4,
      validation=_validation(), real_snippets=32)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A learner whose model and prior stages ran (and saved) once."""
  run_dir = str(tmp_path_factory.mktemp('mabe_run'))
  learner = _learner(run_dir)
  assert learner.run_stages()
  return learner, run_dir


def test_model_learns_the_linear_system_and_keeps_its_elites(trained):
  learner, run_dir = trained
  with open(os.path.join(run_dir, 'checkpoints', 'model',
                         'state.json')) as f:
    state = json.load(f)
  assert state['finished'] and len(state['info']['elites']) == 3
  errors, _ = learner._model_validation()  # pylint: disable=protected-access
  elites = state['info']['elites']
  # Elites are the members of least (best-kept) validation error.
  np.testing.assert_array_equal(learner._model.elites.numpy(), elites)  # pylint: disable=protected-access
  np.testing.assert_allclose(errors.numpy()[elites],
                             state['info']['elite_validation_mse'], rtol=1e-5)
  # One-step error: below 1% of the targets' variance ([r, Δs]).
  v = _validation()
  targets = np.concatenate([v['reward'][:, None],
                            v['next_observation'] - v['observation']], 1)
  assert np.max(errors.numpy()[elites]) < 0.01 * np.mean(targets.var(0))


def test_rollout_node_writes_close_finite_transitions_and_counts_cuts(trained):
  learner, _ = trained
  spec = episodes.DatasetSpec(observation_shape=(O,), action_shape=(A,),
                              action_minimum=(-1.,), action_maximum=(1.,),
                              env_id='linear')
  table = replay_lib.make_snippet_table(
      replay_lib.MODEL_TABLE, spec, snippet_length=2, max_size=100_000,
      samples_per_insert=None, min_size_to_sample=1, batch_size=16,
      snippets_per_item=4)
  server = reverb.Server([table])
  try:
    client = reverb.Client(f'localhost:{server.port}')
    rng = np.random.default_rng(3)
    starts = (rng.uniform(-0.5, 0.5, (64, O)).astype(np.float32)
              for _ in range(100))
    bounds = (np.array([-1.], np.float32), np.array([1.], np.float32))

    def make(margin):
      builder = registry.get('mabe')
      config = builder.make_config(**SMALL)
      spec_ = builders.NetworkSpec(O, A)
      return rollout_lib.ModelRollouts(
          model=builder.make_model(config, spec_),
          policy_network=builder.make_policy(config, 'policy', spec_),
          variable_source=learner, start_states=starts, replay=client,
          table=replay_lib.MODEL_TABLE, observation_size=O,
          action_bounds=bounds, rollout_length=3, rollout_batch=64,
          penalty=1.0, state_margin=margin, snippets_per_item=4)

    node = make(margin=1.0)
    for _ in range(2):
      assert node.run_round()
    assert node.transitions > 300 and node.cut == 0
    node._writer.flush()  # pylint: disable=protected-access
    items = client.server_info()[replay_lib.MODEL_TABLE].current_size
    assert items == node.transitions // 4
    dataset = replay_lib.make_snippet_dataset(
        client.server_address, replay_lib.MODEL_TABLE, batch_size=64,
        snippet_length=2, snippets_per_item=4)
    batch = next(iter(dataset))
    assert batch['observation'].shape == (64, 2, O)
    assert batch['action'].shape == (64, 2, A)
    for name in replay_lib.SNIPPET_FIELDS:
      assert np.all(np.isfinite(batch[name].numpy()))
    s, a = batch['observation'][:, 0].numpy(), batch['action'][:, 0].numpy()
    assert np.all(np.abs(a) <= 1.)
    np.testing.assert_array_equal(batch['discount'][:, 0], 1.)
    # Close to the real transition of the same (s, a): the model is good,
    # and the sampled noise is that of its small learned variance.
    true_next, true_reward = _linear(s, a)
    assert np.max(np.abs(batch['observation'][:, 1] - true_next)) < 0.15
    # The reward is penalised by ξ max‖σ‖ ≥ 0: at most the true one, nearly.
    assert np.all(batch['reward'][:, 0] <= true_reward + 0.15)

    # A range shrunk to nothing (margin −0.5) cuts every rollout at its
    # first step: nothing written, every cut counted.
    node = make(margin=-0.5)
    node._warned = True  # pylint: disable=protected-access
    node._low = np.full(O, 0.4, np.float32)  # pylint: disable=protected-access
    node._high = np.full(O, 0.5, np.float32)  # pylint: disable=protected-access
    node._starts = lambda: np.full((64, O), 0.45, np.float32)  # pylint: disable=protected-access
    assert node.run_round()
    assert node.transitions == 0 and node.cut == 64
  finally:
    server.stop()


def test_finished_stages_are_reused_and_taken_from_another_run(trained,
                                                               tmp_path):
  learner, run_dir = trained
  again = _learner(run_dir)
  assert again.run_stages()
  for stage in ('model', 'prior'):
    state = learning.Stage.read_state(os.path.join(run_dir, 'checkpoints',
                                                   stage))
    assert int(getattr(again, f'_{stage}_stage').steps.numpy()) == (
        state['steps'])
  np.testing.assert_array_equal(again._model.weights[0].numpy(),  # pylint: disable=protected-access
                                learner._model.weights[0].numpy())  # pylint: disable=protected-access
  # The transfer experiment's composition: this run's model, its own prior.
  other = _learner(str(tmp_path / 'other'), model_from=run_dir)
  assert other.run_stages()
  np.testing.assert_array_equal(other._model.weights[0].numpy(),  # pylint: disable=protected-access
                                learner._model.weights[0].numpy())  # pylint: disable=protected-access
  assert learning.Stage.read_state(str(tmp_path / 'other' / 'checkpoints'
                                       / 'model'))['finished']
  with pytest.raises(ValueError, match='no finished model stage'):
    _learner(str(tmp_path / 'third'),
             model_from=str(tmp_path / 'nothing')).run_stages()


class _RecordingCritic(snt.Module):
  """A critic that keeps the largest |action| it was called with."""

  def __init__(self, critic):
    super().__init__(name='recording_critic')
    self._critic = critic
    self.largest_action = tf.Variable(0., trainable=False)

  def __call__(self, states, actions):
    self.largest_action.assign(tf.maximum(self.largest_action,
                                          tf.reduce_max(tf.abs(actions))))
    return self._critic(states, actions)


@pytest.mark.parametrize('agent', ['mabe', 'mopo', 'mabe_flat'])
def test_rl_steps_regularise_toward_the_prior_or_the_entropy(agent,
                                                             monkeypatch,
                                                             tmp_path):
  critic = builders.NetworkSpec.critic
  monkeypatch.setattr(builders.NetworkSpec, 'critic',
                      lambda spec, sizes: _RecordingCritic(critic(spec, sizes)))
  learner = _learner(str(tmp_path), agent=agent, model_max_steps=1500,
                     model_eval_every=100)
  learner.run()
  assert learner.num_steps == 4
  for stage in ('model', 'prior') if agent != 'mopo' else ('model',):
    with open(tmp_path / 'checkpoints' / stage / 'state.json') as f:
      assert json.load(f)['finished'], stage  # saved: all variables finite
  assert (learner._prior is None) == (agent == 'mopo')  # pylint: disable=protected-access
  assert learner._beta.numpy() >= 0  # pylint: disable=protected-access
  # Every critic (data Q, twin critics, their targets) saw the policy's and
  # the behaviour model's samples only inside the action bounds [−1, 1]:
  # the initial policy (std 0.7) samples outside them in most batches.
  critics = [c for c in (learner._critics + learner._target_critics  # pylint: disable=protected-access
                         + [learner._data_critic, learner._target_data_critic])  # pylint: disable=protected-access
             if c is not None]
  largest = [float(c.largest_action.numpy()) for c in critics]
  assert max(largest) <= 1. and min(largest) > 0.5, largest


class _FixedGaussian(snt.Module):
  """A 'policy network' whose Gaussian is the same at every state."""

  def __init__(self, loc, scale):
    super().__init__(name='fixed_gaussian')
    self._loc, self._scale = (np.asarray(x, np.float32) for x in (loc, scale))

  def __call__(self, observation):
    ones = tf.ones([tf.shape(observation)[0], 1])
    return networks.tfd.MultivariateNormalDiag(ones * self._loc,
                                               ones * self._scale)


def test_mopo_policy_is_squashed_and_its_entropy_target_binds():
  learner = _learner(agent='mopo')
  assert isinstance(learner._policy, networks.SquashedGaussianPolicy)  # pylint: disable=protected-access
  states = tf.constant(RNG.normal(size=(4096, O)), tf.float32)
  low, high = np.array([0., -3.], np.float32), np.array([2., 1.], np.float32)
  loc, scale = np.array([0.3, -0.8]), np.array([0.5, 0.2])
  policy = networks.SquashedGaussianPolicy(_FixedGaussian(loc, scale), low,
                                           high)(states)
  centre, half = (high + low) / 2, (high - low) / 2
  np.testing.assert_allclose(policy.mean()[0], centre + half * np.tanh(loc),
                             rtol=1e-6)
  action, log_pi = learner._sample(policy, states)  # pylint: disable=protected-access
  action = action.numpy()
  assert np.all((action > low) & (action < high))
  # log π(a) = log N(u; μ, σ) − Σ log(h (1 − tanh² u)), u = atanh((a − c)/h).
  u = np.arctanh((action.astype(np.float64) - centre) / half)
  expected = (-0.5 * ((u - loc) / scale) ** 2 - np.log(scale)
              - 0.5 * np.log(2 * np.pi)
              - np.log(half * (1 - np.tanh(u) ** 2))).sum(-1)
  np.testing.assert_allclose(log_pi, expected, rtol=1e-4, atol=1e-4)
  # What MOPO mode lacked on cheetah-run: as the std grows, a clipped
  # Gaussian's log π only falls, so SAC's target E[log π] ≤ |A| never binds;
  # the squashed policy's actions saturate and its log π rises past |A|.
  wide = networks.SquashedGaussianPolicy(_FixedGaussian([0., 0.], [100., 100.]),
                                         low, high)(states)
  _, wide_log_pi = learner._sample(wide, states)  # pylint: disable=protected-access
  assert float(tf.reduce_mean(wide_log_pi)) > 2  # |A| = 2 here
  assert float(tf.reduce_mean(wide.distribution.log_prob(
      wide.distribution.sample()))) < -2


def test_run_configuration_checks_name_the_flag(tmp_path):
  def config(**fields):
    sections = {'data': dict(dataset_dir=str(tmp_path))}
    replay = fields.pop('replay', None)
    if replay:
      sections['replay'] = replay
    return config_lib.TrainConfig.for_agent(
        'mabe', sections, fields.pop('agent_overrides', None), env_id='x',
        **fields)
  assert config().data.holdout_fraction == 0.1  # the agent's run default
  config().validate()
  for kwargs, message in (
      (dict(replay=dict(snippet_length=3)), '--snippet-length'),
      (dict(agent_overrides=dict(use_prior=False)), 'use_prior'),
      (dict(agent_overrides=dict(elites=9)), 'elites'),
      (dict(agent_overrides=dict(model_from=str(tmp_path / 'none'))),
       'model_from'),
      (dict(rollout_nodes=0), '--rollout-nodes')):
    with pytest.raises(config_lib.ConfigError, match=message):
      config(**kwargs).validate()
  bad = config()
  bad.data.holdout_fraction = 0.
  with pytest.raises(config_lib.ConfigError, match='--holdout-fraction'):
    bad.validate()


def test_held_out_episodes_are_skipped_by_restorers_and_read_whole(
    small_dataset):
  paths = episodes.list_episodes(small_dataset)
  kept, held = episodes.holdout_split(paths, 0.25)
  assert sorted(kept + held) == sorted(paths) and not set(kept) & set(held)
  assert len(held) == 2 and episodes.holdout_split(paths, 0.25) == (kept,
                                                                   held)
  assert len(episodes.holdout_split(paths[:2], 0.9)[0]) == 1  # never all
  from abmrl.datasets import restorer as restorer_lib  # pylint: disable=g-import-not-at-top
  restorer = restorer_lib.Restorer(small_dataset, None, 'snippets', 2,
                                   holdout_fraction=0.25)
  assert sorted(restorer._files) == sorted(kept)  # pylint: disable=protected-access
  validation = episodes.held_out_transitions(small_dataset, 0.25)
  rows = sum(episodes.read_episode(p).num_transitions for p in held)
  assert len(validation['reward']) == rows
  np.testing.assert_array_equal(validation['next_observation'][:-1][1:3],
                                validation['observation'][1:][1:3])
