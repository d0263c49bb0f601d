"""Networks shared by every learner (ABM paper, Table 1).

Policy and prior: a 256-256 MLP torso (elu; layer norm, then tanh, on the
first layer: Acme's LayerNormMLP) and a diagonal Gaussian head with no tanh
on the mean and minimum variance 0.01 (so minimum standard deviation 0.1).
"""

from typing import Callable, Optional, Sequence

from acme.tf import networks as acme_networks
from acme.tf.networks import continuous as acme_continuous
import numpy as np
import sonnet as snt
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

MIN_VARIANCE = 0.01


def make_gaussian_policy(action_size: int,
                         layer_sizes: Sequence[int] = (256, 256),
                         min_variance: float = MIN_VARIANCE,
                         init_scale: float = 0.7,
                         name: str = 'policy',
                         num_tasks: Optional[int] = None) -> snt.Module:
  """observation [B, O] -> MultivariateNormalDiag over actions [B, A]; with
  `num_tasks`, a `TaskConditionedPolicy`."""
  if num_tasks:
    return TaskConditionedPolicy(action_size, num_tasks, layer_sizes,
                                 min_variance, init_scale, name=name)
  return snt.Sequential([
      acme_networks.LayerNormMLP(list(layer_sizes), activate_final=True),
      acme_networks.MultivariateNormalDiagHead(
          action_size, init_scale=init_scale,
          min_scale=float(np.sqrt(min_variance))),
  ], name=name)


def acting_function(act: Callable[[tf.Tensor], tf.Tensor],
                    network: snt.Module):
  """`act` (one observation -> one action, by `network`) as a TF function
  for a node that acts step by step (evaluators, online actors, videos):
  XLA-compiled, unless `network` is task-conditioned.

  Not a plain `tf.function` (as Acme's FeedForwardActor uses): in TF 2.8
  each call of one keeps ≈ 0.4 KB of host memory (the eager context's
  per-call rendezvous, tensorflow#50765, fixed in TF 2.12): ≈ 56 MB an
  hour for an evaluator (docs/results/soak_before_fix.md). An XLA-compiled call keeps
  nothing and takes 1.08× as long; eager calls take 15× as long and grow
  too (docs/results/acting_memory.md). A task-conditioned network
  partitions its rows by task, which XLA compiles anew for each pattern it
  meets (a multi-task collection test took 5× as long), so it keeps the
  plain tf.function, and its leak."""
  task_conditioned = any(
      isinstance(m, (TaskConditionedPolicy, TaskConditionedMLP))
      for m in (network,) + tuple(network.submodules))
  return tf.function(act, jit_compile=not task_conditioned, autograph=False)


class Normalised(snt.Module):
  """network((observation − mean) / std, *rest): observations standardised
  with fixed statistics of the run's dataset (datasets/statistics.py), the
  first thing every network of a run does when the run asks for it.

  The statistics are constants, not variables, so the wrapped network has
  the same variables as the bare one and evaluators fill it from the
  learner as before; every node reads them from the run's directory.
  (Acme 0.4's observation normalisation, `acme.jax.running_statistics`, is
  JAX-only and running; offline data allow fixed statistics.)
  """

  def __init__(self, network: snt.Module, mean: np.ndarray, std: np.ndarray,
               name: Optional[str] = None):
    super().__init__(name=name or network.name)
    self._network = network
    self._mean = tf.constant(np.asarray(mean, np.float32))
    self._std = tf.constant(np.asarray(std, np.float32))

  def __call__(self, observation: tf.Tensor, *rest):
    return self._network((observation - self._mean) / self._std, *rest)


class MeanAction(snt.Module):
  """Acts with the mean of a stochastic policy (for evaluation)."""

  def __init__(self, policy: snt.Module, name: str = 'mean_action'):
    super().__init__(name=name)
    self._policy = policy

  def __call__(self, observation: tf.Tensor) -> tf.Tensor:
    return self._policy(observation).mean()


