"""Restorers against a real Reverb server."""

import collections
import dataclasses
import os
import shutil
import threading
import time

from acme.utils import counting
import numpy as np
import pytest
import reverb

from abmrl.datasets import episodes
from abmrl.datasets import replay
from abmrl.datasets import restorer as restorer_lib
from tests.test_episodes import _corrupt

SNIPPET_LENGTH = 3


def _queue_server(directory, snippets_per_item=1):
  """A queue table big enough to hold every snippet of the small dataset."""
  spec = episodes.read_spec(directory)
  table = reverb.Table.queue(
      'snippets', max_size=100_000, signature=replay.snippet_signature(
          spec, SNIPPET_LENGTH, snippets_per_item))
  return reverb.Server([table])


@pytest.fixture
def queue_server(small_dataset):
  server = _queue_server(small_dataset)
  yield server
  server.stop()


def _drain(server, count, snippets_per_item=1):
  """Takes `count` items out of the queue; returns their snippets."""
  dataset = reverb.TrajectoryDataset.from_table_signature(
      f'localhost:{server.port}', 'snippets',
      max_in_flight_samples_per_worker=10)
  snippets = []
  for sample in dataset.take(count):
    for k in range(snippets_per_item):
      rows = slice(k * SNIPPET_LENGTH, (k + 1) * SNIPPET_LENGTH)
      snippets.append({name: x[rows] for name, x in sample.data.items()})
  return snippets


def _windows(paths):
  """Every length-N window of every episode, keyed by its rows and its
  episode's behaviour tag index (in the dataset's sorted tags)."""
  windows = collections.Counter()
  for path in paths:
    episode = episodes.read_episode(path)
    tags = episodes.behaviour_tags(os.path.dirname(os.path.dirname(
        os.path.dirname(path))))
    tag = tags.index(episodes.episode_behaviour(path))
    for start in range(len(episode.observation) - SNIPPET_LENGTH + 1):
      end = start + SNIPPET_LENGTH
      windows[tuple(np.concatenate([
          episode.observation[start:end].ravel(),
          episode.action[start:end].ravel(), episode.reward[start:end],
          episode.discount[start:end],
          np.full(SNIPPET_LENGTH, tag)]).tolist())] += 1
  return windows


def _key(snippet):
  return tuple(np.concatenate([
      snippet['observation'].numpy().ravel(),
      snippet['action'].numpy().ravel(), snippet['reward'].numpy(),
      snippet['discount'].numpy(), snippet['behaviour'].numpy()]).tolist())


def test_every_step_reaches_reverb_intact(small_dataset, queue_server):
  client = reverb.Client(f'localhost:{queue_server.port}')
  counter = counting.Counter()
  stats = []
  for shard in range(2):
    restorer = restorer_lib.Restorer(
        small_dataset, client, 'snippets', SNIPPET_LENGTH, shard_index=shard,
        num_shards=2, interleave=3, seed=shard, counter=counter, max_passes=1)
    stats.append(restorer.run())
  expected = _windows(episodes.list_episodes(small_dataset))
  total = sum(expected.values())
  assert total == 8 * (121 - SNIPPET_LENGTH + 1)
  assert sum(s.snippets for s in stats) == total
  assert sum(s.episodes for s in stats) == 8
  assert sum(s.steps for s in stats) == 8 * 120
  assert client.server_info()['snippets'].current_size == total

  received = collections.Counter(_key(s) for s in _drain(queue_server, total))
  # The same multiset: each window exactly once, none crossing an episode,
  # each with its episode's behaviour tag.
  assert received == expected
  assert len({key[-1] for key in received}) == 4  # the generator's 4 tags

  counts = counter.get_counts()
  assert counts['restorer_episodes'] == 8
  assert counts['restorer_steps'] == 960
  assert counts['restorer_passes'] == 2
  # The insert rate's counts (one snippet per item here).
  assert counts['restorer_snippets'] == counts['restorer_items'] == total


