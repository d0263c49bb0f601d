"""`abmrl train`: an agent on a dataset, in one Launchpad program."""

import argparse
import sys

from abmrl.agents import registry
from abmrl.launch import config as config_lib
from abmrl.launch import flags


def add_parser(commands) -> None:
  parser = commands.add_parser(
      'train', help='train an agent on a dataset',
      description='Launch restorers, replay, learner and evaluators; stop '
      'after --steps learner steps. A run directory holds config.json, logs, '
      'TensorBoard events and checkpoints; rerunning with it resumes.')
  parser.on_help = _name_agent_defaults
  parser.add_argument(
      '--config', metavar='CONFIG_JSON',
      help="run a saved configuration (a run directory's config.json); "
      'flags given beside it override its values')
  flags.add_flags(parser, config_lib.TrainConfig())
  parser.add_argument(
      '--set', action='append', default=[], metavar='KEY=VALUE',
      help='override an agent hyperparameter (a field of its config '
      'dataclass, agents/<family>/config.py), e.g. learning_rate=1e-4 or '
      'policy_layer_sizes=128,128 (repeatable)')
  parser.add_argument(
      '--preset', default='', metavar='NAME',
      help="start from a named set of the agent's settings instead of its "
      'defaults; flags and --set override it. The ABM variants have '
      "'paper': the paper's exact settings (Appendix B: TD(0), batch 512, "
      '|τ| = 2, ...) in place of abm_mpo, bm_mpo and mpo\'s CPU-budget '
      'defaults (agents/abm/config.py, docs/results/'
      'conflicting_behaviours.md)')
  parser.set_defaults(command=main)


def _name_agent_defaults(parser: argparse.ArgumentParser) -> None:
  """Adds to each flag's help the agents that default it otherwise."""
  notes = {}
  for name in registry.names():
    builder = registry.get(name)
    for section, values in builder.run_defaults.items():
      if section == 'agent':  # hyperparameters, not flags (--set)
        continue
      for field, value in values.items():
        notes.setdefault(f'{section}.{field}', []).append(f'{name} {value}')
    if builder.whole_episodes:
      notes.setdefault('replay.snippet_length', []).append(
          f'{name}: whole episodes')
  for action in parser._actions:  # pylint: disable=protected-access
    if action.dest in notes:
      action.help += '; ' + ', '.join(notes[action.dest])


def main(args: argparse.Namespace) -> int:
  base = (config_lib.load_train_config(args.config) if args.config
          else None)
  config = flags.make_train_config(
      flags.given(args, config_lib.TrainConfig), args.set, base, args.preset)
  # Flags and paths first: a mistake is one line at once, not after the
  # seconds TensorFlow takes to import.
  config.validate().check_paths()
  from abmrl.launch import run as run_lib  # pylint: disable=g-import-not-at-top
  try:
    result = run_lib.train(config)
  except KeyboardInterrupt:
    steps = run_lib.learner_state(config.run_dir).get('learner_steps')
    where = (f'at learner step {steps} of {config.steps} (checkpoint saved)'
             if steps is not None else 'before the first checkpoint')
    print(f'abmrl: interrupted {where}; to resume, run the same command again '
          f'or abmrl train --config {config.run_dir}/config.json',
          file=sys.stderr, flush=True)
    return 130
  print(run_lib.format_summary(result))
  if config.evaluation.evaluators and result.learner_steps < config.steps:
    print(f'abmrl: error: the run stopped after {result.learner_steps} of '
          f'{config.steps} learner steps (see the errors above)',
          file=sys.stderr)
    return 1
  return 0