def make_critic(layer_sizes: Sequence[int] = (256, 256, 256),
                num_tasks: Optional[int] = None) -> snt.Module:
  """(observation [B, O], action [B, A]) -> Q [B] (Table 1: 256-256-256);
  with `num_tasks`, a `TaskConditionedCritic`."""
  if num_tasks:
    return TaskConditionedCritic(num_tasks, layer_sizes)
  return acme_networks.CriticMultiplexer(
      critic_network=snt.Sequential([
          acme_networks.LayerNormMLP(list(layer_sizes), activate_final=True),
          acme_networks.NearZeroInitializedLinear(1),
          lambda q: tf.squeeze(q, axis=-1),
      ]))


def make_value_network(layer_sizes: Sequence[int] = (128, 64),
                       num_tasks: Optional[int] = None) -> snt.Module:
  """observation [B, O] -> V [B] (AWR's state-value network)."""
  if num_tasks:
    return TaskConditionedCritic(num_tasks, layer_sizes, name='value')
  return snt.Sequential([
      acme_networks.LayerNormMLP(list(layer_sizes), activate_final=True),
      acme_networks.NearZeroInitializedLinear(1),
      lambda v: tf.squeeze(v, axis=-1),
  ], name='value')


# --- Task-conditioned networks (ABM paper §5.2, Table 5) ----------------------
#
# A multi-task environment's observation ends with a one-hot task input over
# K tasks (environments/sawyer/multitask.py). These networks run a shared
# torso — all layers but the last of `layer_sizes` — on the observation
# without it, then the task's own last layer and output: Table 5's policy
# 200 → 300 per task is layer_sizes (200, 300), its Q 400 → 400 per task
# (400, 400).


def split_task(observation: tf.Tensor, num_tasks: int):
  """[R, O + K] -> (observation [R, O], task index [R] int32)."""
  return (observation[:, :-num_tasks],
          tf.argmax(observation[:, -num_tasks:], axis=-1, output_type=tf.int32))


class PerTask(snt.Module):
  """Row r goes through module task[r]: rows are partitioned by task
  (tf.dynamic_partition, which XLA compiles), so each row pays for its own
  task's layers only, not all K."""

  def __init__(self, modules: Sequence[snt.Module], name: str = 'per_task'):
    super().__init__(name=name)
    self._modules = list(modules)

  def __call__(self, inputs: tf.Tensor, task: tf.Tensor) -> tf.Tensor:
    k = len(self._modules)
    parts = tf.dynamic_partition(inputs, task, k)
    rows = tf.dynamic_partition(tf.range(tf.shape(inputs)[0]), task, k)
    return tf.dynamic_stitch(
        rows, [module(part) for module, part in zip(self._modules, parts)])


class _TaskHead(snt.Module):
  """One task's last hidden layer (elu) and output layer."""

  def __init__(self, hidden_size: int, make_output: Callable[[], snt.Module],
               name: str):
    super().__init__(name=name)
    self._hidden = snt.Linear(hidden_size,
                              w_init=acme_continuous.uniform_initializer)
    self._output = make_output()

  def __call__(self, inputs: tf.Tensor) -> tf.Tensor:
    return self._output(tf.nn.elu(self._hidden(inputs)))


def _check_layers(layer_sizes: Sequence[int]) -> None:
  if len(layer_sizes) < 2:
    raise ValueError('a task-conditioned network needs a shared torso and a '
                     f'per-task layer: at least 2 layer sizes, got '
                     f'{tuple(layer_sizes)}')


