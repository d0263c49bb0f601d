"""Small Launchpad-side adapters around the nodes of the other packages.

Every node process imports this module, so it is also where their absl INFO
chatter (EnvLogger opening each file, courier bindings) is turned off;
progress comes from the nodes' own loggers. ABMRL_VERBOSE=1 keeps it.
"""

import functools
import logging as std_logging
import os
import sys
import threading
import time
from typing import Any, Callable, List, Optional

from absl import logging
import launchpad as lp
import numpy as np

from abmrl.agents import base
from abmrl.datasets import collect as collect_lib
from abmrl.datasets import episodes

if not os.environ.get('ABMRL_VERBOSE'):
  logging.set_verbosity(logging.WARNING)
  # TFP deprecation notices from Acme's Gaussian head, once per process.
  std_logging.getLogger('tensorflow').setLevel(std_logging.ERROR)


# How long a stopped learner's loop may take to return after its save.
_LOOP_GRACE_SECONDS = 3.0


def program_stopping() -> bool:
  """True once the program has begun to stop (for nodes' run loops)."""
  return lp.wait_for_stop(0)


def wait_until_stop_requested(stop_event: threading.Event,
                              poll_seconds: float = 0.2) -> None:
  """In any thread of a node: returns once Launchpad's stop event is set,
  or the launcher's terminate file exists (launch/processes.py: the event
  needs the main thread, which may be blocked in C++)."""
  terminate_file = os.environ.get('ABMRL_TERMINATE_FILE')
  while not stop_event.wait(poll_seconds):
    if terminate_file and os.path.exists(terminate_file):
      return


def run(make_worker: Callable[..., Any], *args, **kwargs) -> None:
  """Builds a node that serves no calls (restorer, evaluator, stopper) and
  runs it: an `lp.PyNode`, so it has no courier server to stop at the end
  (stopping one in `test_mt` could hang)."""
  # A node that raises exits non-zero (a thread of `test_mt` fails its
  # launch): the launcher sees it and restarts the node or stops the
  # program (launch/processes.py). A full disk is not cured by a restart:
  # one line, and the program stops.
  try:
    make_worker(*args, **kwargs).run()
  except episodes.DiskWriteError as e:
    print(f'[{os.environ.get("ABMRL_NODE", "node")}] writing to '
          f'{e.directory} failed: {e.reason} (the unfinished episode was '
          'removed); stopping the program', file=sys.stderr, flush=True)
    lp.stop()


class ServeAfterRun:
  """Runs a learner to completion, then keeps serving its variables.

  Launchpad stops a courier node's server when run() returns; evaluators
  still need the final variables, so this waits for the program to stop.
  The program's stop (SIGTERM, `lp.stop`) stops the learner, which saves
  (agents/base.py). A non-finite step ends the node in one line, with exit
  status 1.
  """

  def __init__(self, make_learner: Callable[..., Any], *args, **kwargs):
    self._learner = make_learner(*args, **kwargs)
    self._ran = threading.Event()  # the learner's loop has returned

  def get_variables(self, names: List[str]) -> List[List[np.ndarray]]:
    return self._learner.get_variables(names)

  def run(self) -> None:
    # Launchpad's stop event is the node thread's; the watcher gets it here.
    threading.Thread(target=self._stop_when_asked, args=(lp.stop_event(),),
                     daemon=True).start()
    try:
      self._learner.run()
      self._ran.set()
    except base.NonFiniteLoss as e:
      state = self._learner.checkpoint_state()
      kept = (f'the checkpoint of step {state["learner_steps"]} is kept'
              if state else 'no checkpoint was saved')
      print(f'[learner] stopped: {e}; {kept}, nothing after it was saved',
            file=sys.stderr, flush=True)
      sys.exit(1)
    lp.wait_for_stop()

  def _stop_when_asked(self, stop_event: threading.Event) -> None:
    wait_until_stop_requested(stop_event)
    self._learner.stop()  # saved
    # A loop that does not come back (its main thread waits in C++ on a
    # replay that is gone) would hold the stop for the whole notice, then
    # be SIGKILLed; it has nothing left to keep.
    if not self._ran.wait(_LOOP_GRACE_SECONDS):
      os._exit(0)  # pylint: disable=protected-access


class OnlineLearner(ServeAfterRun):
  """Runs a learner fed by online actors until asked to `finish`.

  The learner must stop (and save) while the replay server still runs: once
  the program stops, a learner waiting on a dead server would be killed
  unsaved. So the monitor calls `finish` first, waits for the counter's
  `learner_finished`, and only then stops the program.
  """

  def __init__(self, make_learner: Callable[..., Any], *args, **kwargs):
    self._finish = threading.Event()
    super().__init__(make_learner, *args, should_stop=self._should_stop,
                     **kwargs)

  def _should_stop(self) -> bool:
    return self._finish.is_set() or program_stopping()

  def finish(self) -> None:
    self._finish.set()


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


class CollectMonitor:
  """Prints a collection's progress; when every actor is done (the seed
  holds the target number of episodes), has the learner finish and save,
  then stops the program."""

  def __init__(self, counter, learner, num_actors: int, seed: int, target: int,
               start_episodes: int, progress_seconds: float = 10.0,
               progress_file: Optional[str] = None,
               poll_seconds: float = 0.5, learner_timeout: float = 120.0):
    self._counter = counter
    self._progress_file = progress_file
    self._learner = learner
    self._learner_timeout = learner_timeout
    self._num_actors = num_actors
    self._line = functools.partial(collect_lib.format_progress, seed, target,
                                   start_episodes)
    self._every = progress_seconds
    self._poll = poll_seconds

  def run(self) -> None:
    previous = collect_lib.Progress(time.time(), self._counter.get_counts())
    while True:
      time.sleep(self._poll)
      now = collect_lib.Progress(time.time(), self._counter.get_counts())
      done = now.get(collect_lib.COUNTER_PREFIX + 'actors_done')
      if done >= self._num_actors or now.time - previous.time >= self._every:
        self._report(self._line(previous, now))
        previous = now
      if done >= self._num_actors:
        break
    self._learner.finish()
    self._report('[collect] target reached; the learner saves and the '
                 'program stops')
    deadline = time.time() + self._learner_timeout
    while (not self._counter.get_counts().get('learner_finished', 0) and
           time.time() < deadline):
      time.sleep(self._poll)
    lp.stop()

  def _report(self, line: str) -> None:
    # Also to a file: Launchpad pipes node output through `sed`, which
    # holds it back in blocks when the terminal is redirected to a file.
    print(line, flush=True)
    if self._progress_file:
      with open(self._progress_file, 'a') as f:
        print(time.strftime('%Y-%m-%d %H:%M:%S'), line, file=f)
