"""Loggers of a run: terminal, CSV and TensorBoard, under the run directory."""

import functools
import os
from typing import Optional

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
  return loggers.TimeFilter(logger, time_delta) if time_delta else logger