class TaskConditionedPolicy(snt.Module):
  """observation [R, O + K] -> MultivariateNormalDiag over actions [R, A].

  The Gaussian's parameters are Acme's `MultivariateNormalDiagHead`'s (mean
  and softplus scale rescaled to `init_scale` at zero, plus the minimum),
  computed by each task's own output layer.
  """

  def __init__(self, action_size: int, num_tasks: int,
               layer_sizes: Sequence[int] = (200, 300),
               min_variance: float = MIN_VARIANCE, init_scale: float = 0.7,
               name: str = 'policy'):
    super().__init__(name=name)
    _check_layers(layer_sizes)
    self._num_tasks = num_tasks
    self._action_size = action_size
    self._init_scale = init_scale
    self._min_scale = float(np.sqrt(min_variance))
    self._torso = acme_networks.LayerNormMLP(list(layer_sizes[:-1]),
                                             activate_final=True)
    self._heads = PerTask([_TaskHead(
        layer_sizes[-1], lambda: snt.Linear(
            2 * action_size, w_init=tf.initializers.VarianceScaling(1e-4)),
        name=f'task_{k}') for k in range(num_tasks)])

  def __call__(self, observation: tf.Tensor) -> tfd.Distribution:
    observation, task = split_task(observation, self._num_tasks)
    params = self._heads(self._torso(observation), task)
    mean, scale = tf.split(params, 2, axis=-1)
    scale = (tf.nn.softplus(scale) * self._init_scale / tf.nn.softplus(0.)
             + self._min_scale)
    return tfd.MultivariateNormalDiag(loc=mean, scale_diag=scale)


class TaskConditionedMLP(snt.Module):
  """(observation [R, O + K], *inputs) -> [R, output_size]: the shared torso
  on the observation without its task input, joined with the other inputs
  (an action, a latent), then the task's own last layer and output."""

  def __init__(self, output_size: int, num_tasks: int,
               layer_sizes: Sequence[int] = (400, 400),
               make_output: Optional[Callable[[], snt.Module]] = None,
               name: str = 'mlp'):
    super().__init__(name=name)
    _check_layers(layer_sizes)
    self._num_tasks = num_tasks
    self._torso = acme_networks.LayerNormMLP(list(layer_sizes[:-1]),
                                             activate_final=True)
    make_output = make_output or (lambda: snt.Linear(output_size))
    self._heads = PerTask([_TaskHead(layer_sizes[-1], make_output,
                                     name=f'task_{k}')
                           for k in range(num_tasks)])

  def __call__(self, observation: tf.Tensor, *inputs) -> tf.Tensor:
    observation, task = split_task(observation, self._num_tasks)
    joined = tf.concat([observation] + [tf.cast(x, tf.float32)
                                        for x in inputs], -1)
    return self._heads(self._torso(joined), task)


class TaskConditionedCritic(TaskConditionedMLP):
  """(observation [R, O + K], action [R, A]) -> Q [R]; with no action, a
  state-value network observation -> V [R]."""

  def __init__(self, num_tasks: int,
               layer_sizes: Sequence[int] = (400, 400), name: str = 'critic'):
    super().__init__(1, num_tasks, layer_sizes,
                     lambda: acme_networks.NearZeroInitializedLinear(1),
                     name=name)

  def __call__(self, observation: tf.Tensor,
               action: Optional[tf.Tensor] = None) -> tf.Tensor:
    inputs = () if action is None else (action,)
    return tf.squeeze(super().__call__(observation, *inputs), axis=-1)


class _MLP(snt.Module):
  """(observation [R, O], *inputs) -> [R, output_size]: the shared torso
  (Acme's LayerNormMLP) on the joined inputs, then a linear output."""

  def __init__(self, output_size: int, layer_sizes: Sequence[int], name: str):
    super().__init__(name=name)
    self._torso = acme_networks.LayerNormMLP(list(layer_sizes),
                                             activate_final=True)
    self._output = snt.Linear(output_size)

  def __call__(self, *inputs) -> tf.Tensor:
    return self._output(self._torso(
        tf.concat([tf.cast(x, tf.float32) for x in inputs], -1)))


def make_mlp(output_size: int, layer_sizes: Sequence[int],
             num_tasks: Optional[int] = None, name: str = 'mlp') -> snt.Module:
  """(observation, *inputs) -> [R, output_size], the shared architecture for
  networks other than policies and critics (BCQ's VAE and perturbation);
  with `num_tasks`, a `TaskConditionedMLP`."""
  if num_tasks:
    return TaskConditionedMLP(output_size, num_tasks, layer_sizes, name=name)
  return _MLP(output_size, layer_sizes, name=name)
