"""The whole Launchpad program: restorers → Reverb → learner → evaluators."""

import csv
import json
import os
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from abmrl.launch import cli
from abmrl.launch import config as config_lib
from abmrl.launch import run as run_lib
from abmrl.datasets import episodes
from tests.conftest import ENV_ID
from tests.conftest import run_ok

SMALL_AGENT = {'batch_size': 64, 'policy_layer_sizes': (32, 32)}


def _config(dataset, run_dir, steps, **data):
  return config_lib.TrainConfig.for_agent(
      'bm', {'data': dict(dataset_dir=dataset, restorers=2, **data),
             'evaluation': dict(evaluators=1, episodes=1,
                                every_learner_steps=10),
             'replay': dict(snippet_length=2, snippets_per_item=8,
                            replay_size=5_000, min_replay_size=200,
                            samples_per_insert=4.0),
             'launch': dict(launch_type='test_mt')},
      SMALL_AGENT, env_id=ENV_ID, run_dir=run_dir, steps=steps)


def test_program_runs_and_stops_in_test_mt(small_dataset, tmp_path):
  run_dir = str(tmp_path / 'run')
  config = _config(small_dataset, run_dir, steps=25)
  result = run_lib.train(config)
  assert result.learner_steps == 25
  assert np.isfinite(result.final_return)
  assert list(result.final_returns) == ['evaluator_policy_0']
  with open(os.path.join(run_dir, 'config.json')) as f:
    saved = json.load(f)
  assert saved['steps'] == 25 and saved['replay']['snippets_per_item'] == 8
  # The saved tree is the config itself: it loads back equal.
  assert config_lib.load_train_config(
      os.path.join(run_dir, 'config.json')) == config
  assert os.path.isdir(os.path.join(run_dir, 'checkpoints', 'learner'))
  assert os.listdir(os.path.join(run_dir, 'tb'))
  # `abmrl train --config RUN_DIR/config.json` reruns the saved run, which
  # resumes from its checkpoint; a flag beside it overrides its value.
  assert cli.main(['train', '--config', os.path.join(run_dir, 'config.json'),
                   '--steps', '30']) == 0
  assert run_lib.read_result(run_dir).learner_steps == 30


def test_video_of_a_trained_run(small_dataset, tmp_path):
  """`abmrl video` restores the run's latest checkpoint and renders an
  episode offscreen to a GIF (OSMesa; .ci/run installs Debian's
  libosmesa6). Its return is the mean-action policy's, as evaluators'."""
  import pytest
  from abmrl.environments import rendering
  if rendering.default_backend() != 'osmesa':
    pytest.skip('no libOSMesa here for offscreen rendering '
                '(apt-get install libosmesa6)')
  from PIL import Image
  run_dir = str(tmp_path / 'run')
  run_lib.train(_config(small_dataset, run_dir, steps=25))
  out = str(tmp_path / 'episode.gif')
  done = subprocess.run(
      [sys.executable, '-m', 'abmrl.launch.cli', 'video', '--run-dir', run_dir,
       '--frame-every', '100', '--out', out],
      capture_output=True, text=True, timeout=240,
      env=dict(os.environ, MUJOCO_GL='osmesa', PYOPENGL_PLATFORM='osmesa'),
      cwd=os.path.dirname(os.path.dirname(__file__)))
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  assert 'mean return' in done.stdout
  gif = Image.open(out)
  assert gif.n_frames == 11 and gif.size == (320, 240)  # 1000 steps / 100 + 1
  frame = np.asarray(gif.convert('RGB'))
  assert frame.std() > 5  # a picture, not a blank frame
  # A run directory without checkpoints is one clear line.
  empty = tmp_path / 'empty'
  empty.mkdir()
  done = subprocess.run(
      [sys.executable, '-m', 'abmrl.launch.cli', 'video', '--run-dir', str(empty)],
      capture_output=True, text=True, timeout=120,
      cwd=os.path.dirname(os.path.dirname(__file__)))
  assert done.returncode == 2 and 'not a run directory' in done.stderr


