"""Command-line flags derived from the run configuration's fields.

A field of launch/config.py with `help` in its metadata is a flag: its name
(`flag`, else --<field-name>), type, choices and help come from the field,
and the default shown is the configuration's own. A flag not given leaves
the field to the configuration (so an agent's own defaults, or a loaded
config.json, are not overwritten by argparse defaults).
"""

import argparse
import dataclasses
import typing
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from abmrl.launch import config as config_lib

# Fields of a section of the configuration tree: (path, field, section class).
_Path = Tuple[str, ...]


def _fields(config_class, path: _Path = ()) -> Iterator[
    Tuple[_Path, dataclasses.Field, Any]]:
  types = typing.get_type_hints(config_class)
  for field in dataclasses.fields(config_class):
    kind = types[field.name]
    if dataclasses.is_dataclass(kind):
      yield from _fields(kind, path + (field.name,))
    elif field.metadata.get('help'):
      yield path + (field.name,), field, kind


def _dest(path: _Path) -> str:
  return '.'.join(path)


def _lookup(config, path: _Path):
  for name in path:
    config = getattr(config, name)
  return config


def add_flags(parser: argparse.ArgumentParser, defaults,
              notes: Optional[Mapping[str, str]] = None,
              required: Tuple[str, ...] = ()) -> None:
  """Adds a flag per flagged field of `defaults`' configuration tree.

  Args:
    defaults: a configuration whose values are the defaults shown.
    notes: field path ('replay.snippet_length') -> text added to its help.
    required: field paths the parser itself requires.
  """
  notes = notes or {}
  for path, field, kind in _fields(type(defaults)):
    flag = field.metadata.get('flag') or '--' + field.name.replace('_', '-')
    default = _lookup(defaults, path)
    help_text = field.metadata['help']
    if default not in (None, '') and not isinstance(default, bool):
      help_text += f' (default {default})'
    if _dest(path) in notes:
      help_text += f'; {notes[_dest(path)]}'
    options = dict(dest=_dest(path), default=argparse.SUPPRESS,
                   help=help_text, required=_dest(path) in required)
    base = config_lib.unoptional(kind)
    if base is bool:
      options['action'] = 'store_true'
    else:
      options['type'] = base
      options['metavar'] = _metavar(field, base)
      if field.metadata.get('choices'):
        options['choices'] = field.metadata['choices']
        del options['metavar']
    parser.add_argument(flag, **options)


def _metavar(field, kind) -> str:
  if field.metadata.get('metavar'):
    return field.metadata['metavar']
  return {int: 'N', float: 'X'}.get(kind, field.name.upper())


def given(args: argparse.Namespace, config_class) -> Dict[str, Any]:
  """The flags given on the command line, as {field: value} for the top
  level and {section: {field: value}} for sections."""
  values: Dict[str, Any] = {}
  for path, _, _ in _fields(config_class):
    dest = _dest(path)
    if hasattr(args, dest):
      target = values
      for name in path[:-1]:
        target = target.setdefault(name, {})
      target[path[-1]] = getattr(args, dest)
  return values