def test_packed_items_hold_valid_snippets(small_dataset):
  server = _queue_server(small_dataset, snippets_per_item=4)
  try:
    client = reverb.Client(f'localhost:{server.port}')
    stats = [restorer_lib.Restorer(
        small_dataset, client, 'snippets', SNIPPET_LENGTH, snippets_per_item=4,
        shard_index=shard, num_shards=2, interleave=2, max_passes=1).run()
             for shard in range(2)]
    items = sum(s.items for s in stats)
    assert sum(s.snippets for s in stats) == 4 * items
    expected = _windows(episodes.list_episodes(small_dataset))
    total = sum(expected.values())
    # Only a last, incomplete item per restorer may be dropped.
    assert total - 2 * 3 <= 4 * items <= total
    received = collections.Counter(
        _key(s) for s in _drain(server, items, snippets_per_item=4))
    assert sum(received.values()) == 4 * items
    assert not received - expected  # every snippet a true window, none twice
  finally:
    server.stop()


def test_snippets_end_at_the_final_observation(small_dataset, queue_server):
  client = reverb.Client(f'localhost:{queue_server.port}')
  path = episodes.list_episodes(small_dataset)[0]
  restorer = restorer_lib.Restorer(
      os.path.dirname(os.path.dirname(os.path.dirname(path))), client,
      'snippets', SNIPPET_LENGTH, max_passes=1)
  stats = restorer.run()
  snippets = _drain(queue_server, stats.snippets)
  final_rows = [s for s in snippets if s['discount'].numpy()[-1] == 0]
  # One snippet per episode ends at its last observation, whose action,
  # reward and discount are zero placeholders.
  assert len(final_rows) == 8
  for snippet in final_rows:
    np.testing.assert_array_equal(snippet['action'].numpy()[-1], 0)
    assert np.all(snippet['discount'].numpy()[:-1] == 1)


def test_corrupt_episode_is_skipped_and_counted(small_dataset, queue_server,
                                                tmp_path, caplog):
  copy = str(tmp_path / 'copy')
  shutil.copytree(small_dataset, copy)
  victim = episodes.list_episodes(copy)[5]
  _corrupt(victim)
  client = reverb.Client(f'localhost:{queue_server.port}')
  counter = counting.Counter()
  restorer = restorer_lib.Restorer(copy, client, 'snippets', SNIPPET_LENGTH,
                                   counter=counter, max_passes=2)
  stats = restorer.run()
  assert stats.files_skipped == 1  # files, not passes
  assert stats.episodes == 2 * 7
  assert counter.get_counts()['restorer_files_skipped'] == 1
  assert caplog.text.count(victim) == 1  # named once, with its reason
  assert 'truncated or corrupt' in caplog.text


def test_rate_limiter_makes_restorer_wait_and_stop_releases_it(small_dataset):
  spec = episodes.read_spec(small_dataset)
  table = replay.make_snippet_table(
      'snippets', spec, SNIPPET_LENGTH, max_size=10_000, samples_per_insert=4,
      min_size_to_sample=50, batch_size=8, snippets_per_item=1)
  server = reverb.Server([table])
  try:
    client = reverb.Client(f'localhost:{server.port}')
    stop = threading.Event()
    restorer = restorer_lib.Restorer(small_dataset, client, 'snippets',
                                     SNIPPET_LENGTH, should_stop=stop.is_set)
    thread = threading.Thread(target=restorer.run, daemon=True)
    thread.start()
    time.sleep(3)
    size = client.server_info()['snippets'].current_size
    # Nobody samples, so inserts stop at min size + error buffer.
    assert 50 <= size < 200
    assert thread.is_alive()
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
  finally:
    server.stop()


def test_fifo_table_bounds_replay_size(small_dataset):
  spec = episodes.read_spec(small_dataset)
  table = replay.make_snippet_table(
      'snippets', spec, SNIPPET_LENGTH, max_size=100, samples_per_insert=1e-3,
      min_size_to_sample=1, batch_size=1)
  server = reverb.Server([table])
  try:
    client = reverb.Client(f'localhost:{server.port}')
    stats = restorer_lib.Restorer(small_dataset, client, 'snippets',
                                  SNIPPET_LENGTH, max_passes=1).run()
    assert stats.snippets > 900
    assert client.server_info()['snippets'].current_size == 100
  finally:
    server.stop()