def _launchpad_processes_since(start, tag):
  """Launchpad processes started since `start` by the command run with
  ABMRL_TEST_TAG=`tag` (children inherit it), so other programs on the
  machine, e.g. another test worker's, do not count."""
  found = []
  for process in psutil.process_iter(['cmdline', 'create_time']):
    cmdline = ' '.join(process.info['cmdline'] or [])
    if 'launchpad' not in cmdline or process.info['create_time'] < start - 1:
      continue
    try:
      if process.environ().get('ABMRL_TEST_TAG') == tag:
        found.append(cmdline)
    except (psutil.AccessDenied, psutil.NoSuchProcess):
      pass
  return found


def _train_cli(dataset, run_dir, steps, launch='local_mp'):
  command = [sys.executable, '-m', 'abmrl.launch.cli', 'train', '--agent', 'bm',
             '--env', ENV_ID, '--dataset', dataset, '--steps', str(steps),
             '--restorers', '2', '--evaluators', '1', '--eval-episodes', '1',
             '--eval-every', '10', '--min-replay-size', '200',
             '--replay-size', '5000', '--samples-per-insert', '4',
             '--snippets-per-item', '8',
             '--run-dir', run_dir, '--launch', launch,
             '--set', 'batch_size=64', '--set', 'policy_layer_sizes=32,32']
  return subprocess.run(command, capture_output=True, text=True, timeout=280,
                        cwd=os.path.dirname(os.path.dirname(__file__)),
                        env=dict(os.environ, ABMRL_TEST_TAG=run_dir))


def test_multiprocess_run_exits_cleanly_and_resumes(small_dataset, tmp_path):
  run_dir = str(tmp_path / 'run')
  start = time.time()
  first = _train_cli(small_dataset, run_dir, steps=20)
  assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
  assert '[train] done' in first.stdout
  assert run_lib.read_result(run_dir).learner_steps == 20
  assert not _launchpad_processes_since(start, run_dir)

  # The checkpoint the multi-process run wrote resumes in any launch; the
  # in-process one starts 7 fewer Python processes (this test: 147 → 115 s
  # on a slow machine).
  second = _train_cli(small_dataset, run_dir, steps=30, launch='test_mt')
  assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
  assert run_lib.read_result(run_dir).learner_steps == 30
  # The learner resumed from its checkpoint: the second run's first logged
  # step continues from 20.
  with open(os.path.join(run_dir, 'logs', 'learner', 'logs.csv')) as f:
    steps = [int(float(row['learner_steps'])) for row in csv.DictReader(f)]
  restart = [b for a, b in zip(steps, steps[1:]) if b < a]
  assert not restart or restart[0] > 20, steps
  assert not _launchpad_processes_since(start, run_dir)
  # Run again, it has nothing to do, and says so without launching.
  third = _train_cli(small_dataset, run_dir, steps=30)
  assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
  assert (f'[train] {run_dir} has finished its 30 learner steps (its '
          'checkpoint is at step 30); nothing to do') in third.stdout
  assert '[replay/0]' not in third.stdout


