"""`abmrl dataset`: generate, inspect, validate, merge, import and export
datasets."""

import argparse
import os
import sys

from abmrl.datasets import episodes
from abmrl.datasets import generate
from abmrl.datasets import interchange
from abmrl.datasets import summary
from abmrl import environments
from abmrl.launch import config as config_lib

# Data for `abmrl demo` and for a first try of `abmrl dataset generate`.
DEMO_ENV = 'control:point_mass-easy'


def add_parser(commands) -> None:
  tools = commands.add_parser('dataset', help='dataset tools').add_subparsers(
      dest='dataset_command', required=True)

  g = tools.add_parser('generate', help='write a small mixed-quality dataset '
                       '(scripted controller at several noise levels + '
                       'random)')
  g.add_argument('--env', default=DEMO_ENV,
                 help=f'environment id (default {DEMO_ENV})')
  g.add_argument('--out', required=True, help='dataset directory')
  g.add_argument('--episodes-per-behaviour', type=int, default=5,
                 help='episodes of each behaviour (default 5)')
  g.add_argument('--seed', type=int, default=0)
  sawyer = generate.controller_descriptions('sawyer:lift')
  conflicting = {env_id: generate.controller_descriptions(env_id)
                 for env_id in ('control:point_mass-easy',
                                'control:reacher-easy')}
  g.add_argument('--controller', help='the scripted controller, where the '
                 'environment has several; several, comma-separated, give '
                 'each noise level of each, tagged <controller>-noise<n> (a '
                 'dataset of conflicting behaviours, e.g. pd,pd_elsewhere). '
                 'Sawyer: '
                 # argparse formats help with %: a description's own % is %%.
                 + '; '.join(f'{name}: {text}'.replace('%', '%%')
                             for name, text in sawyer.items())
                 + f'; default {next(iter(sawyer))}. '
                 + '. '.join(f'{env_id}: ' + '; '.join(
                     f'{name}: {text}' for name, text in named.items())
                             for env_id, named in conflicting.items()))
  g.add_argument('--noise-levels', default='0.1,0.5,1.5',
                 help='Gaussian action noise of the scripted behaviours, in '
                 'half-ranges of each action (default 0.1,0.5,1.5)')
  g.add_argument('--no-random', action='store_true',
                 help='leave out the uniformly random behaviour')
  g.set_defaults(command=generate_dataset)

  i = tools.add_parser('info', help='episodes, steps and returns per '
                       'behaviour; writes a plot of return against episode '
                       'index')
  i.add_argument('dir')
  i.add_argument('--plot', help='where to write the plot (default '
                 'DIR/returns.png)')
  i.set_defaults(command=info)

  m = tools.add_parser('merge', help='copy the episodes of several datasets '
                       'of one environment into one')
  m.add_argument('sources', nargs='+', help='dataset directories')
  m.add_argument('--out', required=True, help='the merged dataset (created, '
                 'or appended to)')
  m.set_defaults(command=merge)

  v = tools.add_parser('validate', help='read every episode; report bad ones')
  v.add_argument('dir')
  v.set_defaults(command=validate)

  im = tools.add_parser(
      'import', help='write a D4RL/Minari/d3rlpy/NumPy file as a new dataset '
      '(episodes split at terminals and timeouts)',
      description='\n\n'.join(interchange.__doc__.split('\n\n')[2:4]),
      formatter_class=argparse.RawDescriptionHelpFormatter)
  im.add_argument('source', help='the file (a Minari dataset: its directory '
                  'or main_data.hdf5)')
  im.add_argument('--format', required=True, choices=interchange.IMPORT_FORMATS)
  im.add_argument('--env', required=True, help='the environment the data '
                  'comes from (its observation and action specs are checked)')
  im.add_argument('--out', required=True, help='the new dataset directory')
  im.add_argument('--behaviour', help="episodes' tag where the file gives "
                  "none (default: the file's name)")
  im.add_argument('--drop-nonfinite', action='store_true',
                  help='drop episodes holding NaN or infinite values (default: '
                  'refuse the file)')
  im.add_argument('--clip-actions', action='store_true',
                  help="clip actions to the environment's bounds (default: "
                  'refuse the file)')
  im.set_defaults(command=import_dataset)

  ex = tools.add_parser('export', help="write a dataset as D4RL's flat arrays "
                        '(HDF5, or NumPy .npz) or as an RLDS (TensorFlow '
                        'Datasets) directory, for other libraries')
  ex.add_argument('dir')
  ex.add_argument('--format', required=True, choices=interchange.EXPORT_FORMATS)
  ex.add_argument('--out', required=True, help='the file (d4rl, npz) or '
                  'directory (rlds) to write; it must not exist')
  ex.set_defaults(command=export_dataset)


