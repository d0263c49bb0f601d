"""Restorers: replay logged episodes from disk into a Reverb table, forever.

ABM paper §5.2, footnote 1: the dataset can be larger than the replay, so a
set of restorers reads episodes from disk and adds them back into replay in a
loop. Each restorer owns a shard of the episode files.

Snippets never cross an episode boundary: an episode with T transitions has
T + 1 observations and yields the length-N windows starting at 0 … T + 1 − N,
the last ending at the final observation. Episodes shorter than N
observations are skipped and counted. With `whole_episodes`, each episode is
one snippet, padded to N rows (datasets/replay.py); longer ones are skipped
and counted.

Relabelling. Given (observation_fn, reward_fn) pairs, each episode read is
restored once per pair with the observations and rewards they give: logged
data learned for a task it was not collected for, and, for a multi-task
environment, every transition inserted once per task (ABM paper §5.2).

Mixing. A restorer keeps `interleave` episodes open at once (in memory) and
draws each snippet from a random open episode at a random position, so the
table's contents stay mixed even when FIFO removal holds only part of the
data.

Packing. Each table item holds `snippets_per_item` (K) such snippets: the
restorer gathers them into one [K·N, ...] block, appended to Reverb as a
single step, which the learner reshapes to [K, N, ...]. Sampling and
inserting cost Reverb and tf.data a fixed amount per item; with snippets of 2
rows that per-item cost, not the data, bounds throughput, so packing K
snippets per item divides it by K. (Rows are copied into each block rather
than shared between overlapping items through Reverb's chunks: Reverb 0.7
mis-slices items that reference scattered rows of one chunk.) The snippets of
one item come from the restorer's open episodes at that moment; the
learner's batch mixes B/K items sampled uniformly from the whole table.
"""

import dataclasses
import logging
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import reverb

from abmrl.datasets import episodes as episodes_lib
from abmrl.datasets import replay as replay_lib


@dataclasses.dataclass
class RestorerStats:
  episodes: int = 0
  steps: int = 0
  snippets: int = 0
  items: int = 0
  passes: int = 0
  files_skipped: int = 0  # episode files that cannot be read, each once
  nonfinite_snippets: int = 0  # holding NaN/inf: never inserted
  episodes_too_short: int = 0
  episodes_too_long: int = 0


# Items written between the restorer's counts of them (each count is a call
# to the counter node).
_COUNT_EVERY_ITEMS = 16


@dataclasses.dataclass
class _OpenEpisode:
  episode: episodes_lib.Episode
  starts: List[int]  # snippet starts not yet inserted, in random order
  behaviour: int  # its tag's index in the dataset's sorted tags
  counted: bool = True  # False for the 2nd, 3rd… relabelling of one episode