def test_abm_mpo_program_evaluates_policy_and_prior(small_dataset, tmp_path):
  run_dir = str(tmp_path / 'run')
  command = [sys.executable, '-m', 'abmrl.launch.cli', 'train', '--agent', 'abm_mpo',
             '--env', ENV_ID, '--dataset', small_dataset, '--steps', '12',
             '--restorers', '1', '--eval-episodes', '1', '--eval-every', '100',
             '--min-replay-size', '100', '--replay-size', '2000',
             '--snippet-length', '3', '--snippets-per-item', '8',
             '--run-dir', run_dir, '--launch', 'test_mt',
             '--set', 'batch_size=32', '--set', 'policy_layer_sizes=16',
             '--set', 'prior_layer_sizes=16', '--set', 'critic_layer_sizes=16',
             '--set', 'num_action_samples=4', '--set', 'jit_compile=false',
             # Held-out episodes' Monte-Carlo returns beside the critic's
             # values (γ = 0.9: the 120-step episodes determine them).
             '--holdout-fraction', '0.25', '--set', 'discount=0.9',
             '--set', 'heldout_every=5']
  run_ok(command)
  result = run_lib.read_result(run_dir)
  assert sorted(result.final_returns) == ['evaluator_policy_0',
                                          'evaluator_prior_0']
  assert result.learner_steps == 12
  # What the ABM filter does, per behaviour tag of the data.
  with open(os.path.join(run_dir, 'logs', 'learner', 'logs.csv')) as f:
    rows = list(csv.DictReader(f))
  tags = episodes.behaviour_tags(small_dataset)
  assert len(tags) == 4 and rows  # the logger writes a row a second
  for name in ('abm_weight', 'prior_logp', 'heldout_q', 'heldout_v',
               'heldout_return'):
    for tag in tags:
      values = [float(row[f'{name}_{tag}']) for row in rows]
      assert np.all(np.isfinite(values)), (name, tag)
  weights = [float(row[f'abm_weight_{tag}']) for row in rows for tag in tags]
  assert 0 <= min(weights) and max(weights) <= 1
  assert 0 < float(rows[-1]['e_step_entropy']) <= np.log(4) + 1e-5
  with open(os.path.join(run_dir, 'config.json')) as f:
    saved = json.load(f)
  assert saved['agent'] == 'abm_mpo'
  assert saved['replay']['snippet_length'] == 3
  assert saved['agent_config']['num_action_samples'] == 4


def test_offline_then_online_awac_in_one_run(small_dataset, tmp_path):
  """AWAC trains offline, then online actors act, log their episodes and
  feed the online table, and the learner's batches take from it; the
  evaluators mark which phase each evaluation belongs to."""
  run_dir = str(tmp_path / 'run')
  command = [sys.executable, '-m', 'abmrl.launch.cli', 'train', '--agent', 'awac',
             '--env', ENV_ID, '--dataset', small_dataset, '--steps', '40',
             '--offline-steps', '10', '--online-actors', '1',
             '--online-min-replay-size', '64',
             '--online-samples-per-insert', '4', '--restorers', '1',
             '--eval-episodes', '1', '--eval-every', '5',
             '--min-replay-size', '100', '--replay-size', '2000',
             '--snippets-per-item', '8', '--run-dir', run_dir,
             '--launch', 'test_mt', '--set', 'batch_size=32',
             '--set', 'policy_layer_sizes=16', '--set', 'critic_layer_sizes=16',
             '--set', 'jit_compile=false']
  run_ok(command)
  assert run_lib.read_result(run_dir).learner_steps == 40
  learner_rows = run_lib.read_csv(os.path.join(run_dir, 'logs', 'learner',
                                               'logs.csv'))
  # Every step after the 10th joined an online part (the counter's count,
  # logged beside each learner row).
  online_rows = [r for r in learner_rows if r['learner_steps'] > 10]
  assert online_rows and all(
      r['learner_online_batches'] == r['learner_steps'] - 10
      for r in online_rows), online_rows
  online = episodes.list_episodes(os.path.join(run_dir, 'online_data'))
  assert online and all('/online/' in p for p in online)
  metadata = episodes.read_episode_metadata(online[0])
  assert metadata['behaviour'] == 'online' and metadata['learner_steps'] >= 10
  assert metadata['policy'] == 'awac'
  evaluations = run_lib.read_csv(os.path.join(
      run_dir, 'logs', 'evaluator_policy_0', 'logs.csv'))
  assert {r['online'] for r in evaluations} == {0, 1}, evaluations
  assert evaluations[-1]['online'] == 1


