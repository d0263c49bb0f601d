"""Evaluators: pull a learner's policy, run episodes with its mean action.

An evaluator loops: fetch the latest variables, read the learner's step from
the counter, run `num_episodes` episodes acting with the policy's mean, log
the average return beside the learner step (for a multi-task environment,
`num_episodes` per task, each task's mean as `return_<task>` and their mean
as the evaluation return) (and, in an offline→online run,
whether the online phase had begun: `online`). When the learner has finished
(the counter says so), it evaluates the final variables once more, logs that
as the final evaluation and returns. A run whose whole budget is shorter
than one period between evaluations gets the final evaluation only.
"""

import time
from typing import Callable, Dict, Optional

import acme
from acme import core
from acme import wrappers
from acme.tf import utils as tf2_utils
from acme.tf import variable_utils
from acme.utils import counting
from acme.utils import loggers
import dm_env
import numpy as np
import sonnet as snt
import tensorflow as tf

from abmrl.agents import networks


class _EndOnNonFinite(wrappers.EnvironmentWrapper):
  """The evaluation environment, but a NaN or infinite action (or physics
  that blow up on one) ends the episode at once instead of killing the
  evaluator (MuJoCo warns on bad controls and dm_control raises
  PhysicsError). `failed` says whether the last episode ended so."""

  def __init__(self, environment: dm_env.Environment):
    super().__init__(environment)
    self._last: Optional[dm_env.TimeStep] = None
    self.failed = False

  def reset(self) -> dm_env.TimeStep:
    self.failed = False
    self._last = self._environment.reset()
    return self._last

  def step(self, action) -> dm_env.TimeStep:
    if np.all(np.isfinite(action)):
      try:
        self._last = self._environment.step(action)
        return self._last
      except Exception as e:  # pylint: disable=broad-except
        if type(e).__name__ != 'PhysicsError':
          raise
    self.failed = True
    return dm_env.truncation(0.0, self._last.observation)


class _MeanActor(core.Actor):
  """Acts with the policy's mean, one observation at a time. Acme's
  FeedForwardActor does the same through a plain tf.function, whose every
  call leaks in TF 2.8 (networks.acting_function says how much)."""

  def __init__(self, policy: snt.Module):
    mean = networks.MeanAction(policy)
    self._act = networks.acting_function(lambda o: mean(o[None])[0],
                                         policy)

  def select_action(self, observation) -> np.ndarray:
    return self._act(tf.constant(observation, tf.float32)).numpy()

  def observe_first(self, timestep: dm_env.TimeStep) -> None:
    pass

  def observe(self, action, next_timestep: dm_env.TimeStep) -> None:
    pass

  def update(self, wait: bool = False) -> None:
    pass


class Evaluator:
  """Runs episodes with the mean action of a learner's current policy."""

  def __init__(self,
               environment_factories: Dict[str, Callable[[], dm_env.Environment]],
               policy_factory: Callable[[], snt.Module],
               variable_source: core.VariableSource,
               counter: counting.Counter,
               logger: loggers.Logger,
               num_episodes: int = 5,
               variable_key: str = 'policy',
               min_learner_steps_between: int = 0,
               poll_seconds: float = 1.0,
               should_stop: Optional[Callable[[], bool]] = None,
               phase_switch_step: Optional[int] = None,
               learner_steps_budget: Optional[int] = None,
               score: Optional[Callable[[float], Optional[float]]] = None):
    """`score`: the environment's normalised score of a mean return (D4RL's
    for the gym tasks), logged beside it as `normalised_score`."""
    environments = {task: _EndOnNonFinite(make()) for task, make in
                    environment_factories.items()}
    self._environments = environments
    policy = policy_factory()
    observation_spec = next(iter(environments.values())).observation_spec()
    tf2_utils.create_variables(policy, [observation_spec])
    self._variable_client = variable_utils.VariableClient(
        variable_source, {variable_key: policy.variables})
    actor = _MeanActor(policy)
    self._loops = {task: acme.EnvironmentLoop(
        environment, actor, counter=counting.Counter(),
        logger=loggers.NoOpLogger(), should_update=False)
                   for task, environment in environments.items()}
    self._counter = counter
    self._logger = logger
    self._num_episodes = num_episodes
    self._min_between = min_learner_steps_between
    # The first periodic evaluation (at the first learner step) is the
    # untrained reference of a curve; a run shorter than one period has no
    # curve, and on a slow machine that evaluation is most of a short run.
    self._periodic = (learner_steps_budget is None or
                      learner_steps_budget >= min_learner_steps_between)
    self._poll_seconds = poll_seconds
    self._should_stop = should_stop or (lambda: False)
    self._phase_switch_step = phase_switch_step
    self._score = score

  def evaluate(self, final: bool = False) -> float:
    """Fetches the latest variables, runs the episodes, logs the mean return."""
    learner_steps = self._counter.get_counts().get('learner_steps', 0)
    self._variable_client.update_and_wait()
    returns, failed = {}, 0
    for task, loop in self._loops.items():
      returns[task] = []
      for _ in range(self._num_episodes):
        episode_return = float(loop.run_episode()['episode_return'])
        if self._environments[task].failed:  # a NaN action: scores nothing
          episode_return, failed = 0.0, failed + 1
        returns[task].append(episode_return)
    if failed:
      print(f'[evaluator] {failed} of {self._num_episodes * len(returns)} '
            f'episode(s) at learner step {learner_steps} ended on a '
            'non-finite action and score 0', flush=True)
    every_return = sum(returns.values(), [])
    mean_return = float(np.mean(every_return))
    per_task = ({} if list(returns) == [''] else
                {f'return_{task}': float(np.mean(task_returns))
                 for task, task_returns in returns.items()})
    self._logger.write({
        'learner_steps': learner_steps,
        'evaluation_return': mean_return,
        'evaluation_return_std': float(np.std(every_return)),
        **({} if self._score is None else
           {'normalised_score': self._score(mean_return)}),
        **per_task,
        'episodes': self._num_episodes,
        'nonfinite_episodes': failed,
        'final': int(final),
        **({} if self._phase_switch_step is None else
           {'online': int(learner_steps > self._phase_switch_step)}),
    })
    return mean_return

  def run(self) -> float:
    """Evaluates periodically until the learner finishes; returns the final.

    Returns NaN if stopped before the learner finished.
    """
    last = None
    while not self._should_stop():
      counts = self._counter.get_counts()
      if counts.get('learner_finished', 0):
        result = self.evaluate(final=True)
        self._logger.close()
        self._counter.increment(evaluator_final_evaluations=1)
        return result
      steps = counts.get('learner_steps', 0)
      if self._periodic and steps > 0 and (
          last is None or steps - last >= self._min_between):
        self.evaluate()
        last = steps
      else:
        time.sleep(self._poll_seconds)
    return float('nan')


def record_episode(environment: dm_env.Environment, policy: snt.Module,
                   render: Callable[[dm_env.Environment], np.ndarray],
                   frame_every: int = 1):
  """One episode acting with the policy's mean, as evaluators do; returns
  (frames rendered every `frame_every` steps, the episode's return)."""
  actor = _MeanActor(policy)
  timestep = environment.reset()
  frames, total, steps = [render(environment)], 0., 0
  while not timestep.last():
    timestep = environment.step(actor.select_action(timestep.observation))
    total += float(timestep.reward or 0.)
    steps += 1
    if steps % frame_every == 0 or timestep.last():
      frames.append(render(environment))
  return frames, total
