"""Small Launchpad-side adapters around the nodes of the other packages.

Every node process imports this module, so it is also where their absl INFO
chatter (EnvLogger opening each file, courier bindings) is turned off;
progress comes from the nodes' own loggers. ABMRL_VERBOSE=1 keeps it.
"""

import logging as std_logging
import os
import time
from typing import Any, Callable, List

from absl import logging
import launchpad as lp
import numpy as np

if not os.environ.get('ABMRL_VERBOSE'):
  logging.set_verbosity(logging.WARNING)
  # TFP deprecation notices from Acme's Gaussian head, once per process.
  std_logging.getLogger('tensorflow').setLevel(std_logging.ERROR)


def program_stopping() -> bool:
  """True once the program has begun to stop (for nodes' run loops)."""
  return lp.wait_for_stop(0)


def run(make_worker: Callable[..., Any], *args, **kwargs) -> None:
  """Builds a node that serves no calls (restorer, evaluator, stopper) and
  runs it: an `lp.PyNode`, so it has no courier server to stop at the end
  (stopping one in `test_mt` could hang)."""
  make_worker(*args, **kwargs).run()


class ServeAfterRun:
  """Runs a learner to completion, then keeps serving its variables.

  Launchpad stops a courier node's server when run() returns; evaluators
  still need the final variables, so this waits for the program to stop.
  """

  def __init__(self, make_learner: Callable[..., Any], *args, **kwargs):
    self._learner = make_learner(*args, **kwargs)

  def get_variables(self, names: List[str]) -> List[List[np.ndarray]]:
    return self._learner.get_variables(names)

  def run(self) -> None:
    self._learner.run()
    lp.wait_for_stop()


class StopWhenDone:
  """Stops the program once the learner finished and evaluators reported.

  Waits at most `final_evaluation_timeout` seconds for the evaluators' final
  evaluations after the learner finishes.
  """

  def __init__(self, counter, num_evaluators: int,
               final_evaluation_timeout: float = 600.0,
               poll_seconds: float = 0.5):
    self._counter = counter
    self._num_evaluators = num_evaluators
    self._timeout = final_evaluation_timeout
    self._poll = poll_seconds

  def run(self) -> None:
    finished_at = None
    while True:
      counts = self._counter.get_counts()
      if counts.get('learner_finished', 0):
        finished_at = finished_at or time.time()
        done = counts.get('evaluator_final_evaluations', 0)
        if done >= self._num_evaluators:
          break
        if time.time() - finished_at > self._timeout:
          logging.warning('stopping without %d final evaluation(s)',
                          self._num_evaluators - done)
          break
      time.sleep(self._poll)
    lp.stop()
