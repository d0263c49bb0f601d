"""`python -m abmrl.launch.cli`: the `abmrl` command."""

from abmrl.launch import cli

cli.entry_point()
