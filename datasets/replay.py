"""The replay table of trajectory snippets and the learner's view of it."""

from typing import Dict, Iterator

from acme import datasets as acme_datasets
import reverb
import tensorflow as tf

from datasets import episodes as episodes_lib

SNIPPET_TABLE = 'snippets'
SNIPPET_FIELDS = ('observation', 'action', 'reward', 'discount')


def snippet_signature(spec: episodes_lib.DatasetSpec, snippet_length: int
                      ) -> Dict[str, tf.TensorSpec]:
  """The Reverb table signature of one snippet item."""
  n = snippet_length
  return {
      'observation': tf.TensorSpec((n,) + spec.observation_shape, tf.float32,
                                   'observation'),
      'action': tf.TensorSpec((n,) + spec.action_shape, tf.float32, 'action'),
      'reward': tf.TensorSpec((n,), tf.float32, 'reward'),
      'discount': tf.TensorSpec((n,), tf.float32, 'discount'),
  }


def make_snippet_table(name: str, spec: episodes_lib.DatasetSpec,
                       snippet_length: int, max_size: int,
                       samples_per_insert: float, min_size_to_sample: int,
                       batch_size: int) -> reverb.Table:
  """A uniform-sampling FIFO table with a sample-to-insert rate limiter.

  The rate limiter makes restorers wait when the learner is slow (and the
  learner wait when restorers are), so a dataset far larger than the table
  streams through with bounded memory.
  """
  # Enough slack for a few batches in flight without stalling either side.
  error_buffer = max(4.0 * batch_size, 2.0 * samples_per_insert,
                     0.1 * samples_per_insert * min_size_to_sample)
  return reverb.Table(
      name=name,
      sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(),
      max_size=max_size,
      rate_limiter=reverb.rate_limiters.SampleToInsertRatio(
          samples_per_insert=samples_per_insert,
          min_size_to_sample=min_size_to_sample,
          error_buffer=error_buffer),
      signature=snippet_signature(spec, snippet_length))


def make_snippet_dataset(server_address: str, table: str, batch_size: int,
                         prefetch_size: int = 4,
                         num_parallel_calls: int = 2) -> tf.data.Dataset:
  """Batches of snippets, {field: [B, N, ...]}, sampled from Reverb."""
  dataset = acme_datasets.make_reverb_dataset(
      server_address=server_address, table=table, batch_size=batch_size,
      prefetch_size=None, num_parallel_calls=num_parallel_calls)
  dataset = dataset.map(lambda sample: sample.data)
  return dataset.prefetch(prefetch_size)
