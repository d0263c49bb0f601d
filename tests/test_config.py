"""The run configuration: one tree of dataclasses, the command line derived
from it, config.json its saved form, each agent's builder its defaults."""

import dataclasses
import json

import pytest

from abmrl.agents import registry
from abmrl.agents.abm import config as abm_config
from abmrl.launch import cli
from abmrl.launch import config as config_lib
from abmrl.launch import flags
from tests.conftest import ENV_ID


def _parse(*argv):
  """The train command's flags as given, and --set pairs."""
  args = cli.build_parser().parse_args(['train', *argv])
  return flags.given(args, config_lib.TrainConfig), args.set


def _config(*argv, base=None):
  args = cli.build_parser().parse_args(['train', *argv])
  return flags.make_train_config(flags.given(args, config_lib.TrainConfig),
                                 args.set, base, args.preset)


def test_flags_not_given_leave_the_defaults_to_the_configuration():
  given, _ = _parse('--agent', 'bm', '--steps', '7', '--eval-every', '3',
                    '--online-buffer', 'shared', '--relabel')
  assert given == {'agent': 'bm', 'steps': 7, 'evaluation': {
      'every_learner_steps': 3}, 'online': {'buffer': 'shared'},
                   'data': {'relabel': True}}
  config = _config('--agent', 'bm', '--env', ENV_ID, '--dataset', 'd')
  assert config.replay == config_lib.ReplayConfig()
  assert config.steps == config_lib.TrainConfig().steps


def test_an_agent_defaults_its_data_path_and_flags_override_it():
  awr = _config('--agent', 'awr', '--env', ENV_ID, '--dataset', 'd')
  assert awr.replay.snippets_per_item == 1 and awr.replay.replay_size == 1000
  assert awr.online.min_replay_size == 10
  # What AWR does not set is the configuration's default.
  assert awr.replay.samples_per_insert == config_lib.ReplayConfig(
  ).samples_per_insert
  given = _config('--agent', 'awr', '--env', ENV_ID, '--dataset', 'd',
                  '--replay-size', '77')
  assert given.replay.replay_size == 77 and given.replay.snippets_per_item == 1
  with pytest.raises(config_lib.ConfigError, match='whole episodes'):
    _config('--agent', 'awr', '--env', ENV_ID, '--dataset', 'd',
            '--snippet-length', '8')


def test_every_agent_builds_a_config_and_names_its_policies():
  for name in registry.names():
    builder = registry.get(name)
    assert builder.name == name
    config = config_lib.TrainConfig.for_agent(name, env_id=ENV_ID)
    assert isinstance(config.agent_config, builder.config_class)
    assert builder.policies and config.batch_size > 0
  assert list(registry.get('abm_mpo').policies) == ['policy', 'prior']
  assert list(registry.get('abm_prior').policies) == ['prior']
  assert registry.get('mpo').make_config().prior == 'none'


def test_a_preset_replaces_the_agents_defaults_and_flags_override_it(
    tmp_path):
  data = ('--agent', 'abm_mpo', '--env', ENV_ID, '--dataset', 'd')
  # abm_mpo's defaults are the CPU-budget set, each field off the paper's.
  default = _config(*data)
  for field, value in abm_config.CPU_BUDGET['agent'].items():
    assert getattr(default.agent_config, field) == value, field
    assert value != abm_config.PAPER['agent'][field], field
  assert default.replay.snippet_length == 10
  assert default.agent_overrides() == {}  # they are its defaults
  paper = _config(*data, '--preset', 'paper')
  for field, value in abm_config.PAPER['agent'].items():
    assert getattr(paper.agent_config, field) == value, field
  assert paper.replay.snippet_length == 2
  assert paper.agent_config.prior == 'abm'  # the variant's, kept
  # The prior-only mode keeps the paper's settings as its defaults.
  prior_only = _config('--agent', 'abm_prior', '--env', ENV_ID, '--dataset',
                       'd')
  assert (prior_only.agent_config.batch_size, prior_only.replay.snippet_length
          ) == (512, 2)
  given = _config(*data, '--preset', 'paper', '--set', 'batch_size=128',
                  '--snippet-length', '4')
  assert given.agent_config.batch_size == 128
  assert given.replay.snippet_length == 4
  assert given.agent_config.target_update_period == 200
  with pytest.raises(config_lib.ConfigError, match='bcq has no such preset'):
    _config('--agent', 'bcq', '--env', ENV_ID, '--dataset', 'd', '--preset',
            'paper')
  path = dataclasses.replace(paper, run_dir=str(tmp_path)).save()
  with pytest.raises(config_lib.ConfigError, match='without --config'):
    _config('--config', path, '--preset', 'paper',
            base=config_lib.load_train_config(path))


