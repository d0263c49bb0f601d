"""The `abmrl` command line: one module per command, parsing and messages
only; what a command does is public API of the other modules (launch/run.py,
launch/config.py, datasets/, environments/), which benchmarks and tests call
too.

  abmrl train --agent bm --env control:cheetah-run --dataset DIR --steps S
  abmrl train --config RUN_DIR/config.json        # rerun a run's configuration
  abmrl collect --env control:cheetah-run --seed 0 --episodes 100 --out DIR
  abmrl dataset generate|info|merge|validate ...
  abmrl video --run-dir RUN_DIR
  abmrl demo

Bad input (unknown environment or agent, missing, corrupt or empty dataset,
a dataset that does not match the environment, a malformed flag) is
reported in one line, before any process starts, with exit code 2.

Commands that run programs or networks import TensorFlow and Launchpad (a
few seconds) when they run, not at start, so `--help` and the dataset tools
answer at once.
"""

import argparse
import os
import sys
from typing import List, Optional

# Quiet the native libraries before they load: TF's C++ logs, EnvLogger's
# glog, and MuJoCo's GL probing (no display here; EGL for offscreen use).
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('GLOG_minloglevel', '1')
from abmrl.environments import rendering  # pylint: disable=g-import-not-at-top,g-bad-import-order
os.environ.setdefault('MUJOCO_GL', rendering.default_backend())

# pylint: disable=g-import-not-at-top,g-bad-import-order
from abmrl.datasets import episodes
from abmrl import environments
from abmrl.launch import cluster
from abmrl.launch import config as config_lib
from abmrl.launch.cli import collect
from abmrl.launch.cli import dataset
from abmrl.launch.cli import demo
from abmrl.launch.cli import parsing
from abmrl.launch.cli import train
from abmrl.launch.cli import video
# pylint: enable=g-import-not-at-top,g-bad-import-order

COMMANDS = (train, collect, dataset, video, demo)
# Bad input, each reported as one line (exit code 2).
INPUT_ERRORS = (config_lib.ConfigError, episodes.DatasetError,
                environments.UnknownEnvironmentError)



def run_errors():
  """A run that failed (a node, a host, a cluster's precondition): one
  line, exit code 1. Imported when one is raised (the launcher's module
  loads Launchpad)."""
  from abmrl.launch import processes  # pylint: disable=g-import-not-at-top
  return (cluster.ClusterError, processes.NodeFailure,
          episodes.DiskWriteError)


def build_parser() -> argparse.ArgumentParser:
  parser = parsing.Parser(
      prog='abmrl',
      description='Distributed offline RL from logged episodes: restorers '
      'replay episodes from disk into Reverb, a learner trains on them, '
      'evaluators run the policy; one Launchpad program.')
  commands = parser.add_subparsers(dest='command_name', required=True)
  for command in COMMANDS:
    command.add_parser(commands)
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  try:
    return args.command(args)
  except KeyboardInterrupt:
    print('abmrl: interrupted', file=sys.stderr)
    return 130
  except INPUT_ERRORS as e:
    print(f'abmrl: error: {e}', file=sys.stderr)
    return 2
  except Exception as e:  # pylint: disable=broad-except
    if not isinstance(e, run_errors()):
      raise
    print(f'abmrl: error: {e}', file=sys.stderr)
    return 1


def entry_point() -> None:
  """The `abmrl` command (and `python -m abmrl.launch.cli`): main(), then
  exit without the interpreter's teardown.

  By then every node has stopped and closed its logs, checkpoints and
  episode files, so teardown only frees memory — and there TensorFlow frees
  the graph of every function traced in the process one by one, with each
  op's stack trace (py-spy: `TF_DeleteFunction` → `~StackTraceWrapper`).
  After a 20-step `sawyer:multitask` run in one process that took 56 s, a
  quarter of the command's time; `os._exit` leaves it to the operating
  system.
  """
  code = main()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access