def test_awac_with_one_shared_buffer(small_dataset, tmp_path):
  """--online-buffer shared: the restorer loads the dataset once and stops;
  the learner keeps sampling (no rate limiter stalls it) and online actors
  append to the same table."""
  run_dir = str(tmp_path / 'run')
  command = [sys.executable, '-m', 'abmrl.launch.cli', 'train', '--agent', 'awac',
             '--env', ENV_ID, '--dataset', small_dataset, '--steps', '2000',
             '--offline-steps', '100', '--online-buffer', 'shared',
             '--restorers', '1', '--eval-episodes', '1', '--eval-every', '1000',
             '--min-replay-size', '500', '--replay-size', '5000',
             '--snippets-per-item', '8', '--run-dir', run_dir,
             '--launch', 'test_mt', '--set', 'batch_size=32',
             '--set', 'policy_layer_sizes=16', '--set', 'critic_layer_sizes=16',
             '--set', 'jit_compile=false']
  run_ok(command)
  rows = run_lib.read_csv(os.path.join(run_dir, 'logs', 'learner',
                                       'logs.csv'))
  last = rows[-1]
  # One pass over the 8 episodes (960 snippets, 120 items of 8), then the
  # learner sampled 2000 × 32 snippets from a table fed only by the online
  # actor's 1000-step episodes.
  assert last['restorer_passes'] == 1 and last['restorer_steps'] == 960
  assert last['learner_steps'] == 2000 and last['collector_episodes'] > 0
  assert last['learner_online_batches'] == 0  # no separate online table
  assert episodes.list_episodes(os.path.join(run_dir, 'online_data'))


def test_awr_learns_from_whole_episodes_offline_then_online(small_dataset,
                                                           tmp_path):
  """AWR through the program: replay items are whole episodes padded to the
  environment's 1000-step limit (its online episodes; the data's are 120);
  iterations of 4 episodes (2 offline, 2 online after the switch), 2 value
  and 3 policy steps each."""
  run_dir = str(tmp_path / 'run')
  command = [sys.executable, '-m', 'abmrl.launch.cli', 'train', '--agent', 'awr',
             '--env', ENV_ID, '--dataset', small_dataset, '--steps', '30',
             '--offline-steps', '10', '--online-min-replay-size', '2',
             '--restorers', '1', '--eval-episodes', '1', '--eval-every', '10',
             '--min-replay-size', '4', '--run-dir', run_dir,
             '--launch', 'test_mt', '--set', 'batch_size=4',
             '--set', 'minibatch_size=32', '--set', 'value_steps=2',
             '--set', 'policy_steps=3', '--set', 'policy_layer_sizes=16',
             '--set', 'value_layer_sizes=16', '--set', 'jit_compile=false']
  run_ok(command)
  with open(os.path.join(run_dir, 'config.json')) as f:
    saved = json.load(f)
  assert saved['replay']['snippet_length'] == 1001
  assert saved['replay']['snippets_per_item'] == 1
  learner_rows = run_lib.read_csv(os.path.join(run_dir, 'logs', 'learner',
                                               'logs.csv'))
  assert learner_rows[-1]['learner_steps'] == 30
  # One batch of episodes per iteration of 5 steps: 4 after the switch.
  assert learner_rows[-1]['learner_online_batches'] == 4, learner_rows[-1]
  assert all(np.isfinite(r['value_loss']) for r in learner_rows)
  assert episodes.list_episodes(os.path.join(run_dir, 'online_data'))


def test_fine_tuning_improves_on_the_offline_policy(tmp_path):
  """cartpole-swingup from poor data (noise around the zero action, and
  random): 300 offline steps, then online fine-tuning with MPO. Measured once
  before landing: offline-phase evaluation 0.0, final 163.9; the online
  episodes' returns rose from 18–62 to 178–277."""
  from abmrl.datasets import generate
  dataset = str(tmp_path / 'data')
  generate.generate('control:cartpole-swingup', dataset,
                    episodes_per_behaviour=1, seed=0, progress=None)
  run_dir = str(tmp_path / 'run')
  command = [sys.executable, '-m', 'abmrl.launch.cli', 'train', '--agent', 'mpo',
             '--env', 'control:cartpole-swingup', '--dataset', dataset,
             '--steps', '10000', '--offline-steps', '300',
             '--online-min-replay-size', '1000',
             '--online-samples-per-insert', '32', '--restorers', '1',
             '--eval-episodes', '1', '--eval-every', '2500',
             '--min-replay-size', '1000', '--replay-size', '10000',
             '--snippets-per-item', '16', '--run-dir', run_dir,
             # The paper's settings (TD(0), 2-row snippets), at which the
             # figures above were measured; batch 64 on top.
             '--launch', 'test_mt', '--preset', 'paper',
             '--set', 'batch_size=64', '--set', 'policy_layer_sizes=64,64',
             '--set', 'critic_layer_sizes=64,64']
  run_ok(command)
  evaluations = run_lib.read_csv(os.path.join(
      run_dir, 'logs', 'evaluator_policy_0', 'logs.csv'))
  offline = [r['evaluation_return'] for r in evaluations if not r['online']]
  final = evaluations[-1]
  assert offline and final['final'] == 1 and final['online'] == 1
  assert final['evaluation_return'] > max(offline) + 50, evaluations


