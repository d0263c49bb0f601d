"""`abmrl collect`: online MPO runs whose actors log every episode."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from abmrl.datasets import episodes
from abmrl.launch import cli
from abmrl.launch import run as run_lib
from abmrl import environments
from tests.conftest import ENV_ID

# Tiny networks and batches: the program's behaviour, not learning, is tested.
# No XLA: compiling the learner step adds ≈ 7 s to each run on a slow
# machine, which a few hundred small steps never win back.
SMALL = ['--set', 'batch_size=32', '--set', 'policy_layer_sizes=32,32',
         '--set', 'critic_layer_sizes=32,32', '--set', 'num_action_samples=4',
         '--set', 'jit_compile=false',
         '--snippets-per-item', '16', '--min-replay-size', '256',
         '--samples-per-insert', '4', '--progress-seconds', '2']


def _collect(out, seed, target, launch='test_mt', env=ENV_ID, extra=(),
             **popen):
  command = [sys.executable, '-m', 'abmrl.launch.cli', 'collect', '--env', env,
             '--seed', str(seed), '--episodes', str(target), '--out', out,
             '--launch', launch] + SMALL + list(extra)
  if popen:
    return subprocess.Popen(command, **popen)
  return subprocess.run(command, capture_output=True, text=True, timeout=240)


def _seed_episodes(out, seed):
  return [p for p in episodes.list_episodes(out)
          if os.path.basename(os.path.dirname(p)) == episodes.seed_tag(seed)]


def _learner_steps(out, seed):
  rows = run_lib.read_csv(os.path.join(out, 'collector', episodes.seed_tag(seed), 'logs',
                                       'learner', 'logs.csv'))
  return [int(r['learner_steps']) for r in rows]


def test_shared_writers_claim_unique_indices_up_to_the_target(tmp_path):
  """Writers of several actors share one seed's tag: each complete episode
  gets the next index, and none beyond the target is kept."""
  directory = str(tmp_path / 'data')
  env = environments.make(ENV_ID)
  writers = [episodes.EpisodeWriter(directory, ENV_ID, env, shared=True)
             for _ in range(3)]
  kept = []

  def write(writer, actor):
    local_env = environments.make(ENV_ID, seed=actor)
    for _ in range(4):
      ts = local_env.reset()
      writer.begin_episode(ts, behaviour='seed0')
      for _ in range(3 + actor):
        ts = local_env.step(np.zeros(2, np.float32))
        writer.append(np.zeros(2, np.float32), ts)
      kept.append(writer.end_episode(max_episodes=10, actor=actor))

  threads = [threading.Thread(target=write, args=(w, i))
             for i, w in enumerate(writers)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  paths = _seed_episodes(directory, 0)
  assert [os.path.basename(p) for p in paths] == [f'{i:07d}' for i in range(10)]
  assert sorted(p for p in kept if p) == paths
  assert kept.count(None) == 2  # 12 written, the last two over the target
  for path in paths:
    metadata = episodes.read_episode_metadata(path)
    assert metadata['episode_index'] == int(os.path.basename(path))
    assert metadata['length'] == 3 + metadata['actor']
  assert not episodes.list_partial_episodes(directory)


def test_collect_logs_resumes_and_survives_a_kill(tmp_path, capsys):
  out = str(tmp_path / 'data')
  # 1. A clean run of seed 3: two episodes, with metadata.
  result = _collect(out, seed=3, target=2)
  assert result.returncode == 0, result.stderr[-3000:]
  assert '[collect seed 3] 2/2 episodes (2 new)' in result.stdout
  paths = _seed_episodes(out, 3)
  assert len(paths) == 2
  learner_steps = []
  for i, path in enumerate(paths):
    episode = episodes.read_episode(path)
    m = episode.metadata
    assert (m['seed'], m['episode_index'], m['actor'], m['env_id']) == (
        3, i, 0, ENV_ID)
    assert m['return'] == np.float32(episode.reward.sum()) or np.isclose(
        m['return'], episode.reward.sum(), rtol=1e-4)
    assert m['length'] == episode.num_transitions == 1000
    learner_steps.append(m['learner_steps'])
  assert learner_steps == sorted(learner_steps)
  first_run_steps = max(_learner_steps(out, 3))
  assert first_run_steps > 0
  run_dir = os.path.join(out, 'collector', 'seed3')
  assert os.path.isdir(os.path.join(run_dir, 'checkpoints', 'learner'))
  with open(os.path.join(run_dir, 'progress.log')) as f:
    assert 'episodes 2/2' in f.read()

  # 2. Multi-process, killed (SIGKILL, whole process group) mid-episode.
  process = _collect(out, seed=3, target=50, launch='local_mp',
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
  deadline = time.time() + 300
  while time.time() < deadline and not (
      len(_seed_episodes(out, 3)) >= 3 and episodes.list_partial_episodes(out)):
    time.sleep(0.2)
  os.killpg(process.pid, signal.SIGKILL)
  process.wait()
  whole = _seed_episodes(out, 3)
  assert len(whole) >= 3, 'the killed collection wrote no new episode'
  assert episodes.list_partial_episodes(out), 'not killed mid-episode'
  for path in whole:  # every complete episode reads back
    assert episodes.read_episode(path).num_transitions == 1000
  assert episodes.count_episodes(out, 'seed3') == len(whole)

  # 3. Re-running continues the count: no duplicates, the partial removed,
  # the learner resumed from its checkpoint.
  result = _collect(out, seed=3, target=len(whole) + 1)
  assert result.returncode == 0, result.stderr[-3000:]
  final = _seed_episodes(out, 3)
  assert [os.path.basename(p) for p in final] == [
      f'{i:07d}' for i in range(len(whole) + 1)]
  assert not episodes.list_partial_episodes(out)
  assert episodes.read_episode_metadata(final[-1])['learner_steps'] >= (
      first_run_steps)

  # 4. A second seed goes into the same dataset; a finished seed is a no-op.
  result = _collect(out, seed=4, target=1)
  assert result.returncode == 0, result.stderr[-3000:]
  assert len(_seed_episodes(out, 4)) == 1
  # (The no-op starts nothing, so it runs in-process.)
  assert cli.main(['collect', '--env', ENV_ID, '--seed', '4', '--episodes',
                   '1', '--out', out]) == 0
  assert 'nothing to do' in capsys.readouterr().out
  assert len(episodes.list_episodes(out, first_episodes=1)) == 2


def test_collector_improves_on_an_easy_task(tmp_path):
  """cartpole-swingup, 12 episodes (≈40 s): the online MPO learner's policy
  improves the logged returns. Measured on seeds 0, 1, 2: first three
  episodes 34, 63, 23 on average; last three 207, 224, 243."""
  out = str(tmp_path / 'data')
  command = [sys.executable, '-m', 'abmrl.launch.cli', 'collect', '--env',
             'control:cartpole-swingup', '--seed', '0', '--episodes', '12',
             '--out', out, '--launch', 'test_mt', '--set', 'batch_size=64',
             '--set', 'policy_layer_sizes=64,64', '--set',
             'critic_layer_sizes=64,64', '--samples-per-insert', '64',
             '--min-replay-size', '1000']
  result = subprocess.run(command, capture_output=True, text=True, timeout=240)
  assert result.returncode == 0, result.stderr[-3000:]
  returns = [episodes.read_episode_metadata(p)['return']
             for p in _seed_episodes(out, 0)]
  assert len(returns) == 12
  first, last = np.mean(returns[:3]), np.mean(returns[-3:])
  assert last > first + 50, returns


def test_multi_task_collection_logs_the_task_and_every_tasks_return(tmp_path):
  """sawyer:multitask: the task switches between episodes; each episode's
  metadata names the task acted on and holds every task's return (its
  return is the acted task's); the learner's replay gets every transition
  once per task (9 × 200 snippets per episode: enough to start learning)."""
  from abmrl.environments.sawyer import multitask
  out = str(tmp_path / 'data')
  done = _collect(out, 0, 3, env='sawyer:multitask')
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  paths = _seed_episodes(out, 0)
  assert len(paths) == 3
  for path in paths:
    metadata = episodes.read_episode_metadata(path)
    assert metadata['task'] in multitask.EXECUTED
    assert set(metadata['task_returns']) == set(multitask.TASK_SET)
    np.testing.assert_allclose(metadata['return'],
                               metadata['task_returns'][metadata['task']],
                               rtol=1e-4, atol=1e-4)
    episode = episodes.read_episode(path)
    one_hot = episode.observation[:, -len(multitask.TASK_SET):]
    assert (one_hot.argmax(axis=1) ==
            multitask.TASK_SET.index(metadata['task'])).all()
  assert max(_learner_steps(out, 0)) > 0