def test_first_episodes_restores_only_that_view(small_dataset, queue_server):
  client = reverb.Client(f'localhost:{queue_server.port}')
  stats = restorer_lib.Restorer(small_dataset, client, 'snippets',
                                SNIPPET_LENGTH, max_passes=1,
                                first_episodes=1).run()
  assert stats.episodes == 4  # the first episode of each behaviour tag
  first = [p for p in episodes.list_episodes(small_dataset)
           if p.endswith('0000000')]
  expected = _windows(first)
  assert collections.Counter(
      _key(s) for s in _drain(queue_server, stats.snippets)) == expected


def _sawyer_lift_data(tmp_path):
  from abmrl.datasets import generate
  directory = str(tmp_path / 'lift')
  generate.generate('sawyer:lift', directory, episodes_per_behaviour=1,
                    seed=0, max_steps_per_episode=30, progress=None)
  return directory


def test_restored_episodes_carry_the_relabelled_task_rewards(tmp_path):
  """Sawyer lift data restored for bring_to_corner, a task never executed:
  every transition's reward is bring_to_corner of the observation reached."""
  from abmrl import environments
  from abmrl.environments.sawyer import rewards
  directory = _sawyer_lift_data(tmp_path)
  server = _queue_server(directory)
  try:
    restorer = restorer_lib.Restorer(
        directory, reverb.Client(f'localhost:{server.port}'), 'snippets',
        SNIPPET_LENGTH, max_passes=1,
        relabellings=environments.relabellings('sawyer:bring_to_corner'))
    stats = restorer.run()
    snippets = _drain(server, stats.items)
  finally:
    server.stop()
  assert len(snippets) == stats.snippets > 50
  changed = 0
  for snippet in snippets:
    observation, reward = snippet['observation'], snippet['reward']
    for t in range(SNIPPET_LENGTH - 1):
      if snippet['discount'][t] == 0 and reward[t] == 0:  # past the end
        continue
      expected = rewards.bring_to_corner(observation[t + 1])
      np.testing.assert_allclose(reward[t], expected, rtol=1e-5, atol=1e-7)
      changed += abs(expected - rewards.lift(observation[t + 1])) > 1e-3
  assert changed > 0  # the two tasks' rewards differ on these data


def test_multi_task_restoring_inserts_each_transition_once_per_task(tmp_path):
  """Single-task lift data restored for sawyer:multitask: every window comes
  back once per task, with that task's one-hot input and rewards."""
  from abmrl import environments
  from abmrl.environments.sawyer import multitask
  from abmrl.environments.sawyer import observations
  directory = _sawyer_lift_data(tmp_path)
  spec = episodes.read_spec(directory)
  tasks = multitask.TASK_SET
  restored_spec = dataclasses.replace(
      spec, observation_shape=(observations.SIZE + len(tasks),))
  server = reverb.Server([reverb.Table.queue(
      'snippets', max_size=100_000, signature=replay.snippet_signature(
          restored_spec, SNIPPET_LENGTH))])
  try:
    stats = restorer_lib.Restorer(
        directory, reverb.Client(f'localhost:{server.port}'), 'snippets',
        SNIPPET_LENGTH, max_passes=1,
        relabellings=environments.relabellings('sawyer:multitask')).run()
    snippets = _drain(server, stats.items)
  finally:
    server.stop()
  windows = sum(len(episodes.read_episode(p).observation) - SNIPPET_LENGTH + 1
                for p in episodes.list_episodes(directory))
  assert stats.episodes == len(episodes.list_episodes(directory))
  assert len(snippets) == stats.snippets == windows * len(tasks)
  per_task = collections.Counter()
  for snippet in snippets:
    observation, reward = (snippet['observation'].numpy(),
                           snippet['reward'].numpy())
    one_hot = observation[:, observations.SIZE:]
    assert (one_hot == one_hot[0]).all() and one_hot[0].sum() == 1
    task = tasks[int(one_hot[0].argmax())]
    per_task[task] += 1
    np.testing.assert_allclose(
        reward[0], multitask.task_rewards(observation[1])[task], rtol=1e-5,
        atol=1e-7)
  assert per_task == {task: windows for task in tasks}