def test_bcq_offline_then_online_with_standardised_inputs_resumes(
    small_dataset, tmp_path):
  """BCQ in the whole program: offline, then online actors acting with its
  argmax policy, networks behind the run's observation statistics; a rerun
  with more steps resumes from the checkpoint."""
  run_dir = str(tmp_path / 'run')
  command = [sys.executable, '-m', 'abmrl.launch.cli', 'train', '--agent', 'bcq',
             '--env', ENV_ID, '--dataset', small_dataset, '--steps', '20',
             '--offline-steps', '10', '--online-actors', '1',
             '--online-min-replay-size', '64',
             '--online-samples-per-insert', '4', '--normalise-observations',
             '--restorers', '1', '--eval-episodes', '1', '--eval-every', '10',
             '--min-replay-size', '100', '--replay-size', '2000',
             '--snippets-per-item', '8', '--run-dir', run_dir,
             '--launch', 'test_mt', '--set', 'batch_size=32',
             '--set', 'encoder_layer_sizes=16', '--set', 'decoder_layer_sizes=16',
             '--set', 'perturbation_layer_sizes=16',
             '--set', 'critic_layer_sizes=16', '--set', 'latent_size=4',
             '--set', 'acting_samples=10', '--set', 'jit_compile=false']
  run_ok(command)
  assert run_lib.read_result(run_dir).learner_steps == 20
  online = episodes.list_episodes(os.path.join(run_dir, 'online_data'))
  assert online
  assert episodes.read_episode_metadata(online[0])['policy'] == 'bcq'
  evaluations = run_lib.read_csv(os.path.join(
      run_dir, 'logs', 'evaluator_policy_0', 'logs.csv'))
  assert {r['online'] for r in evaluations} == {0, 1}
  assert all(np.isfinite(r['evaluation_return']) for r in evaluations)
  run_ok(command[:command.index('--steps') + 1] + ['30']
         + command[command.index('--steps') + 2:])
  rows = run_lib.read_csv(os.path.join(run_dir, 'logs', 'learner', 'logs.csv'))
  assert run_lib.read_result(run_dir).learner_steps == 30
  assert rows[-1]['learner_steps'] == 30 and rows[0]['learner_steps'] == 1
  assert [r['learner_steps'] for r in rows].count(21) == 1  # resumed at 20


@pytest.mark.parametrize('agent', ['bear', 'bear_mmd'])
def test_bear_program_evaluates_policy_and_prior_and_resumes(
    small_dataset, tmp_path, agent):
  run_dir = str(tmp_path / 'run')
  command = [sys.executable, '-m', 'abmrl.launch.cli', 'train', '--agent', agent,
             '--env', ENV_ID, '--dataset', small_dataset, '--steps', '12',
             '--restorers', '1', '--eval-episodes', '1', '--eval-every', '100',
             '--min-replay-size', '100', '--replay-size', '2000',
             '--snippets-per-item', '8', '--run-dir', run_dir,
             '--launch', 'test_mt', '--set', 'batch_size=32',
             '--set', 'policy_layer_sizes=16', '--set', 'prior_layer_sizes=16',
             '--set', 'critic_layer_sizes=16', '--set', 'num_action_samples=4',
             '--set', 'warmup_steps=6', '--set', 'jit_compile=false']
  run_ok(command)
  result = run_lib.read_result(run_dir)
  assert sorted(result.final_returns) == ['evaluator_policy_0',
                                          'evaluator_prior_0']
  assert result.learner_steps == 12
  constraint = 'kl' if agent == 'bear' else 'mmd'
  rows = run_lib.read_csv(os.path.join(run_dir, 'logs', 'learner', 'logs.csv'))
  assert f'{constraint}_to_prior' in rows[-1] and rows[-1]['multiplier'] > 0
  run_ok(command[:command.index('--steps') + 1] + ['16']
         + command[command.index('--steps') + 2:])
  rows = run_lib.read_csv(os.path.join(run_dir, 'logs', 'learner', 'logs.csv'))
  steps = [r['learner_steps'] for r in rows]
  # The rerun went on from step 12 (the learner logs at most once a second).
  assert steps[-1] == 16 and steps == sorted(steps) and steps.count(1) == 1


