"""What every command's parser shares."""

import argparse
from typing import Callable, Optional


class Parser(argparse.ArgumentParser):
  """Reports a bad flag in one line (argparse prints the usage first).
  Subcommands' parsers are of the parent's class, so they do too.

  `on_help`, if set, runs once when the help is first printed, to complete
  it (e.g. with every agent's own defaults, which needs the agents' modules
  and so TensorFlow: not wanted for every command's start).
  """

  on_help: Optional[Callable[['Parser'], None]] = None

  def error(self, message):
    self.exit(2, f'abmrl: error: {message} (see `{self.prog} --help`)\n')

  def format_help(self):
    if self.on_help is not None:
      on_help, self.on_help = self.on_help, None
      on_help(self)
    return super().format_help()
