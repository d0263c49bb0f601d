"""The ABM paper's losses against NumPy references, and learner behaviour."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from acme.tf import networks as acme_networks
from acme.utils import loggers
from abmrl.agents import builders
from abmrl.agents import losses as shared_losses
from abmrl.agents import networks
from abmrl.agents import registry
from abmrl.agents.abm import losses
from abmrl.agents.abm.config import ABMConfig
from abmrl.agents.abm.config import VARIANTS
from abmrl.agents.abm import learning as learner_lib
from abmrl.agents.abm.learning import ABMLearner
from abmrl.datasets import episodes as episodes_lib
from abmrl.datasets import generate

tfd = tfp.distributions


# --- NumPy references, written from the paper's equations -------------------


def np_n_step_returns(reward, discount, bootstrap, gamma):
  """Eq. 4: R(τ_t:N) = Σ_{j=t}^{N−1} γ^{j−t} r_j + γ^{N−t} V̂(s_N), discounts folded."""
  b, t_max = reward.shape
  out = np.zeros_like(reward)
  for i in range(b):
    for t in range(t_max):
      total, scale = 0.0, 1.0
      for j in range(t, t_max):
        total += scale * reward[i, j]
        scale *= gamma * discount[i, j]
      out[i, t] = total + scale * bootstrap[i]
  return out


def np_advantage_weights(a, kind='exp', temperature=1.0, max_weight=np.inf,
                         normalisation='none', valid=None):
  """The weights w(A) of the three papers, from their equations.

  ABM eq. 4's f: 1[A ≥ 0] ('step'), min(exp(A), 20) ('exp'), 1 ('none',
  BM's eq. 3). AWAC eq. 10 with Z(s) dropped: exp(A/λ), or rlkit's
  softmax_batch(A/λ) · |batch|, then min(·, max_weight). AWR: min(exp(A/β),
  ω_max), A first standardised over the valid entries if asked.
  """
  a = np.asarray(a, np.float64)
  if normalisation == 'batch_standardise':
    kept = a[np.ones_like(a, bool) if valid is None else valid > 0]
    a = (a - kept.mean()) / (kept.std() + 1e-5)
  if kind == 'step':
    return (a >= 0).astype(np.float64)
  if kind == 'none':
    return np.ones_like(a)
  e = np.exp(a / temperature)
  if normalisation == 'batch_softmax':
    e = e / e.sum() * a.size
  return np.minimum(e, max_weight)


def np_temperature_dual(q, eta, epsilon):
  """Eq. 9 averaged over states, and the weights exp(Q/η)/Σ exp(Q/η)."""
  log_mean_exp = np.log(np.mean(np.exp(q / eta), axis=0))
  weights = np.exp(q / eta) / np.sum(np.exp(q / eta), axis=0)
  return weights, eta * epsilon + eta * np.mean(log_mean_exp)


def np_kl_diag(mu_p, sd_p, mu_q, sd_q):
  """KL(N(μp, σp²) ‖ N(μq, σq²)) summed over dimensions."""
  return np.sum(np.log(sd_q / sd_p) + (sd_p**2 + (mu_p - mu_q)**2)
                / (2 * sd_q**2) - 0.5, axis=-1)


def np_log_prob(x, mu, sd):
  return np.sum(-0.5 * ((x - mu) / sd)**2 - np.log(sd) - 0.5 * np.log(2 * np.pi),
                axis=-1)


# --- loss tests ----------------------------------------------------------------


def test_n_step_returns_with_an_episode_end_inside_the_snippet():
  reward = np.array([[1., 2., 3.], [0.5, 0., 1.]], np.float32)
  discount = np.array([[1., 0., 1.], [1., 1., 1.]], np.float32)  # ends at t=1
  bootstrap = np.array([10., -4.], np.float32)
  got = losses.n_step_returns(tf.constant(reward), tf.constant(discount),
                              tf.constant(bootstrap), 0.9).numpy()
  np.testing.assert_allclose(got, np_n_step_returns(reward, discount,
                                                    bootstrap, 0.9), rtol=1e-6)
  # By hand: the first snippet's episode ends after r_1, so no bootstrap.
  np.testing.assert_allclose(got[0, :2], [1 + 0.9 * 2, 2.], rtol=1e-6)
  np.testing.assert_allclose(got[0, 2], 3 + 0.9 * 10, rtol=1e-6)


def test_abm_weights_are_the_unit_step_of_the_advantage():
  advantage = tf.constant([-1., 0., 2., -1e-6, 4.])
  np.testing.assert_array_equal(
      shared_losses.advantage_weights(advantage, kind='step').numpy(),
      [0, 1, 1, 0, 1])
  # The exponential f, clipped at 20 as the learner clips it (CRR's).
  np.testing.assert_allclose(
      shared_losses.advantage_weights(advantage, kind='exp',
                                      max_weight=20.).numpy(),
      np.minimum(np.exp(advantage.numpy()), 20), rtol=1e-6)


_ADVANTAGE = np.array([-1.0, 0.0, 0.5, 2.0, -1e-6, 4.0], np.float32)
_VALID = np.array([1, 1, 1, 1, 1, 0], np.float32)  # the last: padding


@pytest.mark.parametrize('options', [
    dict(kind='step'),  # ABM eq. 4, the unit step
    dict(kind='exp', max_weight=20.),  # ABM eq. 4, exp
    dict(kind='none'),  # BM eq. 3
    dict(kind='step', normalisation='batch_standardise'),
    dict(temperature=0.5),  # AWAC eq. 10 (Z(s) dropped)
    dict(temperature=1.0, max_weight=2.0),
    dict(temperature=2.0, normalisation='batch_softmax'),  # rlkit's AWAC
    dict(temperature=0.5, normalisation='batch_softmax', max_weight=1.5),
    dict(temperature=0.05, max_weight=20.),  # AWR
    dict(temperature=1.0, max_weight=20., normalisation='batch_standardise'),
    dict(temperature=0.5, max_weight=20., normalisation='batch_standardise',
         valid=_VALID),
], ids=repr)
def test_advantage_weights_match_numpy_for_every_kind_and_normalisation(
    options):
  tensors = {key: tf.constant(value) if isinstance(value, np.ndarray)
             else value for key, value in options.items()}
  got = shared_losses.advantage_weights(tf.constant(_ADVANTAGE), **tensors)
  expected = np_advantage_weights(_ADVANTAGE, **options)
  valid = options.get('valid', np.ones_like(_ADVANTAGE)) > 0
  np.testing.assert_allclose(got.numpy()[valid], expected[valid], rtol=1e-4)


@pytest.mark.parametrize('options', [
    dict(kind='unit'), dict(normalisation='batch'),
    dict(kind='step', normalisation='batch_softmax'),
    dict(normalisation='batch_softmax', valid=tf.constant(_VALID)),
], ids=repr)
def test_advantage_weights_refuse_unknown_options(options):
  with pytest.raises(ValueError):
    shared_losses.advantage_weights(tf.constant(_ADVANTAGE), **options)


def test_abm_prior_loss_matches_weighted_log_likelihood():
  rng = np.random.default_rng(0)
  mu, sd = rng.normal(size=(6, 2)), rng.uniform(0.3, 1.5, size=(6, 2))
  actions = rng.normal(size=(6, 2))
  weights = np.array([1, 0, 1, 1, 0, 1], np.float32)
  got = shared_losses.weighted_maximum_likelihood(
      tfd.MultivariateNormalDiag(mu.astype(np.float32), sd.astype(np.float32)),
      tf.constant(actions, tf.float32), tf.constant(weights)).numpy()
  np.testing.assert_allclose(got, -np.mean(weights * np_log_prob(actions, mu,
                                                                  sd)),
                             rtol=1e-5)


def test_temperature_dual_and_sample_weights():
  rng = np.random.default_rng(1)
  q = rng.normal(size=(5, 4)).astype(np.float32) * 3
  weights, dual = losses.mpo_temperature_dual(tf.constant(q),
                                              tf.constant(1.7), 0.1)
  np_weights, np_dual = np_temperature_dual(q.astype(np.float64), 1.7, 0.1)
  np.testing.assert_allclose(weights.numpy(), np_weights, rtol=1e-5)
  np.testing.assert_allclose(dual.numpy(), np_dual, rtol=1e-5)


def test_decoupled_kls_and_weighted_maximum_likelihood():
  rng = np.random.default_rng(2)
  mu_t, sd_t = rng.normal(size=(3, 2)), rng.uniform(0.5, 1.0, (3, 2))
  mu_o, sd_o = mu_t + 0.1, sd_t * 1.2
  samples = rng.normal(size=(4, 3, 2))
  weights = rng.dirichlet(np.ones(4), size=3).T  # [M, B]
  f = lambda x: tf.constant(x, tf.float32)
  online = tfd.MultivariateNormalDiag(f(mu_o), f(sd_o))
  target = tfd.MultivariateNormalDiag(f(mu_t), f(sd_t))
  loss, dual, kl_mean, kl_stddev = losses.mpo_weighted_maximum_likelihood(
      f(samples), f(weights), online, target, f(2.0), f(3.0), 5e-3, 1e-5)
  # Decoupled KLs: mean part keeps the target's σ, covariance part its μ.
  np.testing.assert_allclose(kl_mean.numpy(),
                             np_kl_diag(mu_t, sd_t, mu_o, sd_t), rtol=1e-4)
  np.testing.assert_allclose(kl_stddev.numpy(),
                             np_kl_diag(mu_t, sd_t, mu_t, sd_o), rtol=1e-4)
  # Eq. 10 with both constraints: −Σ_j w_j log π + α_μ KL_μ + α_Σ KL_Σ.
  ce_mean = -np.mean(np.sum(weights * np_log_prob(samples, mu_o, sd_t), 0))
  ce_std = -np.mean(np.sum(weights * np_log_prob(samples, mu_t, sd_o), 0))
  expected = (ce_mean + ce_std + 2.0 * kl_mean.numpy().mean()
              + 3.0 * kl_stddev.numpy().mean())
  np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-4)
  np.testing.assert_allclose(
      dual.numpy(), 2.0 * (5e-3 - kl_mean.numpy().mean())
      + 3.0 * (1e-5 - kl_stddev.numpy().mean()), rtol=1e-4)


def test_policy_evaluation_td0():
  q = np.array([1., 2., 3.], np.float32)
  r = np.array([0.5, 0., 1.], np.float32)
  d = np.array([1., 0., 1.], np.float32)
  v = np.array([2., 5., -1.], np.float32)
  got = losses.policy_evaluation_td0(*map(tf.constant, (q, r, d, v)), 0.99)
  np.testing.assert_allclose(got.numpy(),
                             0.5 * np.mean((r + 0.99 * d * v - q)**2), rtol=1e-6)



def test_policy_evaluation_n_step():
  q = np.array([1., 2., 3.], np.float32)
  returns = np.array([0.5, 4., -1.], np.float32)
  got = losses.policy_evaluation_n_step(tf.constant(q), tf.constant(returns))
  np.testing.assert_allclose(got.numpy(), 0.5 * np.mean((returns - q)**2),
                             rtol=1e-6)


@pytest.mark.parametrize('variant', ['abm_mpo', 'bm_mpo'])
def test_n_step_critic_targets_are_the_snippets_returns(variant):
  """With policy_evaluation='n_step' the critic of every row backs up toward
  R(τ_t:N) (eq. 4), the rewards of the rest of its snippet; TD(0) would back
  up r_t + γ V̂(s_{t+1}). The episodes end at the snippets' last transition,
  so R is the NumPy reference's discounted sum of the data's rewards."""
  rng = np.random.default_rng(3)
  b, n = 8, 4
  batch = dict(
      observation=rng.normal(size=(b, n, 2)).astype(np.float32),
      action=rng.uniform(-1, 1, size=(b, n, 1)).astype(np.float32),
      reward=rng.normal(size=(b, n)).astype(np.float32),
      discount=np.ones((b, n), np.float32))
  batch['discount'][:, n - 2:] = 0.  # the last transition ends the episode
  tf.random.set_seed(0)
  config = ABMConfig(**VARIANTS[variant], batch_size=b,
                     policy_layer_sizes=(8,), prior_layer_sizes=(8,),
                     critic_layer_sizes=(8,), num_action_samples=4,
                     policy_evaluation='n_step', jit_compile=False)
  learner = ABMLearner(
      networks.make_gaussian_policy(1, (8,)),
      networks.make_gaussian_policy(1, (8,), name='prior'),
      networks.make_critic((8,)), iter([]), observation_size=2,
      action_size=1, config=config, logger=loggers.NoOpLogger())
  q = learner._critic(tf.constant(batch['observation'][:, :-1].reshape(-1, 2)),
                      tf.constant(batch['action'][:, :-1].reshape(-1, 1)))
  returns = np_n_step_returns(batch['reward'][:, :-1],
                              batch['discount'][:, :-1], np.zeros(b),
                              config.discount)
  stats = learner._step_fn({k: tf.constant(x) for k, x in batch.items()})
  np.testing.assert_allclose(
      stats['critic_loss'].numpy(),
      0.5 * np.mean((returns.reshape(-1) - q.numpy())**2), rtol=1e-5)


def test_unknown_policy_evaluation_is_refused():
  with pytest.raises(ValueError, match='policy_evaluation'):
    _learner('abm_mpo', seed=0, steps=0, policy_evaluation='retrace')

def test_svg_loss_and_dual():
  q = tf.constant([[1., 3.], [2., 0.]])
  kl = tf.constant([0.1, 0.5])
  loss, dual = shared_losses.constrained_policy_loss(q, kl, tf.constant(2.0),
                                                     0.2)
  np.testing.assert_allclose(loss.numpy(), -1.5 + 2.0 * 0.3, rtol=1e-6)
  np.testing.assert_allclose(dual.numpy(), 2.0 * (0.2 - 0.3), rtol=1e-6)


# --- learners on a one-step offline problem with conflicting data ---------------


def _bandit_batches(rng, batch_size):
  """One-step task: r = 1 − ‖a − 0.5‖²... data hold a good and a bad mode.

  Actions come half from a good mode around +0.5 and half from a bad mode
  around −0.5; the reward is high near +0.5. Snippets have 2 rows and the
  episode ends after one step (discount 0).
  """
  while True:
    states = rng.uniform(-1, 1, size=(batch_size, 2, 2)).astype(np.float32)
    good = rng.random(batch_size) < 0.5
    mode = np.where(good, 0.5, -0.5)[:, None]
    actions = np.zeros((batch_size, 2, 1), np.float32)
    actions[:, 0] = mode + 0.1 * rng.standard_normal((batch_size, 1))
    reward = np.zeros((batch_size, 2), np.float32)
    reward[:, 0] = 1.0 - 4.0 * (actions[:, 0, 0] - 0.5)**2
    discount = np.zeros((batch_size, 2), np.float32)
    yield {'observation': tf.constant(states), 'action': tf.constant(actions),
           'reward': tf.constant(reward), 'discount': tf.constant(discount)}


def _learner(variant, seed, steps, **overrides):
  tf.random.set_seed(seed)
  config = ABMConfig(**VARIANTS[variant], batch_size=128, learning_rate=1e-3,
                     policy_layer_sizes=(32, 32), prior_layer_sizes=(32, 32),
                     critic_layer_sizes=(64, 64), num_action_samples=10,
                     target_update_period=20, **overrides)
  learner = ABMLearner(
      networks.make_gaussian_policy(1, config.policy_layer_sizes),
      networks.make_gaussian_policy(1, config.prior_layer_sizes, name='prior'),
      networks.make_critic(config.critic_layer_sizes),
      _bandit_batches(np.random.default_rng(seed), 128), observation_size=2,
      action_size=1, config=config, logger=loggers.NoOpLogger())
  learner.run(num_steps=steps)
  return learner


def _mean_and_mass(network, good=0.5):
  states = tf.constant(np.random.default_rng(9).uniform(-1, 1, (256, 2)),
                       tf.float32)
  distribution = network(states)
  samples = distribution.sample(50).numpy()
  return (float(distribution.mean().numpy().mean()),
          float(np.mean(np.abs(samples - good) < 0.3)))


@pytest.fixture(scope='module')
def bandit_runs():
  # Uncompiled: XLA's compile costs more than it saves in 600 small steps.
  return {name: _learner(name, seed=0, steps=600, jit_compile=False)
          for name in ('abm_mpo', 'bm_mpo')}


def test_bm_prior_covers_both_modes_abm_prior_the_good_one(bandit_runs):
  bm_mean, bm_good = _mean_and_mass(bandit_runs['bm_mpo']._prior)
  abm_mean, abm_good = _mean_and_mass(bandit_runs['abm_mpo']._prior)
  assert abs(bm_mean) < 0.2  # a broad Gaussian over both modes
  assert abm_mean > 0.35 and abm_good > 0.7
  assert abm_good > bm_good + 0.3


def test_abm_mpo_policy_beats_bm_mpo_policy(bandit_runs):
  reward = lambda a: 1.0 - 4.0 * (a - 0.5)**2
  abm_mean, _ = _mean_and_mass(bandit_runs['abm_mpo']._policy)
  bm_mean, _ = _mean_and_mass(bandit_runs['bm_mpo']._policy)
  assert reward(abm_mean) > reward(bm_mean) + 0.2


def test_target_networks_copy_the_online_ones_every_period():
  """target_update_period = 20: the targets lag until step 20, then equal
  the online networks (the copy is a tf.cond in the traced update)."""
  learner = _learner('abm_mpo', seed=2, steps=19, jit_compile=False)

  def same():
    return [all(np.array_equal(a.numpy(), b.numpy())
                for a, b in zip(online.variables, target.variables))
            for online, target in ((learner._policy, learner._target_policy),
                                   (learner._prior, learner._target_prior),
                                   (learner._critic, learner._target_critic))]

  assert same() == [False] * 3
  learner.run(num_steps=20)
  assert same() == [True] * 3


def test_prior_min_variance_floors_the_prior_alone():
  """The prior's scale never falls below √prior_min_variance; the policy
  keeps min_variance's floor (the networks as the program builds them)."""
  config = ABMConfig(prior_min_variance=0.25, policy_layer_sizes=(8,),
                     prior_layer_sizes=(8,))
  states = tf.constant(np.random.default_rng(0).normal(size=(16, 4)),
                       tf.float32)
  floors = {}
  for key in ('policy', 'prior'):
    network = registry.get('abm_mpo').make_policy(
        config, key, builders.NetworkSpec(observation_size=4, action_size=2))
    network(states)
    head, = [m for m in network.submodules
             if isinstance(m, acme_networks.MultivariateNormalDiagHead)]
    scale_layer = head._scale_layer
    scale_layer.w.assign(tf.zeros_like(scale_layer.w))
    scale_layer.b.assign(tf.fill(scale_layer.b.shape, -50.))  # softplus → 0
    floors[key] = network(states).stddev().numpy()
  np.testing.assert_allclose(floors['prior'], 0.5, rtol=1e-5)
  np.testing.assert_allclose(floors['policy'], np.sqrt(config.min_variance),
                             rtol=1e-5)


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_every_variant_steps_and_keeps_duals_positive(variant):
  learner = _learner(variant, seed=1, steps=5, jit_compile=False)
  assert learner.num_steps == 5
  for dual in (learner._temperature, learner._alpha_mean,
               learner._alpha_stddev, learner._svg_eta):
    assert dual.numpy() >= 1e-3


