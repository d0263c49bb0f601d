"""The command line's side of the run configuration (launch/config.py).

Flags derived from the configuration's fields, and the configuration a
command line asks for: flags given, `--set KEY=VALUE` agent overrides, a
saved config.json.

A field of launch/config.py with `help` in its metadata is a flag: its name
(`flag`, else --<field-name>), type, choices and help come from the field,
and the default shown is the configuration's own. A flag not given leaves
the field to the configuration (so an agent's own defaults, or a loaded
config.json, are not overwritten by argparse defaults).
"""

import argparse
import dataclasses
import os
import typing
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

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


def make_train_config(values: Mapping[str, Any],
                      agent_overrides: Iterable[str] = (),
                      base: Optional[config_lib.TrainConfig] = None,
                      preset: str = '') -> config_lib.TrainConfig:
  """The run configuration a command line asks for.

  Args:
    values: the flags given, {field: value} and {section: {field: value}}.
    agent_overrides: `KEY=VALUE` strings for the agent's config (--set).
    base: a loaded config.json the values override; else the agent's
      defaults (`config_lib.TrainConfig.for_agent`).
    preset: a named preset of the agent's (--preset) to start from instead
      of its defaults; not with `base`, which holds its own settings.
  Returns:
    the config, with absolute paths and the default run directory
    runs/<agent>-<env>; `validate()` is left to the caller (run.prepare).
  """
  values = dict(values)
  if base is None:
    agent = values.pop('agent', '')
    _require(bool(agent), '--agent is required (or --config '
             'RUN_DIR/config.json)')
    builder = config_lib.agent_builder(agent)
    _require(not (builder.whole_episodes and
                  'snippet_length' in values.get('replay', {})),
             f'--snippet-length: {agent} learns from whole episodes (its '
             'snippet length is the longest episode)')
    sections = {name: values.pop(name) for name in list(values)
                if isinstance(values[name], Mapping)}
    config = config_lib.TrainConfig.for_agent(
        agent, sections, parse_overrides(builder.config_class,
                                         agent_overrides), preset=preset,
        **values)
  else:
    _require(not preset, f'--preset {preset}: a saved configuration holds '
             'its own settings; give --preset without --config')
    _require(values.get('agent', base.agent) == base.agent,
             f'--agent {values.get("agent")}: the configuration is of '
             f'{base.agent}')
    config = with_values(base, values)
    config = dataclasses.replace(config, agent_config=dataclasses.replace(
        config.agent_config, **parse_overrides(type(config.agent_config),
                                               agent_overrides)))
  run_dir = config.run_dir or os.path.join(
      'runs', f'{config.agent}-{config.env_id.replace(":", "_")}')
  dataset_dir = config.data.dataset_dir
  return dataclasses.replace(
      config, run_dir=os.path.abspath(run_dir),
      data=dataclasses.replace(config.data, dataset_dir=(
          os.path.abspath(dataset_dir) if dataset_dir else '')))


def make_collect_config(values: Mapping[str, Any],
                        agent_overrides: Iterable[str] = ()) -> config_lib.CollectConfig:
  """The collection a command line asks for (`values`: the flags given;
  `agent_overrides`: --set KEY=VALUE for MPO's config)."""
  config = with_values(config_lib.CollectConfig(), values)
  agent_config = dataclasses.replace(config.agent_config, **parse_overrides(
      type(config.agent_config), agent_overrides))
  return dataclasses.replace(
      config, agent_config=agent_config,
      dataset_dir=(os.path.abspath(config.dataset_dir) if config.dataset_dir
                   else ''))


def with_values(config, values: Mapping[str, Any]):
  """`config` with `values` ({field: value}, {section: {field: value}})."""
  changes = {}
  for name, value in values.items():
    if isinstance(value, Mapping):
      changes[name] = with_values(getattr(config, name), value)
    else:
      changes[name] = value
  return dataclasses.replace(config, **changes)


def parse_overrides(config_class, pairs: Iterable[str]) -> Dict[str, Any]:
  """`KEY=VALUE` strings as typed values of the agent's config fields."""
  hints = typing.get_type_hints(config_class)
  names = sorted(f.name for f in dataclasses.fields(config_class))
  overrides = {}
  for pair in pairs:
    key, sep, value = pair.partition('=')
    if not sep or key not in hints:
      raise config_lib.ConfigError(f'--set {pair}: expected key=value with key one of '
                        + ', '.join(names))
    try:
      overrides[key] = parse_value(hints[key], value)
    except ValueError:
      raise config_lib.ConfigError(f'--set {pair}: {value!r} is not a valid '
                        f'{_type_name(hints[key])}') from None
  return overrides


def overrides_it_has(config_class, pairs: Iterable[str]) -> List[str]:
  """The `KEY=VALUE` pairs whose KEY is a field of `config_class` (one
  --set list given to several agents, each taking what it has)."""
  names = {f.name for f in dataclasses.fields(config_class)}
  return [pair for pair in pairs if pair.partition('=')[0] in names]


def parse_value(kind, text: str):
  """A string as a value of the annotated type (bool, int, float, str,
  Tuple[int, ...], Optional[...])."""
  kind = config_lib.unoptional(kind)
  if kind is bool:
    if text.lower() not in ('true', 'false', '1', '0'):
      raise ValueError(text)
    return text.lower() in ('true', '1')
  if typing.get_origin(kind) is tuple:
    item = typing.get_args(kind)[0]
    return tuple(item(v) for v in text.split(',') if v)
  return kind(text)


def _type_name(kind) -> str:
  kind = config_lib.unoptional(kind)
  if typing.get_origin(kind) is tuple:
    return 'comma-separated list of ' + typing.get_args(kind)[0].__name__
  return kind.__name__


def _require(condition: bool, message: str) -> None:
  if not condition:
    raise config_lib.ConfigError(message)
