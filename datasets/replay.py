"""The replay table of trajectory snippets and the learner's view of it.

An item holds K snippets of N rows as one [K·N, ...] trajectory (see
datasets/restorer.py for why); the learner's dataset turns B/K items into a
batch {field: [B, N, ...]}. Sizes given to the table are in snippets.

Whole episodes (AWR's returns are computed over whole episodes): each
snippet is then one entire episode, zero-padded to N rows (N: the longest
episode's rows), with a `mask` field that is 1 on the episode's rows.
"""

from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import reverb
import tensorflow as tf

from abmrl.datasets import episodes as episodes_lib

SNIPPET_TABLE = 'snippets'
ONLINE_TABLE = 'online'  # online actors' snippets (fine-tuning)
MODEL_TABLE = 'model'  # model rollouts' transitions (MABE, MOPO)
SNIPPET_FIELDS = ('observation', 'action', 'reward', 'discount')
BEHAVIOUR_FIELD = 'behaviour'  # int32 per row: the behaviour tag's index
NO_BEHAVIOUR = -1  # rows of no dataset tag


def snippet_starts(rows: int, snippet_length: int, whole_episodes: bool,
                   rng: np.random.Generator) -> List[int]:
  """Where an episode of `rows` rows yields its snippets, in random order.

  Every window of N rows inside the episode; with `whole_episodes`, the one
  padded snippet holding all of it (none if it is longer than N rows).
  """
  if whole_episodes:
    return [0] if rows <= snippet_length else []
  return [int(s) for s in rng.permutation(max(0, rows - snippet_length + 1))]


def snippet_signature(spec: episodes_lib.DatasetSpec, snippet_length: int,
                      snippets_per_item: int = 1,
                      whole_episodes: bool = False
                      ) -> Dict[str, tf.TensorSpec]:
  """The Reverb table signature of one item of K snippets."""
  rows = snippet_length * snippets_per_item
  mask = ({'mask': tf.TensorSpec((rows,), tf.float32, 'mask')}
          if whole_episodes else {})
  return {
      'observation': tf.TensorSpec((rows,) + spec.observation_shape,
                                   tf.float32, 'observation'),
      'action': tf.TensorSpec((rows,) + spec.action_shape, tf.float32,
                              'action'),
      'reward': tf.TensorSpec((rows,), tf.float32, 'reward'),
      'discount': tf.TensorSpec((rows,), tf.float32, 'discount'),
      BEHAVIOUR_FIELD: tf.TensorSpec((rows,), tf.int32, BEHAVIOUR_FIELD),
      **mask,
  }


