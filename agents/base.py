"""What every learner shares: the step loop, counting, logging, saving.

A learner subclass calls `_init_loop` (dataset iterator, counter, logger,
step budget), sets `_step_fn` (a compiled step returning metrics; or
overrides `_train_step` when a step is more than one compiled call),
`_num_steps` (a tf.Variable, checkpointed), `_variables` (name -> variables
served to evaluators) and optionally `_checkpointer` (`_make_checkpointer`).

Saving: every `checkpoint_every` minutes during the loop, at its end, and on
`stop()` (another thread: the node's stop request), which waits for an
update in flight but not for a batch (a learner waiting on a replay that
no longer feeds it still saves). A step whose metrics are not finite ends
the loop with NonFiniteLoss and leaves the last checkpoint as it was: no
save ever writes non-finite variables.
"""

import json
import os
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import acme
from acme.tf import savers as tf2_savers
from acme.tf import utils as tf2_utils
from acme.utils import counting
from acme.utils import loggers
import numpy as np
import tensorflow as tf


def non_finite(metrics: Dict[str, Any]) -> Optional[str]:
  """The first metric (losses first) that is NaN or infinite, else None."""
  names = sorted(metrics, key=lambda name: ('loss' not in name, name))
  for name in names:
    value = np.asarray(metrics[name])
    if value.dtype.kind == 'f' and not np.all(np.isfinite(value)):
      return name
  return None


def compiled(function, jit_compile: bool):
  """A learner's update as one TF graph (XLA-compiled if `jit_compile`).

  Without AutoGraph: the updates' only branches are on Python values
  (which variant, which prior), so graph building needs no source
  conversion, and skipping it shortens every learner's first step on a
  slow 2-core machine (tracing it: MPO 15.5 → 6.0 s, ABM+MPO 10.7 →
  8.1 s). A branch on a tensor must then be written as `tf.cond`; a
  Python `if` on one fails loudly when the graph is traced.
  """
  return tf.function(function, jit_compile=jit_compile, autograph=False)


def copy_networks(pairs) -> tf.Tensor:
  """target ← source, variable by variable, for each (source, target)
  network pair; True (a branch of `copy_every`'s tf.cond)."""
  for source, target in pairs:
    for s, t in zip(source.variables, target.variables):
      t.assign(s)
  return tf.constant(True)


def copy_every(step: tf.Variable, period: int, pairs) -> None:
  """Inside a traced step: copies the target networks every `period`
  steps (ABM paper Table 1's period 200, which BCQ and BEAR follow here)."""
  tf.cond(tf.equal(step % period, 0), lambda: copy_networks(pairs),
          lambda: tf.constant(False))


# Beside the checkpoint: the step it holds and whether the run finished
# (read without TensorFlow: launch/run.py).
STATE_FILE = 'state.json'


class NonFiniteLoss(RuntimeError):
  """A learner step whose metrics are NaN or infinite."""