def _measured(learner, keys, batches=20):
  it = _bandit_batches(np.random.default_rng(5), 128)
  stats = [learner._step_fn(next(it)) for _ in range(batches)]
  return {k: float(np.mean([s[k].numpy() for s in stats])) for k in keys}


def test_mpo_duals_hold_the_trust_region_near_its_targets(bandit_runs):
  config = ABMConfig()
  got = _measured(bandit_runs['abm_mpo'],
                  ['kl_mean', 'kl_stddev', 'alpha_mean', 'temperature'])
  assert got['kl_mean'] < 3 * config.epsilon_mean
  assert got['kl_stddev'] < 3 * config.epsilon_stddev
  assert got['alpha_mean'] > config.init_alpha  # pushed up by a violation
  assert got['temperature'] < config.init_temperature


def test_svg_dual_holds_the_kl_to_the_prior_near_epsilon():
  learner = _learner('abm_svg', seed=0, steps=600, dual_learning_rate=1e-2)
  got = _measured(learner, ['kl_to_prior'])
  epsilon = ABMConfig().svg_epsilon
  assert 0.5 * epsilon < got['kl_to_prior'] < 1.5 * epsilon


def test_per_behaviour_means_match_numpy():
  rng = np.random.default_rng(3)
  values = rng.normal(size=200).astype(np.float32)
  tags = rng.integers(-1, 3, size=200).astype(np.int32)  # −1: no tag
  tags[tags == 2] = 0  # tag 2 has no rows in this batch
  got = shared_losses.per_behaviour_means(tf.constant(values),
                                          tf.constant(tags), 3).numpy()
  want = [values[tags == k].mean() for k in range(2)] + [0.]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_e_step_entropy_is_the_weights_entropy():
  """Logged e_step_entropy = mean over states of −Σ_j w_j log w_j, w the
  softmax of Q/η over the M samples (eq. 8), computed here in NumPy."""
  learner = _learner('mpo', seed=4, steps=0, jit_compile=False)
  q = np.random.default_rng(4).normal(size=(10, 32)).astype(np.float32)
  e_step = learner_lib.EStep(
      tf.zeros([32, 2]), tf.zeros([10, 32, 1]), tf.constant(q),
      learner._target_policy(tf.zeros([32, 2])))
  got = learner._mpo_improvement(e_step).stats['e_step_entropy'].numpy()
  eta = ABMConfig().init_temperature
  w = np.exp(q / eta - (q / eta).max(axis=0))
  w /= w.sum(axis=0)
  np.testing.assert_allclose(got, np.mean(-(w * np.log(w)).sum(axis=0)),
                             rtol=1e-4)