def test_mabe_program_with_rollout_node_and_model_table_reuses_stages(
    small_dataset, tmp_path):
  """MABE through the program: the model and prior stages on the
  restorers' snippets (validated on held-out episodes), then RL batches of
  real and model snippets, the model's written by a rollout node; a rerun
  reuses both finished stages and resumes RL."""
  run_dir = str(tmp_path / 'run')
  command = [sys.executable, '-m', 'abmrl.launch.cli', 'train', '--agent',
             'mabe', '--env', ENV_ID, '--dataset', small_dataset,
             '--steps', '12', '--restorers', '1', '--eval-episodes', '1',
             '--eval-every', '100', '--min-replay-size', '100',
             '--replay-size', '2000', '--snippets-per-item', '8',
             '--holdout-fraction', '0.25', '--run-dir', run_dir,
             '--launch', 'test_mt', '--set', 'batch_size=32',
             '--set', 'policy_layer_sizes=16', '--set', 'prior_layer_sizes=16',
             '--set', 'critic_layer_sizes=16',
             '--set', 'model_layer_sizes=32,32',
             '--set', 'model_weight_decays=0,0,0',
             '--set', 'model_max_steps=200', '--set', 'model_eval_every=50',
             '--set', 'q_steps=20', '--set', 'prior_max_steps=40',
             '--set', 'prior_eval_every=20', '--set', 'rollout_batch=64',
             '--set', 'model_min_replay_size=64',
             '--set', 'real_fraction=0.25', '--set', 'jit_compile=false']
  run_ok(command)
  result = run_lib.read_result(run_dir)
  assert result.learner_steps == 12
  assert sorted(result.final_returns) == ['evaluator_policy_0',
                                          'evaluator_prior_0']
  logs = os.path.join(run_dir, 'logs')
  model_rows = run_lib.read_csv(os.path.join(logs, 'model_validation',
                                             'logs.csv'))
  assert [r['model_steps'] for r in model_rows] == [50, 100, 150, 200]
  assert all(np.isfinite(r['model_validation_mse_6']) for r in model_rows)
  prior_rows = run_lib.read_csv(os.path.join(logs, 'prior_validation',
                                             'logs.csv'))
  assert np.isfinite(prior_rows[-1]['prior_validation_nll'])
  rows = run_lib.read_csv(os.path.join(logs, 'learner', 'logs.csv'))
  # Each batch: 8 real snippets (one item) and 24 of the model's.
  assert rows[-1]['model_transitions'] > 0
  assert np.isfinite(rows[-1]['model_reward_mean'])
  assert 'kl_to_prior' in rows[-1] and rows[-1]['beta'] >= 0
  rollouts = run_lib.read_csv(os.path.join(logs, 'rollout_0', 'logs.csv'))
  assert rollouts[-1]['model_transitions'] >= rollouts[0]['model_transitions']
  done = run_ok(command[:command.index('--steps') + 1] + ['16']
                + command[command.index('--steps') + 2:])
  assert 'model stage: reusing' in done.stdout + done.stderr
  assert 'prior stage: reusing' in done.stdout + done.stderr
  assert run_lib.read_csv(os.path.join(logs, 'model_validation',
                                      'logs.csv')) == model_rows
  assert run_lib.read_result(run_dir).learner_steps == 16