def generate_dataset(args: argparse.Namespace) -> int:
  if args.env not in environments.env_ids():
    raise config_lib.ConfigError(f'unknown environment id {args.env!r}; '
                                 'valid ids: '
                                 + ', '.join(environments.env_ids()))
  if args.episodes_per_behaviour <= 0:
    raise config_lib.ConfigError('--episodes-per-behaviour must be positive')
  names = generate.controllers(args.env)
  chosen = args.controller.split(',') if args.controller else []
  for name in chosen:
    if name not in names:
      raise config_lib.ConfigError(
          f'--controller {name!r}: {args.env} has '
          + (f'only {", ".join(names)}' if names
             else 'no scripted controller'))
  try:
    noise = [float(n) for n in args.noise_levels.split(',')]
  except ValueError:
    raise config_lib.ConfigError(
        f'--noise-levels {args.noise_levels!r}: expected comma-separated '
        'numbers, e.g. 0.1,0.5') from None
  if any(n < 0 for n in noise):
    raise config_lib.ConfigError(f'--noise-levels {args.noise_levels!r}: '
                                 'negative')
  behaviours = generate.default_behaviours(noise, random=not args.no_random,
                                           controllers=chosen)
  n = generate.generate(args.env, args.out, args.episodes_per_behaviour,
                        behaviours=behaviours, seed=args.seed,
                        controller=chosen[0] if chosen else None)
  print(f'wrote {n} episodes to {args.out}')
  return 0


def info(args: argparse.Namespace) -> int:
  summarised = summary.summarize(args.dir)
  print(summary.format_summary(summarised))
  plot = args.plot or os.path.join(args.dir, 'returns.png')
  try:
    print('plot of return against episode index: '
          f'{summary.plot_returns(summarised, plot)}')
  except OSError as e:
    print(f'abmrl: warning: could not write the plot {plot}: {e}',
          file=sys.stderr)
  return 0


def merge(args: argparse.Namespace) -> int:
  copied = episodes.merge(args.sources, args.out)
  print(f'merged {copied} episodes into {args.out}')
  return 0


def validate(args: argparse.Namespace) -> int:
  report = summary.validate(args.dir)
  print(summary.format_validation(report))
  return 0 if report.ok else 1


def import_dataset(args: argparse.Namespace) -> int:
  if args.env not in environments.env_ids():
    raise config_lib.ConfigError(f'unknown environment id {args.env!r}; '
                                 'valid ids: '
                                 + ', '.join(environments.env_ids()))
  checked = interchange.import_file(
      args.source, args.format, args.env, args.out, behaviour=args.behaviour,
      drop_nonfinite=args.drop_nonfinite, clip_actions=args.clip_actions)
  notes = []
  if checked.dropped:
    notes.append(f'dropped {len(checked.dropped)} episodes with NaN or '
                 'infinite values')
  if checked.clipped_actions:
    notes.append(f'clipped {checked.clipped_actions} action values')
  print(f'wrote {checked.kept} episodes to {args.out}'
        + (f' ({"; ".join(notes)})' if notes else ''))
  print(summary.format_summary(summary.summarize(args.out)))
  return 0


def export_dataset(args: argparse.Namespace) -> int:
  n = interchange.export(args.dir, args.format, args.out)
  print(f'wrote {n} transitions of {args.dir} to {args.out}')
  return 0