def test_relabelled_episode_rewards_are_the_task_of_the_next_observation():
  observation = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
  episode = episodes.Episode(observation, np.zeros((4, 1), np.float32),
                             np.ones(4, np.float32), np.ones(4, np.float32), {})
  relabelled = episodes.relabelled(episode, lambda o: o[..., 0] * 2)
  np.testing.assert_allclose(relabelled.reward,
                             [*(observation[1:, 0] * 2), 0.0], rtol=1e-6)
  np.testing.assert_array_equal(relabelled.observation, observation)


@pytest.fixture(scope='module')
def uneven_dataset(tmp_path_factory):
  """Three point-mass episodes of 10, 25 and 40 random-action steps."""
  from abmrl import environments  # pylint: disable=g-import-not-at-top
  directory = str(tmp_path_factory.mktemp('uneven') / 'data')
  env = environments.make('control:point_mass-easy', seed=0)
  writer = episodes.EpisodeWriter(directory, 'control:point_mass-easy', env)
  rng = np.random.default_rng(0)
  for length in (10, 25, 40):
    writer.begin_episode(env.reset(), behaviour='random')
    for _ in range(length):
      action = rng.uniform(-1, 1, 2).astype(np.float32)
      writer.append(action, env.step(action))
    writer.end_episode()
  writer.close()
  return directory


def test_whole_episodes_are_padded_items_with_a_mask(uneven_dataset):
  longest = episodes.longest_episode(uneven_dataset)
  assert longest == 41
  spec = episodes.read_spec(uneven_dataset)
  server = reverb.Server([reverb.Table.queue(
      'snippets', max_size=100, signature=replay.snippet_signature(
          spec, longest, whole_episodes=True))])
  try:
    client = reverb.Client(f'localhost:{server.port}')
    stats = restorer_lib.Restorer(
        uneven_dataset, client, 'snippets', longest, max_passes=1,
        whole_episodes=True).run()
    assert (stats.episodes, stats.snippets) == (3, 3)
    dataset = reverb.TrajectoryDataset.from_table_signature(
        f'localhost:{server.port}', 'snippets',
        max_in_flight_samples_per_worker=3)
    items = sorted(({k: v.numpy() for k, v in s.data.items()}
                    for s in dataset.take(3)), key=lambda i: i['mask'].sum())
    for item, path in zip(items, episodes.list_episodes(uneven_dataset)):
      episode = episodes.read_episode(path)
      rows = len(episode.observation)
      assert item['observation'].shape == (41, 4)
      np.testing.assert_array_equal(item['mask'],
                                    np.arange(41) < rows)
      np.testing.assert_array_equal(item['observation'][:rows],
                                    episode.observation)
      np.testing.assert_array_equal(item['reward'][:rows], episode.reward)
      assert not item['observation'][rows:].any()
      assert not item['discount'][rows:].any()
  finally:
    server.stop()


def test_whole_episodes_longer_than_the_snippet_are_skipped_and_counted(
    uneven_dataset):
  spec = episodes.read_spec(uneven_dataset)
  server = reverb.Server([reverb.Table.queue(
      'snippets', max_size=100, signature=replay.snippet_signature(
          spec, 30, whole_episodes=True))])
  try:
    counter = counting.Counter()
    stats = restorer_lib.Restorer(
        uneven_dataset, reverb.Client(f'localhost:{server.port}'), 'snippets',
        30, max_passes=1, whole_episodes=True, counter=counter).run()
    assert (stats.snippets, stats.episodes_too_long) == (2, 1)
    assert counter.get_counts()['restorer_episodes_too_long'] == 1
  finally:
    server.stop()
