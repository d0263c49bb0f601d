"""Loggers of a run: terminal, CSV and TensorBoard, under the run directory."""

import functools
import os
import time
from typing import Any, Mapping, Optional

from acme.utils import loggers
from acme.utils.loggers import tf_summary


def make_logger(run_dir: Optional[str], label: str,
                time_delta: float = 1.0,
                steps_key: Optional[str] = None,
                print_to_terminal: bool = True) -> loggers.Logger:
  """Writes `run_dir/logs/<label>/logs.csv` (Acme adds the `logs/`) and TensorBoard `run_dir/tb/`.

  Writes are throttled to one per `time_delta` seconds (0: every write).
  Acme's make_default_logger hides its CSV under ~/acme/<uid>, so
  the same parts are composed here with the run's own directory.
  """
  outputs = []
  if run_dir is not None:
    outputs.append(loggers.CSVLogger(run_dir, label=label, add_uid=False,
                                     flush_every=1))
    outputs.append(tf_summary.TFSummaryLogger(
        os.path.join(run_dir, 'tb'), label=label, steps_key=steps_key))
  if print_to_terminal:
    # Flushed: node processes' stdout is a pipe, block-buffered otherwise.
    outputs.append(loggers.TerminalLogger(
        label=label, print_fn=functools.partial(print, flush=True)))
  logger = loggers.NoneFilter(loggers.Dispatcher(outputs))
  return TimeFilterKeepingLast(logger, time_delta) if time_delta else logger


class TimeFilterKeepingLast(loggers.Logger):
  """Acme's TimeFilter, except that `close` writes the last data it held
  back: a learner's log then always ends with its final step."""

  def __init__(self, to: loggers.Logger, time_delta: float):
    self._to = to
    self._time_delta = time_delta
    self._last_write = 0.0
    self._held: Optional[Mapping[str, Any]] = None

  def write(self, data: Mapping[str, Any]) -> None:
    now = time.time()
    if now - self._last_write >= self._time_delta:
      self._to.write(data)
      self._last_write, self._held = now, None
    else:
      self._held = data

  def close(self) -> None:
    if self._held is not None:
      self._to.write(self._held)
      self._held = None
    self._to.close()