class Restorer:
  """Reads a shard of a dataset's episodes and inserts snippets into Reverb."""

  def __init__(self,
               dataset_dir: str,
               replay: reverb.Client,
               table: str,
               snippet_length: int,
               snippets_per_item: int = 1,
               shard_index: int = 0,
               num_shards: int = 1,
               interleave: int = 8,
               seed: int = 0,
               counter=None,
               max_passes: Optional[int] = None,
               max_in_flight_items: int = 32,
               should_stop: Optional[Callable[[], bool]] = None,
               first_episodes: Optional[int] = None,
               relabellings: Optional[Sequence[Tuple[Callable, Callable]]]
               = None,
               whole_episodes: bool = False,
               holdout_fraction: float = 0.0):
    """`holdout_fraction`: the episodes `episodes.holdout_split` holds out
    are never restored (a learner validates on them).

    `relabellings`: (observation_fn, reward_fn) pairs; each episode read
    is restored once per pair, relabelled with it (`episodes.relabelled`):
    one pair retargets data to another task, a multi-task environment's
    pairs insert every transition once per task."""
    self._files = episodes_lib.holdout_split(
        episodes_lib.list_episodes(dataset_dir, first_episodes),
        holdout_fraction)[0][shard_index::num_shards]
    self._dataset_dir = dataset_dir
    self._tag_index = {tag: i for i, tag in
                       enumerate(episodes_lib.behaviour_tags(dataset_dir))}
    self._replay = replay
    self._table = table
    self._snippet_length = snippet_length
    self._snippets_per_item = snippets_per_item
    self._interleave = max(1, interleave)
    self._rng = np.random.default_rng([seed, shard_index])
    self._counter = counter
    self._max_passes = max_passes
    self._max_in_flight_items = max_in_flight_items
    # Polled between inserts and while the rate limiter holds inserts back,
    # so the restorer returns promptly when its program stops.
    self._should_stop = should_stop or (lambda: False)
    self._shard_name = f'restorer {shard_index}/{num_shards}'
    self._relabellings = relabellings
    self._whole_episodes = whole_episodes
    self._bad_files = set()  # read once, named once, skipped after
    self._named_nonfinite = set()  # episodes whose NaN/inf were named
    self.stats = RestorerStats()

  def run(self) -> RestorerStats:
    """Restores the shard in shuffled passes until `max_passes` (or forever).

    With `max_passes`, snippets left over at the end that do not fill an item
    are dropped (fewer than `snippets_per_item`).
    """
    if not self._files:
      logging.warning('%s: no episode files in its shard of %s',
                      self._shard_name, self._dataset_dir)
      return self.stats
    writer = replay_lib.SnippetWriter(
        self._replay, self._table, self._snippet_length,
        self._snippets_per_item, self._max_in_flight_items, self._should_stop,
        self._whole_episodes)
    pending = self._episode_paths()
    open_episodes: List[_OpenEpisode] = []
    while not self._should_stop():
      self._count_inserted(writer, at_least=_COUNT_EVERY_ITEMS)
      while len(open_episodes) < self._interleave:
        path = next(pending, None)
        if path is None:
          break
        open_episodes.extend(self._open(path))
      if not open_episodes:
        break
      i = int(self._rng.integers(len(open_episodes)))
      current = open_episodes[i]
      start = current.starts.pop()
      if not current.starts:
        open_episodes.pop(i)
        if current.counted:
          self._retire(current.episode)
      if not writer.add(current.episode, start, current.behaviour):
        break
    if not self._should_stop():
      writer.flush()
      self._count_inserted(writer, at_least=1)
    # No call to the counter once the program stops (its server may be
    # gone, and the call would wait forever): the stats alone then.
    self.stats.items, self.stats.snippets = writer.items, writer.snippets
    return self.stats

  def _count_inserted(self, writer: replay_lib.SnippetWriter,
                      at_least: int) -> None:
    """Adds the items (and their snippets) written since the last count to
    the stats and to the counter (`restorer_items`, `restorer_snippets`:
    the insert rate), once there are `at_least` of them."""
    items = writer.items - self.stats.items
    if items < at_least:
      return
    snippets = writer.snippets - self.stats.snippets
    self.stats.items, self.stats.snippets = writer.items, writer.snippets
    self._count(items=items, snippets=snippets)

  def _episode_paths(self) -> Iterator[str]:
    """Episode paths, shuffled anew each pass; counts passes."""
    while self._max_passes is None or self.stats.passes < self._max_passes:
      for i in self._rng.permutation(len(self._files)):
        yield self._files[i]
      self.stats.passes += 1
      self._count(passes=1)

  def _open(self, path: str) -> List[_OpenEpisode]:
    """The episode at `path` (once per relabelling) with its snippet starts;
    none if it is unreadable or yields no snippet."""
    if path in self._bad_files:
      return []
    try:
      episode = episodes_lib.read_episode(path)
    except episodes_lib.BadEpisode as e:
      # A corrupt or truncated file must not stop the restorer: named once
      # per run, and skipped in every pass after.
      logging.error('%s: skipping bad episode %s: %s', self._shard_name,
                    path, e.reason)
      self._bad_files.add(path)
      self.stats.files_skipped += 1
      self._count(files_skipped=1)
      return []
    starts = replay_lib.snippet_starts(len(episode.observation),
                                       self._snippet_length,
                                       self._whole_episodes, self._rng)
    starts = self._finite(path, episode, starts)
    if starts is None:
      return []
    if not starts:
      problem = ('episodes_too_long' if self._whole_episodes
                 else 'episodes_too_short')
      setattr(self.stats, problem, getattr(self.stats, problem) + 1)
      self._count(**{problem: 1})
      return []
    views = episodes_lib.relabelled_views(episode, self._relabellings)
    behaviour = self._tag_index[episodes_lib.episode_behaviour(path)]
    return [_OpenEpisode(view, starts if i == 0 else
                         [int(s) for s in self._rng.permutation(starts)],
                         behaviour, counted=i == 0)
            for i, view in enumerate(views)]

  def _finite(self, path: str, episode: episodes_lib.Episode,
              starts: List[int]) -> Optional[List[int]]:
    """The snippet starts whose rows are all finite (None when that leaves
    none of an episode that had some); snippets with NaN/inf are counted
    each pass, and the episode named once."""
    bad = episodes_lib.non_finite_rows(episode)
    if not bad:
      return starts
    rows = np.zeros(len(episode.reward), bool)
    for indices in bad.values():
      rows[indices] = True
    length = len(rows) if self._whole_episodes else self._snippet_length
    kept = [s for s in starts if not rows[s:s + length].any()]
    dropped = len(starts) - len(kept)
    self.stats.nonfinite_snippets += dropped
    self._count(nonfinite_snippets=dropped)
    if path not in self._named_nonfinite:
      self._named_nonfinite.add(path)
      logging.error('%s: episode %s holds NaN/inf (%s): %d of its %d '
                    'snippets skipped', self._shard_name, path,
                    ', '.join(f'{name} in {len(r)} rows'
                              for name, r in bad.items()),
                    dropped, len(starts))
    return kept or None

  def _retire(self, episode: episodes_lib.Episode) -> None:
    self.stats.episodes += 1
    self.stats.steps += episode.num_transitions
    self._count(episodes=1, steps=episode.num_transitions)

  def _count(self, **increments) -> None:
    if self._counter is not None:
      self._counter.increment(
          **{f'restorer_{k}': v for k, v in increments.items()})