# Short-horizon conflicting data: reacher-easy episodes cut at 50 steps,
# half reaching for the target (reward ≈ 30 an episode), half for the point
# opposite it (reward 0); the finger gets there in about 20 steps.
_SHORT_STEPS = 50


@pytest.fixture(scope='module')
def conflicting_reacher(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp('data') / 'reacher')
  generate.generate(
      'control:reacher-easy', directory, episodes_per_behaviour=20,
      behaviours=generate.default_behaviours(
          [0.1], random=False, controllers=['reach', 'reach_mirrored']),
      seed=0, max_steps_per_episode=_SHORT_STEPS, progress=None)
  tags = episodes_lib.behaviour_tags(directory)
  assert tags == ['reach-noise0.1', 'reach_mirrored-noise0.1']
  return tags, [(episodes_lib.read_episode(p),
                 tags.index(episodes_lib.episode_behaviour(p)))
                for p in episodes_lib.list_episodes(directory)]


def _episode_snippets(data, rng, batch_size, length=2):
  """Uniform N-row snippets of the episodes, as restorers insert them, with
  their behaviour tag index per row."""
  fields = ('observation', 'action', 'reward', 'discount')
  while True:
    batch = {name: [] for name in fields + ('behaviour',)}
    for i in rng.integers(len(data), size=batch_size):
      episode, tag = data[i]
      start = rng.integers(len(episode.observation) - length + 1)
      for name in fields:
        batch[name].append(getattr(episode, name)[start:start + length])
      batch['behaviour'].append(np.full(length, tag, np.int32))
    yield {name: tf.constant(np.stack(x)) for name, x in batch.items()}