def make_snippet_table(name: str, spec: episodes_lib.DatasetSpec,
                       snippet_length: int, max_size: int,
                       samples_per_insert: Optional[float],
                       min_size_to_sample: int, batch_size: int,
                       snippets_per_item: int = 1,
                       whole_episodes: bool = False) -> reverb.Table:
  """A uniform-sampling FIFO table with a sample-to-insert rate limiter.

  The rate limiter makes restorers wait when the learner is slow (and the
  learner wait when restorers are), so a dataset far larger than the table
  streams through with bounded memory. Sizes are in snippets. With
  `samples_per_insert` None the table only waits for `min_size_to_sample`
  (a buffer loaded once and then sampled freely: AWAC's single buffer).
  """
  k = snippets_per_item
  min_items = max(1, min_size_to_sample // k)
  if samples_per_insert is None:
    rate_limiter = reverb.rate_limiters.MinSize(min_items)
  else:
    # Enough slack for a few batches in flight without stalling either side.
    error_buffer = max(4.0 * batch_size / k, 2.0 * samples_per_insert,
                       0.1 * samples_per_insert * min_items)
    rate_limiter = reverb.rate_limiters.SampleToInsertRatio(
        samples_per_insert=samples_per_insert, min_size_to_sample=min_items,
        error_buffer=error_buffer)
  return reverb.Table(
      name=name,
      sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(),
      max_size=max(1, max_size // k),
      rate_limiter=rate_limiter,
      signature=snippet_signature(spec, snippet_length, k, whole_episodes))


def make_snippet_dataset(server_address: str, table: str, batch_size: int,
                         snippet_length: int, snippets_per_item: int = 1,
                         prefetch_size: int = 4,
                         num_parallel_calls: int = 2,
                         rate_limiter_timeout_ms: int = -1
                         ) -> tf.data.Dataset:
  """Batches of snippets, {field: [B, N, ...]}, sampled from Reverb.

  With `rate_limiter_timeout_ms` ≥ 0 the dataset ends when sampling waits
  that long on the rate limiter (see `snippet_batches`). This is Acme's
  `make_reverb_dataset` with that one argument added (Acme's does not pass it
  through).
  """
  k = snippets_per_item
  if batch_size % k:
    raise ValueError(f'batch size {batch_size} is not a multiple of '
                     f'{k} snippets per item')
  items = batch_size // k

  def make_worker_dataset(unused_index):
    return reverb.TrajectoryDataset.from_table_signature(
        server_address=server_address, table=table,
        max_in_flight_samples_per_worker=2 * items,
        rate_limiter_timeout_ms=rate_limiter_timeout_ms,
    ).batch(items, drop_remainder=True)

  dataset = tf.data.Dataset.range(num_parallel_calls).interleave(
      make_worker_dataset, cycle_length=num_parallel_calls,
      num_parallel_calls=num_parallel_calls, deterministic=False)

  def to_snippets(sample):
    return {name: tf.reshape(x, [batch_size, snippet_length] + x.shape[2:])
            for name, x in sample.data.items()}

  return dataset.map(to_snippets).prefetch(prefetch_size)


def snippet_batches(make_dataset: Callable[[], tf.data.Dataset],
                    should_stop: Callable[[], bool]) -> Iterator:
  """Batches until `should_stop()`, for a learner fed by online actors.

  `make_dataset` should build a dataset with a rate-limiter timeout: when the
  actors pause (or have stopped) the dataset ends after the timeout, and is
  rebuilt unless the program is stopping. So a learner blocked on data still
  notices the stop and returns (its loop ends at StopIteration).
  """
  while not should_stop():
    for batch in make_dataset():
      yield batch
      if should_stop():
        return


def joined_batches(offline_part: Iterator, online_part: Iterator,
                   on_batch: Optional[Callable[[], None]] = None) -> Iterator:
  """Batches joining an offline and an online part along the batch axis (so
  the online table's share of each batch is fixed by the parts' batch
  sizes): a fine-tuning learner's batches once its online phase begins."""
  for from_offline, from_online in zip(offline_part, online_part):
    if on_batch is not None:
      on_batch()
    yield {name: tf.concat([from_offline[name], from_online[name]], axis=0)
           for name in from_offline}


class SnippetWriter:
  """Packs snippets K per item and inserts them (restorers, online actors).

  Each item holds K snippets of N rows, copied into one [K·N, ...] block
  appended to Reverb as a single step (datasets/restorer.py says why). At
  most `max_in_flight_items` items wait unconfirmed; then `add` blocks while
  the table's rate limiter holds inserts back, polling `should_stop` every
  second. With `whole_episodes`, snippets shorter than N rows (whole
  episodes) are zero-padded and carry a `mask`. `add`'s `behaviour` is the
  snippet's behaviour tag index (`NO_BEHAVIOUR` where it has none).
  """

  def __init__(self, client: reverb.Client, table: str, snippet_length: int,
               snippets_per_item: int = 1, max_in_flight_items: int = 32,
               should_stop: Optional[Callable[[], bool]] = None,
               whole_episodes: bool = False):
    # The table's signature is fetched once, here; Reverb's 3 s default
    # failed on a loaded 2-core machine while the server was starting.
    self._writer = client.trajectory_writer(num_keep_alive_refs=1,
                                            get_signature_timeout_ms=60_000)
    self._table = table
    self._length = snippet_length
    self._per_item = snippets_per_item
    self._max_in_flight = max_in_flight_items
    self._should_stop = should_stop or (lambda: False)
    self._pending: List[Tuple[object, int, int]] = []
    self._fields = (SNIPPET_FIELDS + (BEHAVIOUR_FIELD,)
                    + (('mask',) if whole_episodes else ()))
    self._unflushed = 0
    self.items = 0
    self.snippets = 0

  def add(self, episode, start: int, behaviour: int = NO_BEHAVIOUR) -> bool:
    """Queues the snippet episode[start:start+N]; False if stopped."""
    self._pending.append((episode, start, behaviour))
    if len(self._pending) < self._per_item:
      return True
    snippets = [self._snippet(*pending) for pending in self._pending]
    block = {name: np.concatenate([snippet[name] for snippet in snippets])
             for name in self._fields}
    self._writer.append(block)
    self._writer.create_item(self._table, priority=1.0, trajectory={
        name: self._writer.history[name][-1] for name in self._fields})
    self.items += 1
    self.snippets += len(self._pending)
    self._pending = []
    self._unflushed += 1
    if self._unflushed < self._max_in_flight:
      return True
    self._unflushed = 0
    return self._wait(block_until_num_items=self._max_in_flight // 2)

  def _snippet(self, episode, start: int,
               behaviour: int) -> Dict[str, np.ndarray]:
    snippet = {name: getattr(episode, name)[start:start + self._length]
               for name in SNIPPET_FIELDS}
    snippet[BEHAVIOUR_FIELD] = np.full(self._length, behaviour, np.int32)
    if 'mask' not in self._fields:
      return snippet
    rows = len(snippet['reward'])
    padding = self._length - rows
    snippet = {name: (x if name == BEHAVIOUR_FIELD else
                      np.pad(x, [(0, padding)] + [(0, 0)] * (x.ndim - 1)))
               for name, x in snippet.items()}
    snippet['mask'] = (np.arange(self._length) < rows).astype(np.float32)
    return snippet

  def flush(self) -> bool:
    """Waits until every created item is in the table; False if stopped.

    Snippets that do not yet fill an item stay queued."""
    self._unflushed = 0
    return self._wait()

  def _wait(self, **kwargs) -> bool:
    while not self._should_stop():
      try:
        self._writer.flush(timeout_ms=1000, **kwargs)
        return True
      except reverb.errors.DeadlineExceededError:
        pass
    return False