def read_state(checkpoint_dir: str) -> Dict[str, Any]:
  """{'learner_steps', 'finished'} of the checkpoint in `checkpoint_dir`
  (<run_dir>/checkpoints/learner), or {} without one."""
  try:
    with open(os.path.join(checkpoint_dir, STATE_FILE)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


class _ReleasingIterator:
  """The learner's batches; the step lock is released while one is awaited,
  so `stop()` can save while the loop waits on replay."""

  def __init__(self, iterator: Iterator, lock: threading.Lock,
               stopping: threading.Event):
    self._iterator = iterator
    self._lock = lock
    self._stopping = stopping

  def __iter__(self):
    return self

  def __next__(self):
    self._lock.release()
    try:
      batch = next(self._iterator)
    finally:
      self._lock.acquire()
    if self._stopping.is_set():
      raise StopIteration
    return batch


class StepLoopLearner(acme.Learner):
  """The loop around a learner's compiled step."""

  _checkpointer = None
  _checkpoint_dir = None
  _timestamp = None
  _dataset_switch = None  # (step, make_iterator): see switch_dataset_at

  def _init_loop(self, dataset, counter: Optional[counting.Counter],
                 logger: Optional[loggers.Logger],
                 max_steps: Optional[int]) -> None:
    self._step_lock = threading.Lock()
    self._stopping = threading.Event()
    self._iterator = _ReleasingIterator(dataset, self._step_lock,
                                        self._stopping)
    self._counter = counter or counting.Counter()
    self._logger = logger or loggers.make_default_logger('learner')
    self._max_steps = max_steps
    self._finished = False

  def _make_checkpointer(self, checkpoint_dir: Optional[str],
                         objects: Dict[str, Any]):
    """Acme's Checkpointer at <checkpoint_dir>/checkpoints/learner; it
    restores the latest checkpoint, so a restarted run resumes.

    Called after `_init_loop` and `_num_steps`: the shared counter is brought
    up to the restored step count here, in the constructor, so nodes that
    read it once the learner serves (collecting actors stamp episodes with
    it) never see the count of a fresh counter.
    """
    if checkpoint_dir is None:
      return None
    checkpointer = tf2_savers.Checkpointer(
        objects_to_save=objects, directory=checkpoint_dir,
        subdirectory='learner', add_uid=False,
        # Saved at the loop's end and on stop(); also periodically once the
        # run gives a period (checkpoint_every).
        time_delta_minutes=float('inf'))
    self._checkpoint_dir = os.path.join(checkpoint_dir, 'checkpoints',
                                        'learner')
    self._saved_objects = list(objects.values())
    missing = self.num_steps - self._counter.get_counts().get('learner_steps',
                                                              0)
    if missing > 0:
      self._counter.increment(learner_steps=missing)
    return checkpointer

  def checkpoint_every(self, minutes: float) -> None:
    """Saves during the loop at most every `minutes` (besides at its end
    and on `stop`)."""
    if self._checkpointer is not None:
      # pylint: disable=protected-access
      self._checkpointer._time_delta_minutes = minutes
      self._checkpointer._last_saved = time.time()  # not at the first step

  def switch_dataset_at(self, step: int,
                        make_iterator: Callable[[], Iterator]) -> None:
    """From learner step `step` on, batches come from `make_iterator()`
    (built then; at once when a resumed learner is already past it): the
    offline→online switch of a fine-tuning run."""
    self._dataset_switch = (step, make_iterator)

  def _train_step(self) -> Dict[str, Any]:
    return self._step_fn(next(self._iterator))

  def step(self) -> None:
    """One update, holding the step lock but while a batch is awaited."""
    with self._step_lock:
      self._locked_step()

  def _locked_step(self) -> None:
    if self._dataset_switch and self.num_steps >= self._dataset_switch[0]:
      self._iterator = _ReleasingIterator(self._dataset_switch[1](),
                                          self._step_lock, self._stopping)
      self._dataset_switch = None
    metrics = tf2_utils.to_numpy(self._train_step())
    now = time.time()
    elapsed = now - self._timestamp if self._timestamp else 0.
    self._timestamp = now
    counts = self._counter.increment(learner_steps=1, learner_walltime=elapsed)
    self._logger.write({**metrics, **counts})
    bad = non_finite(metrics)
    if bad:
      self._poisoned = f'{bad} is {metrics[bad]} at learner step {self.num_steps}'
      raise NonFiniteLoss(self._poisoned)
    if self._checkpointer is not None and (
        time.time() - self._checkpointer._last_saved >=  # pylint: disable=protected-access
        60 * self._checkpointer._time_delta_minutes):  # pylint: disable=protected-access
      self._save()  # every checkpoint_every minutes
      if self._poisoned:
        raise NonFiniteLoss(self._poisoned)

  def run(self, num_steps: Optional[int] = None) -> None:
    """Steps until `num_steps` (default: max_steps; None: until the dataset
    ends), then saves, and marks the learner finished in the counter
    (evaluators watch for it). Stopped by `stop()`, it saves and is not
    finished."""
    num_steps = num_steps if num_steps is not None else self._max_steps
    ended = False
    try:
      while num_steps is None or self.num_steps < num_steps:
        if self._stopping.is_set():
          break
        try:
          self.step()
        except StopIteration:  # the dataset ended, or stop() was called
          break
      ended = True
    finally:
      # Also when a step raised (replay gone, say): what was learned is
      # kept, unless it is not finite.
      with self._step_lock:
        self._finished = ended and not self._stopping.is_set()
        self._save()
      self._logger.close()
    if self._finished:
      self._counter.increment(learner_finished=1)

  def stop(self) -> None:
    """From another thread: ends the loop after the update in flight, and
    saves now (not waiting for a batch)."""
    self._stopping.set()
    with self._step_lock:
      self._save()

  @property
  def num_steps(self) -> int:
    return int(self._num_steps.numpy())

  _poisoned = ''  # why the variables must not be saved

  def checkpoint_state(self) -> Dict[str, Any]:
    """`read_state` of this learner's checkpoint directory."""
    return read_state(self._checkpoint_dir) if self._checkpoint_dir else {}

  def save(self) -> None:
    with self._step_lock:
      self._save()

  def _save(self) -> None:
    if self._checkpointer is None or not self._finite_variables():
      return
    self._checkpointer.save(force=True)
    self._write_state()

  def _finite_variables(self) -> bool:
    """False (and the learner poisoned) if a variable it saves holds NaN or
    infinity: a step's metrics can be finite while its update is not."""
    if not self._poisoned and not bool(tf.reduce_all(
        [tf.reduce_all(tf.math.is_finite(v)) for v in self.saved_variables()])):
      self._poisoned = (f'a variable became non-finite by learner step '
                        f'{self.num_steps}')
    return not self._poisoned

  def saved_variables(self) -> List[tf.Variable]:
    """The floating-point variables a checkpoint holds (optimizers' slots
    exist from the first step on)."""
    found = []
    for saved in self._saved_objects:
      if isinstance(saved, tf.Variable):
        found.append(saved)
        continue
      try:
        found.extend(saved.variables)
      except ValueError:  # a Sonnet optimizer before its first step
        pass
    return [v for v in found if v.dtype.is_floating]

  def _write_state(self) -> None:
    path = os.path.join(self._checkpoint_dir, STATE_FILE)
    with open(path + '.tmp', 'w') as f:
      json.dump(dict(learner_steps=self.num_steps, finished=self._finished), f)
    os.replace(path + '.tmp', path)

  def get_variables(self, names: List[str]) -> List[List[np.ndarray]]:
    return [tf2_utils.to_numpy(self._variables[name]) for name in names]
