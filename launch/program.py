"""The one place where the Launchpad program of a training run is declared.

  replay (Reverb) ◄── restorer ×K (episodes from disk)
     │
  learner ──variables──► evaluator ×E
  counter, stopper
"""

import functools

from acme.utils import counting
import launchpad as lp

from agents import evaluator as evaluator_lib
from agents import loggers
from agents import registry
from datasets import episodes
from datasets import replay as replay_lib
from datasets import restorer as restorer_lib
import environments
from launch import config as config_lib
from launch import nodes


def _agent_config(config: config_lib.TrainConfig):
  return registry.get(config.agent).config_class(**config.agent_config)


def _make_tables(config: config_lib.TrainConfig, spec: episodes.DatasetSpec):
  batch_size = _agent_config(config).batch_size
  return [replay_lib.make_snippet_table(
      replay_lib.SNIPPET_TABLE, spec, config.snippet_length,
      max_size=config.replay_size,
      samples_per_insert=config.samples_per_insert,
      min_size_to_sample=config.min_replay_size, batch_size=batch_size,
      snippets_per_item=config.snippets_per_item)]


def _make_learner(config: config_lib.TrainConfig, spec: episodes.DatasetSpec,
                  replay, counter):
  agent_config = _agent_config(config)
  dataset = replay_lib.make_snippet_dataset(
      replay.server_address, replay_lib.SNIPPET_TABLE,
      batch_size=agent_config.batch_size,
      snippet_length=config.snippet_length,
      snippets_per_item=config.snippets_per_item)
  return registry.get(config.agent).make_learner(
      agent_config, spec.observation_shape[0], spec.action_shape[0],
      iter(dataset), counting.Counter(counter, prefix='', time_delta=0.),
      loggers.make_logger(config.run_dir, 'learner', steps_key='learner_steps'),
      config.run_dir, config.steps)


def _make_evaluator(config: config_lib.TrainConfig, spec: episodes.DatasetSpec,
                    label: str, variable_key: str, index: int, learner,
                    counter):
  agent_config = _agent_config(config)
  return evaluator_lib.Evaluator(
      environment_factory=functools.partial(
          environments.make, config.env_id, seed=config.seed + 1000 + index),
      policy_factory=functools.partial(registry.make_evaluated_network,
                                       agent_config, spec.action_shape[0],
                                       variable_key),
      variable_source=learner, counter=counter,
      logger=loggers.make_logger(config.run_dir, f'evaluator_{label}_{index}',
                                 time_delta=0., steps_key='learner_steps'),
      num_episodes=config.eval_episodes, variable_key=variable_key,
      min_learner_steps_between=config.eval_every_learner_steps,
      should_stop=nodes.program_stopping)


def build_program(config: config_lib.TrainConfig,
                  spec: episodes.DatasetSpec) -> lp.Program:
  """Replay, counter, K restorers, the learner, E evaluators per policy."""
  agent = registry.get(config.agent)
  program = lp.Program(name='abmrl')
  with program.group('replay'):
    replay = program.add_node(
        lp.ReverbNode(functools.partial(_make_tables, config, spec)))
  with program.group('counter'):
    counter = program.add_node(lp.CourierNode(counting.Counter))
  with program.group('restorer'):
    for k in range(config.restorers):
      program.add_node(lp.PyNode(
          nodes.run, restorer_lib.Restorer, config.dataset_dir, replay,
          replay_lib.SNIPPET_TABLE, config.snippet_length,
          snippets_per_item=config.snippets_per_item, shard_index=k,
          num_shards=config.restorers, interleave=config.restorer_interleave,
          seed=config.seed, counter=counter,
          should_stop=nodes.program_stopping,
          first_episodes=config.first_episodes))
  with program.group('learner'):
    learner = program.add_node(lp.CourierNode(
        nodes.ServeAfterRun, _make_learner, config, spec, replay, counter))
  num_evaluators = 0
  with program.group('evaluator'):
    for label, variable_key in agent.policies.items():
      for e in range(config.evaluators):
        program.add_node(lp.PyNode(
            nodes.run, _make_evaluator, config, spec, label, variable_key, e,
            learner, counter))
        num_evaluators += 1
  with program.group('stopper'):
    program.add_node(lp.PyNode(nodes.run, nodes.StopWhenDone, counter,
                               num_evaluators))
  return program