class _Rows(loggers.Logger):
  def __init__(self):
    self.rows = []

  def write(self, data):
    self.rows.append(data)

  def close(self):
    pass


def test_abm_prior_filters_out_the_conflicting_behaviour_bm_does_not(
    conflicting_reacher):
  """ABM paper §3.2 on a short horizon: the ABM weights keep the reaching
  snippets and drop most of the others, per behaviour tag as the learner
  logs it, so the ABM prior prefers the reaching actions by far more than
  BM's (a prior of the whole mixture) does."""
  tags, data = conflicting_reacher
  good, bad = tags
  gaps, logged = {}, {}
  for variant in ('abm_mpo', 'bm_mpo'):
    tf.random.set_seed(0)
    config = ABMConfig(**VARIANTS[variant], batch_size=128,
                       learning_rate=1e-3, policy_layer_sizes=(64, 64),
                       prior_layer_sizes=(64, 64), critic_layer_sizes=(64, 64),
                       num_action_samples=10, target_update_period=20,
                       jit_compile=False)
    rows = _Rows()
    learner = ABMLearner(
        networks.make_gaussian_policy(2, config.policy_layer_sizes),
        networks.make_gaussian_policy(2, config.prior_layer_sizes,
                                      name='prior'),
        networks.make_critic(config.critic_layer_sizes),
        _episode_snippets(data, np.random.default_rng(0), 128),
        observation_size=6, action_size=2, config=config, logger=rows,
        behaviour_tags=tags)
    learner.run(num_steps=600)
    logged[variant] = {key: np.mean([float(r[key]) for r in rows.rows[-100:]])
                       for key in rows.rows[-1] if key.endswith(tuple(tags))}
    # The prior's mean log-likelihood of each behaviour's own transitions.
    logp = {}
    for tag in (0, 1):
      episodes_of = [e for e, t in data if t == tag]
      states = np.concatenate([e.observation[:-1] for e in episodes_of])
      actions = np.concatenate([e.action[:-1] for e in episodes_of])
      logp[tag] = float(tf.reduce_mean(learner._prior(
          tf.constant(states)).log_prob(actions)))
    gaps[variant] = logp[0] - logp[1]
  abm = logged['abm_mpo']
  assert abm[f'abm_weight_{good}'] > 0.8
  assert abm[f'abm_weight_{bad}'] < 0.5
  assert f'abm_weight_{good}' not in logged['bm_mpo']  # BM weighs nothing
  assert set(logged['bm_mpo']) == {f'prior_logp_{good}', f'prior_logp_{bad}'}
  assert gaps['abm_mpo'] > gaps['bm_mpo'] + 0.3, gaps