def test_agent_overrides_are_typed_by_the_config_fields():
  config = _config('--agent', 'abm_mpo', '--env', ENV_ID, '--dataset', 'd',
                   '--set', 'policy_layer_sizes=8,4', '--set',
                   'jit_compile=false', '--set', 'prior_min_variance=0.09')
  agent = config.agent_config
  assert agent.policy_layer_sizes == (8, 4) and agent.jit_compile is False
  assert agent.prior_min_variance == 0.09 and agent.prior == 'abm'
  with pytest.raises(config_lib.ConfigError, match='not a valid float'):
    _config('--agent', 'abm_mpo', '--set', 'prior_min_variance=wide')
  with pytest.raises(config_lib.ConfigError, match='key one of'):
    _config('--agent', 'bm', '--set', 'nope=1')


def test_config_json_is_the_tree_and_loads_back_equal(tmp_path):
  config = _config('--agent', 'abm_svg', '--env', ENV_ID, '--dataset', 'd',
                   '--run-dir', str(tmp_path / 'run'), '--snippet-length',
                   '5', '--set', 'critic_layer_sizes=16,16')
  path = config.save()
  with open(path) as f:
    saved = json.load(f)
  assert set(saved) >= {'data', 'replay', 'online', 'evaluation', 'launch',
                        'agent_config'}
  assert saved['replay']['snippet_length'] == 5
  assert saved['agent_config']['critic_layer_sizes'] == [16, 16]
  assert config_lib.load_train_config(path) == config
  # A rerun from the file takes flags given beside it over its values.
  rerun = _config('--steps', '3', '--set', 'svg_epsilon=0.5',
                  base=config_lib.load_train_config(path))
  assert rerun.steps == 3 and rerun.agent_config.svg_epsilon == 0.5
  assert rerun.replay.snippet_length == 5 and rerun.agent == 'abm_svg'
  with pytest.raises(config_lib.ConfigError, match='of abm_svg'):
    _config('--agent', 'bm', base=rerun)


@pytest.mark.parametrize('edit, expected', [
    (lambda d: d['replay'].update(snippet_lenght=3), 'snippet_lenght'),
    (lambda d: d['agent_config'].update(epsilonn=1), 'epsilonn'),
    (lambda d: d.update(agent='nobody'), "unknown agent 'nobody'"),
    (lambda d: d.pop('data'), 'no "data" section'),
])
def test_a_bad_config_json_is_one_clear_error(tmp_path, edit, expected):
  path = _config('--agent', 'mpo', '--env', ENV_ID, '--dataset', 'd',
                 '--run-dir', str(tmp_path)).save()
  with open(path) as f:
    data = json.load(f)
  edit(data)
  with open(path, 'w') as f:
    json.dump(data, f)
  with pytest.raises(config_lib.ConfigError, match=expected):
    config_lib.load_train_config(path)


@pytest.mark.parametrize('argv, expected', [
    (['--steps', '0'], '--steps must be positive'),
    (['--eval-every', '0'], '--eval-every must be positive'),
    (['--samples-per-insert', '0'], '--samples-per-insert must be positive'),
    (['--online-replay-size', '0', '--offline-steps', '1'],
     '--online-replay-size must be positive'),
    (['--snippets-per-item', '7'], 'divide the batch size 64'),
    (['--offline-steps', '10', '--steps', '5'], '--offline-steps must be'),
])
def test_values_that_cannot_run_name_their_flag(argv, expected):
  config = _config('--agent', 'bm_mpo', '--env', ENV_ID, '--dataset', 'd',
                   *argv)
  with pytest.raises(config_lib.ConfigError, match=expected):
    config.validate()


def test_help_shows_each_default_once_and_the_agents_own():
  parser = cli.build_parser()
  train = parser._subparsers._group_actions[0].choices['train']  # pylint: disable=protected-access
  text = ' '.join(train.format_help().split())
  assert '--snippets-per-item N snippets packed in one Reverb item' in text
  assert '(default 16); awr 1' in text
  assert '--eval-every N' in text and '(default 1000)' in text
