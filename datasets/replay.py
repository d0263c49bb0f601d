"""The replay table of trajectory snippets and the learner's view of it.

An item holds K snippets of N rows as one [K·N, ...] trajectory (see
datasets/restorer.py for why); the learner's dataset turns B/K items into a
batch {field: [B, N, ...]}. Sizes given to the table are in snippets.
"""

from typing import Dict

from acme import datasets as acme_datasets
import reverb
import tensorflow as tf

from datasets import episodes as episodes_lib

SNIPPET_TABLE = 'snippets'
SNIPPET_FIELDS = ('observation', 'action', 'reward', 'discount')


def snippet_signature(spec: episodes_lib.DatasetSpec, snippet_length: int,
                      snippets_per_item: int = 1) -> Dict[str, tf.TensorSpec]:
  """The Reverb table signature of one item of K snippets."""
  rows = snippet_length * snippets_per_item
  return {
      'observation': tf.TensorSpec((rows,) + spec.observation_shape,
                                   tf.float32, 'observation'),
      'action': tf.TensorSpec((rows,) + spec.action_shape, tf.float32,
                              'action'),
      'reward': tf.TensorSpec((rows,), tf.float32, 'reward'),
      'discount': tf.TensorSpec((rows,), tf.float32, 'discount'),
  }


def make_snippet_table(name: str, spec: episodes_lib.DatasetSpec,
                       snippet_length: int, max_size: int,
                       samples_per_insert: float, min_size_to_sample: int,
                       batch_size: int, snippets_per_item: int = 1
                       ) -> reverb.Table:
  """A uniform-sampling FIFO table with a sample-to-insert rate limiter.

  The rate limiter makes restorers wait when the learner is slow (and the
  learner wait when restorers are), so a dataset far larger than the table
  streams through with bounded memory. Sizes are in snippets.
  """
  k = snippets_per_item
  min_items = max(1, min_size_to_sample // k)
  # Enough slack for a few batches in flight without stalling either side.
  error_buffer = max(4.0 * batch_size / k, 2.0 * samples_per_insert,
                     0.1 * samples_per_insert * min_items)
  return reverb.Table(
      name=name,
      sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(),
      max_size=max(1, max_size // k),
      rate_limiter=reverb.rate_limiters.SampleToInsertRatio(
          samples_per_insert=samples_per_insert,
          min_size_to_sample=min_items,
          error_buffer=error_buffer),
      signature=snippet_signature(spec, snippet_length, k))


def make_snippet_dataset(server_address: str, table: str, batch_size: int,
                         snippet_length: int, snippets_per_item: int = 1,
                         prefetch_size: int = 4,
                         num_parallel_calls: int = 2) -> tf.data.Dataset:
  """Batches of snippets, {field: [B, N, ...]}, sampled from Reverb."""
  k = snippets_per_item
  if batch_size % k:
    raise ValueError(f'batch size {batch_size} is not a multiple of '
                     f'{k} snippets per item')
  dataset = acme_datasets.make_reverb_dataset(
      server_address=server_address, table=table, batch_size=batch_size // k,
      prefetch_size=None, num_parallel_calls=num_parallel_calls)

  def to_snippets(sample):
    return {name: tf.reshape(x, [batch_size, snippet_length] + x.shape[2:])
            for name, x in sample.data.items()}

  return dataset.map(to_snippets).prefetch(prefetch_size)
