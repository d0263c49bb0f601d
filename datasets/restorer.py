"""Restorers: replay logged episodes from disk into a Reverb table, forever.

ABM paper §5.2, footnote 1: the dataset can be larger than the replay, so a
set of restorers reads episodes from disk and adds them back into replay in a
loop. Each restorer owns a shard of the episode files and inserts every
length-N window of each episode (a "trajectory snippet") as one item.

Snippets never cross an episode boundary: an episode with T transitions has
T + 1 observations and yields the windows starting at 0 … T + 1 − N, the last
ending at the final observation. Episodes shorter than N observations are
skipped and counted.

To keep the table's contents mixed when FIFO removal holds only part of the
data, each restorer restores `interleave` episodes at once and inserts their
snippets in random order across them.
"""

import dataclasses
import logging
from typing import Callable, List, Optional

import numpy as np
import reverb

from datasets import episodes as episodes_lib
from datasets.replay import SNIPPET_FIELDS

@dataclasses.dataclass
class RestorerStats:
  episodes: int = 0
  steps: int = 0
  snippets: int = 0
  passes: int = 0
  files_skipped: int = 0
  episodes_too_short: int = 0


class _OpenEpisode:
  """An episode whose steps are in a writer, with snippets left to insert."""

  def __init__(self, client: reverb.Client, episode: episodes_lib.Episode,
               snippet_length: int, rng: np.random.Generator):
    length = len(episode.observation)
    self.writer = client.trajectory_writer(num_keep_alive_refs=length)
    for t in range(length):
      self.writer.append({k: getattr(episode, k)[t] for k in SNIPPET_FIELDS})
    self.starts = [int(s) for s in rng.permutation(length - snippet_length + 1)]
    self.steps = length - 1
    self.length = length
    self.unflushed = 0  # items created since this writer's last flush

  def snippet(self, start: int, end: int):
    """Columns for rows [start, end) of the episode."""
    # Negative indices: Reverb 0.7's history slicing maps a positive stop
    # equal to the history length to 0 and returns an empty column.
    stop = end - self.length
    return {k: self.writer.history[k][start - self.length:stop or None]
            for k in SNIPPET_FIELDS}


class Restorer:
  """Reads a shard of a dataset's episodes and inserts snippets into Reverb."""

  def __init__(self,
               dataset_dir: str,
               replay: reverb.Client,
               table: str,
               snippet_length: int,
               shard_index: int = 0,
               num_shards: int = 1,
               interleave: int = 4,
               seed: int = 0,
               counter=None,
               max_passes: Optional[int] = None,
               max_in_flight_items: int = 32,
               should_stop: Optional[Callable[[], bool]] = None):
    self._files = episodes_lib.list_episodes(dataset_dir)[shard_index::num_shards]
    self._dataset_dir = dataset_dir
    self._replay = replay
    self._table = table
    self._snippet_length = snippet_length
    self._interleave = max(1, interleave)
    self._rng = np.random.default_rng([seed, shard_index])
    self._counter = counter
    self._max_passes = max_passes
    self._max_in_flight_items = max_in_flight_items
    # Polled between inserts and while the rate limiter holds inserts back,
    # so the restorer returns promptly when its program stops.
    self._should_stop = should_stop or (lambda: False)
    self._shard_name = f'restorer {shard_index}/{num_shards}'
    self.stats = RestorerStats()

  def run(self) -> RestorerStats:
    """Restores the shard in shuffled passes until `max_passes` (or forever)."""
    if not self._files:
      logging.warning('%s: no episode files in its shard of %s', self._shard_name,
                      self._dataset_dir)
      return self.stats
    client = self._replay
    while self._max_passes is None or self.stats.passes < self._max_passes:
      if not self._restore_pass(client):
        break
      self.stats.passes += 1
      self._count(passes=1)
    return self.stats

  def _restore_pass(self, client: reverb.Client) -> bool:
    """One shuffled pass over the shard; False if stopped before its end."""
    pending = [self._files[i] for i in self._rng.permutation(len(self._files))]
    open_episodes: List[_OpenEpisode] = []
    while pending or open_episodes:
      if self._should_stop():
        # No writer.close(): it would wait on a server that may be gone or
        # holding inserts back.
        return False
      while pending and len(open_episodes) < self._interleave:
        opened = self._open(client, pending.pop())
        if opened is not None:
          open_episodes.append(opened)
      if not open_episodes:
        continue
      i = int(self._rng.integers(len(open_episodes)))
      current = open_episodes[i]
      start = current.starts.pop()
      end = start + self._snippet_length
      current.writer.create_item(self._table, priority=1.0,
                                 trajectory=current.snippet(start, end))
      self.stats.snippets += 1
      current.unflushed += 1
      if current.unflushed >= self._max_in_flight_items:
        # Blocks while the rate limiter holds inserts back.
        if not self._wait(current.writer.flush,
                          block_until_num_items=self._max_in_flight_items // 2):
          continue
        current.unflushed = 0
      if not current.starts:
        if not self._wait(current.writer.end_episode, clear_buffers=True):
          continue
        current.writer.close()
        open_episodes.pop(i)
        self.stats.episodes += 1
        self.stats.steps += current.steps
        self._count(episodes=1, steps=current.steps)
    return True

  def _wait(self, blocking_call, **kwargs) -> bool:
    """Retries a blocking writer call in 1 s slices; False if stopped."""
    while not self._should_stop():
      try:
        blocking_call(timeout_ms=1000, **kwargs)
        return True
      except reverb.errors.DeadlineExceededError:
        pass
    return False

  def _open(self, client: reverb.Client, path: str) -> Optional[_OpenEpisode]:
    try:
      episode = episodes_lib.read_episode(path)
    except Exception as e:  # pylint: disable=broad-except
      # A corrupt or truncated file must not stop the restorer.
      logging.error('%s: skipping unreadable episode %s: %s', self._shard_name,
                    path, e)
      self.stats.files_skipped += 1
      self._count(files_skipped=1)
      return None
    if len(episode.observation) < self._snippet_length:
      self.stats.episodes_too_short += 1
      self._count(episodes_too_short=1)
      return None
    return _OpenEpisode(client, episode, self._snippet_length, self._rng)

  def _count(self, **increments) -> None:
    if self._counter is not None:
      self._counter.increment(
          **{f'restorer_{k}': v for k, v in increments.items()})
