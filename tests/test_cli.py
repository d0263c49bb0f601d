"""Bad input gets one clear line naming it, before any process starts."""

import os

import pytest

from abmrl.launch import cli
from tests.conftest import ENV_ID


def _error_line(capsys, argv):
  assert cli.main(argv) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1, err
  assert err[0].startswith('abmrl: error: ')
  return err[0]


def _train(dataset, env=ENV_ID, *extra):
  return ['train', '--agent', 'bm', '--env', env, '--dataset', dataset,
          '--steps', '10', *extra]


def test_missing_dataset(capsys, tmp_path):
  missing = str(tmp_path / 'nowhere')
  assert missing in _error_line(capsys, _train(missing))


def test_directory_that_is_not_a_dataset(capsys, tmp_path):
  line = _error_line(capsys, _train(str(tmp_path)))
  assert str(tmp_path) in line and 'dataset.json' in line


def test_dataset_without_complete_episodes(capsys, small_dataset, tmp_path):
  empty = tmp_path / 'empty'
  empty.mkdir()
  (empty / 'dataset.json').write_text(
      open(os.path.join(small_dataset, 'dataset.json')).read())
  assert 'no complete episodes' in _error_line(capsys, _train(str(empty)))


def test_corrupt_dataset_spec(capsys, tmp_path):
  (tmp_path / 'dataset.json').write_text('{not json')
  line = _error_line(capsys, _train(str(tmp_path)))
  assert 'dataset.json' in line and 'corrupt' in line


def test_dataset_of_another_environment(capsys, small_dataset):
  line = _error_line(capsys, _train(small_dataset, 'control:cheetah-run'))
  assert small_dataset in line and 'observation shape (4,)' in line


def test_unknown_environment(capsys, small_dataset):
  line = _error_line(capsys, _train(small_dataset, 'control:nope-nope'))
  assert "'control:nope-nope'" in line and 'control:cheetah-run' in line


def test_unknown_agent(capsys, small_dataset):
  argv = _train(small_dataset)
  argv[argv.index('bm')] = 'zzz'
  assert "unknown agent 'zzz'" in _error_line(capsys, argv)


@pytest.mark.parametrize('bad, expected', [
    ('learning_rate=fast', "'fast' is not a valid float"),
    ('nonsense=1', 'expected key=value'),
    ('batch_size', 'expected key=value'),
])
def test_bad_hyperparameter_override(capsys, small_dataset, bad, expected):
  line = _error_line(capsys, _train(small_dataset, ENV_ID, '--set', bad))
  assert expected in line


def test_bad_optional_hyperparameter_override(capsys, small_dataset):
  argv = _train(small_dataset, ENV_ID, '--set', 'prior_min_variance=wide')
  argv[argv.index('bm')] = 'abm_mpo'
  assert "'wide' is not a valid float" in _error_line(capsys, argv)


def test_nonpositive_steps(capsys, small_dataset):
  argv = _train(small_dataset)
  argv[argv.index('10')] = '0'
  assert '--steps' in _error_line(capsys, argv)


def test_dataset_info_prints_a_table(capsys, small_dataset):
  assert cli.main(['dataset', 'info', small_dataset]) == 0
  out = capsys.readouterr().out
  assert 'best episode' in out and 'scripted-noise0.1' in out


def test_dataset_validate_of_missing_dir(capsys, tmp_path):
  _error_line(capsys, ['dataset', 'validate', str(tmp_path / 'x')])


def test_unknown_flag_is_one_line(capsys, small_dataset):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(_train(small_dataset, ENV_ID, '--stepz', '3'))
  assert exit_info.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and '--stepz' in err[0], err


def test_data_of_another_task_needs_relabelling(capsys, small_dataset):
  # point_mass-hard has point_mass-easy's spec but another task, and no
  # reward on observations: no --relabel advice.
  line = _error_line(capsys, _train(small_dataset, 'control:point_mass-hard'))
  assert line.endswith(
      'holds control:point_mass-easy data; train with --env '
      'control:point_mass-easy, or give a dataset of control:point_mass-hard '
      '(control:point_mass-hard has no reward to relabel with)')
  line = _error_line(capsys, _train(small_dataset, 'control:point_mass-hard',
                                    '--relabel'))
  assert 'no reward defined on observations' in line


def test_awr_takes_no_snippet_length(capsys, small_dataset):
  argv = _train(small_dataset, ENV_ID, '--snippet-length', '8')
  argv[2] = 'awr'
  assert 'whole episodes' in _error_line(capsys, argv)


def test_shared_buffer_needs_an_online_phase(capsys, small_dataset):
  line = _error_line(capsys, _train(small_dataset, ENV_ID, '--online-buffer',
                                    'shared'))
  assert '--online-buffer' in line and '--offline-steps' in line


def test_multi_task_training_refuses_data_of_another_suite(capsys,
                                                          small_dataset):
  line = _error_line(capsys, _train(small_dataset, 'sawyer:multitask'))
  assert 'does not match sawyer:multitask after relabelling' in line


@pytest.mark.parametrize('extra, expected', [
    (['--controller', 'juggle'], "--controller 'juggle'"),
    (['--noise-levels', '0.1,x'], "--noise-levels '0.1,x'"),
])
def test_bad_generate_flags(capsys, tmp_path, extra, expected):
  line = _error_line(capsys, ['dataset', 'generate', '--env', 'sawyer:lift',
                              '--out', str(tmp_path / 'd'), *extra])
  assert expected in line
  assert not os.path.exists(tmp_path / 'd')  # nothing written


def test_damaged_observation_statistics_of_a_run(capsys, small_dataset,
                                                 tmp_path):
  run_dir = tmp_path / 'run'
  run_dir.mkdir()
  (run_dir / 'observation_stats.npz').write_bytes(b'damaged')
  line = _error_line(capsys, _train(small_dataset, ENV_ID,
                                    '--normalise-observations',
                                    '--run-dir', str(run_dir)))
  assert 'observation_stats.npz' in line
  assert (run_dir / 'observation_stats.npz').read_bytes() == b'damaged'


@pytest.mark.parametrize('flags,expected', [
    (['--env', 'control:nope-nope'], 'unknown environment id'),
    (['--episodes', '0'], '--episodes must be positive'),
    (['--actors', '0'], '--actors must be positive'),
])
def test_bad_collect_flags(capsys, tmp_path, flags, expected):
  argv = ['collect', '--env', ENV_ID, '--episodes', '1', '--out',
          str(tmp_path / 'x'), *flags]
  assert expected in _error_line(capsys, argv)
  assert not os.path.exists(tmp_path / 'x')


def test_collect_into_a_dataset_of_another_environment(capsys,
                                                       small_dataset):
  argv = ['collect', '--env', 'control:cartpole-balance', '--episodes', '1',
          '--out', small_dataset]
  assert 'holds control:point_mass-easy data' in _error_line(capsys, argv)


_FAST_ERROR = '''
import sys, time
start = time.time()
from abmrl.launch import cli
code = cli.main(sys.argv[1:])
print(code, 'tensorflow' in sys.modules, round(time.time() - start, 2))
'''


@pytest.mark.parametrize('argv, expected', [
    (['--agent', 'nope'], "unknown agent 'nope'"),
    (['--steps', '0'], '--steps must be positive'),
    (['--dataset', '{file}'], 'is a file, not a dataset directory'),
    (['--dataset', '{missing}'], 'does not exist'),
    (['--run-dir', '{file}'], '--run-dir {file} is a file, not a directory'),
    (['--max-node-restarts', '-1'], '--max-node-restarts -1: 0 or more'),
    (['--checkpoint-minutes', '0'], '--checkpoint-minutes 0.0: more than 0'),
])
def test_bad_flags_and_paths_answer_before_tensorflow_loads(
    small_dataset, tmp_path, argv, expected):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  a_file = tmp_path / 'a_file'
  a_file.write_text('')
  paths = dict(file=str(a_file), missing=str(tmp_path / 'missing'))
  argv = [arg.format(**paths) for arg in argv]
  defaults = {'--agent': 'bm', '--env': ENV_ID, '--dataset': small_dataset,
              '--run-dir': str(tmp_path / 'run')}
  for flag, value in defaults.items():
    if flag not in argv:
      argv += [flag, value]
  done = subprocess.run([sys.executable, '-c', _FAST_ERROR, 'train', *argv],
                        capture_output=True, text=True, timeout=60)
  code, tensorflow, seconds = done.stdout.split()
  line, = done.stderr.strip().splitlines()
  assert line.startswith('abmrl: error: ') and (
      expected.format(**paths) in line), done.stderr
  assert code == '2' and tensorflow == 'False', (code, tensorflow, seconds)


def _subcommands(parser, prefix=()):
  """Every command line down to a leaf subcommand, as argv prefixes."""
  import argparse  # pylint: disable=g-import-not-at-top
  actions = [a for a in parser._actions  # pylint: disable=protected-access
             if isinstance(a, argparse._SubParsersAction)]  # pylint: disable=protected-access
  if not actions:
    yield list(prefix)
    return
  for name, sub in actions[0].choices.items():
    yield from _subcommands(sub, prefix + (name,))


def test_every_command_answers_help(capsys):
  """`--help` of every (sub)command prints its usage and exits 0 (a help
  text's stray % once made argparse raise on `dataset generate --help`)."""
  commands = list(_subcommands(cli.build_parser()))
  assert ['dataset', 'generate'] in commands and ['train'] in commands
  for argv in commands:
    with pytest.raises(SystemExit) as exit_info:
      cli.main(argv + ['--help'])
    assert exit_info.value.code == 0, argv
    assert 'usage: abmrl' in capsys.readouterr().out, argv
