"""The one place where the Launchpad programs are declared.

Training (`build_program`):

  replay (Reverb) ◄── restorer ×K (episodes from disk)
     │      ▲
     │      └─ online actor ×A (fine-tuning, after `offline_steps`)
  learner ──variables──► evaluator ×E
  counter, stopper

Collection (`build_collect_program`: an online MPO run that logs its data):

  replay (Reverb) ◄── actor ×K ──► episodes on disk
     │                   ▲
  learner ──variables────┘
  counter, monitor (progress; stops the program when the seed is complete)
"""

import functools
import os

from acme.utils import counting
import launchpad as lp
import numpy as np

from abmrl.agents import evaluator as evaluator_lib
from abmrl.agents import loggers
from abmrl.agents import registry
from abmrl.datasets import collect as collect_lib
from abmrl.datasets import episodes
from abmrl.datasets import replay as replay_lib
from abmrl.datasets import restorer as restorer_lib
from abmrl import environments
from abmrl.launch import config as config_lib
from abmrl.launch import nodes


def _agent_config(config: config_lib.TrainConfig):
  return registry.get(config.agent).config_class(**config.agent_config)


def _num_tasks(config):
  """K for task-conditioned networks (a multi-task environment), else None."""
  return len(environments.tasks(config.env_id) or ()) or None


def _observation_stats(config):
  """(mean, std) standardising the networks' inputs, if the run asks for it
  (a TrainConfig's choice; collection runs have no data to take them from)."""
  stats = getattr(config, 'observation_stats', None)
  return stats() if stats else None


def _make_tables(config, spec: episodes.DatasetSpec):
  """The snippet table (`config`: a TrainConfig or a CollectConfig)."""
  batch_size = _agent_config(config).batch_size
  whole_episodes = getattr(config, 'whole_episodes', False)
  shared = getattr(config, 'shared_buffer', False)
  tables = [replay_lib.make_snippet_table(
      replay_lib.SNIPPET_TABLE, spec, config.snippet_length,
      max_size=config.replay_size,
      samples_per_insert=None if shared else config.samples_per_insert,
      min_size_to_sample=config.min_replay_size, batch_size=batch_size,
      snippets_per_item=config.snippets_per_item,
      whole_episodes=whole_episodes)]
  if getattr(config, 'offline_steps', None) is not None and not shared:
    tables.append(replay_lib.make_snippet_table(
        replay_lib.ONLINE_TABLE, spec, config.snippet_length,
        max_size=config.online_replay_size,
        samples_per_insert=config.online_samples_per_insert,
        min_size_to_sample=config.online_min_replay_size,
        batch_size=config.online_batch_size(batch_size),
        snippets_per_item=config.snippets_per_item,
        whole_episodes=whole_episodes))
  return tables


def _make_learner(config: config_lib.TrainConfig, spec: episodes.DatasetSpec,
                  replay, counter):
  agent_config = _agent_config(config)
  batch_size = agent_config.batch_size

  def batches(table, size):
    return iter(replay_lib.make_snippet_dataset(
        replay.server_address, table, batch_size=size,
        snippet_length=config.snippet_length,
        snippets_per_item=config.snippets_per_item))

  dataset = batches(replay_lib.SNIPPET_TABLE, batch_size)
  learner_counter = counting.Counter(counter, prefix='', time_delta=0.)
  holder = {}  # the learner, whose step the phased batches read once built
  if config.offline_steps is not None:
    # The online phase's counts exist from the start, so they are columns
    # of the learner's CSV log (its header is fixed by the first row).
    learner_counter.increment(**{
        key: 0 for key in ('learner_online_batches', 'collector_episodes',
                           'collector_steps', 'collector_return_sum')})
  if config.offline_steps is not None and not config.shared_buffer:
    online = config.online_batch_size(batch_size)
    dataset = replay_lib.phased_batches(
        dataset,
        lambda: (batches(replay_lib.SNIPPET_TABLE, batch_size - online),
                 batches(replay_lib.ONLINE_TABLE, online)),
        config.offline_steps, lambda: holder['learner'].num_steps,
        lambda: learner_counter.increment(learner_online_batches=1))
  holder['learner'] = registry.get(config.agent).make_learner(
      agent_config, spec.observation_shape[0], spec.action_shape[0],
      dataset, learner_counter,
      loggers.make_logger(config.run_dir, 'learner', steps_key='learner_steps'),
      config.run_dir, config.steps, num_tasks=_num_tasks(config),
      observation_stats=_observation_stats(config))
  return holder['learner']


def _make_evaluator(config: config_lib.TrainConfig, spec: episodes.DatasetSpec,
                    label: str, variable_key: str, index: int, learner,
                    counter):
  agent_config = _agent_config(config)
  return evaluator_lib.Evaluator(
      environment_factories={  # one per task of a multi-task environment
          task: functools.partial(environments.make, env_id,
                                  seed=config.seed + 1000 + index)
          for task, env_id in environments.evaluation_ids(
              config.env_id).items()},
      policy_factory=functools.partial(registry.make_evaluated_network,
                                       agent_config, spec.action_shape[0],
                                       variable_key, _num_tasks(config),
                                       _observation_stats(config)),
      variable_source=learner, counter=counter,
      logger=loggers.make_logger(config.run_dir, f'evaluator_{label}_{index}',
                                 time_delta=0., steps_key='learner_steps'),
      num_episodes=config.eval_episodes, variable_key=variable_key,
      min_learner_steps_between=config.eval_every_learner_steps,
      should_stop=nodes.program_stopping,
      phase_switch_step=config.offline_steps,
      learner_steps_budget=config.steps)


def _make_actor(config, spec: episodes.DatasetSpec, index: int, replay,
                learner, counter, env_seed: int, **actor_args):
  """A CollectingActor acting with the learner's policy (`config`: a
  CollectConfig or, for fine-tuning, a TrainConfig)."""
  return collect_lib.CollectingActor(
      environment=environments.make(config.env_id, seed=env_seed),
      env_id=config.env_id, seed=config.seed, actor_index=index,
      policy_network=registry.make_evaluated_network(
          _agent_config(config), spec.action_shape[0], 'policy',
          _num_tasks(config), _observation_stats(config)),
      variable_source=learner, replay=replay,
      snippet_length=config.snippet_length,
      snippets_per_item=config.snippets_per_item, counter=counter,
      should_stop=nodes.program_stopping,
      whole_episodes=getattr(config, 'whole_episodes', False),
      # A multi-task environment's transitions go in once per task.
      relabellings=(environments.relabellings(config.env_id)
                    if _num_tasks(config) else None),
      **actor_args)


def _make_online_actor(config: config_lib.TrainConfig,
                       spec: episodes.DatasetSpec, index: int, replay,
                       learner, counter):
  """An actor of the online phase: waits for the learner's `offline_steps`,
  then acts with samples of its policy, logging to the run's online_data."""
  def offline_phase_over():
    return counter.get_counts().get('learner_steps', 0) >= config.offline_steps

  return _make_actor(
      config, spec, index, replay, learner, counter,
      env_seed=config.seed + 2000 + index,
      dataset_dir=config.online_data_dir, target_episodes=None,
      table=(replay_lib.SNIPPET_TABLE if config.shared_buffer
             else replay_lib.ONLINE_TABLE), behaviour='online',
      should_start=offline_phase_over, policy_name=config.agent)


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
          first_episodes=config.first_episodes,
          max_passes=1 if config.shared_buffer else None,
          # Multi-task environments always restore once per task.
          relabellings=(environments.relabellings(config.env_id)
                        if config.relabel or _num_tasks(config) else None),
          whole_episodes=config.whole_episodes))
  with program.group('learner'):
    learner = program.add_node(lp.CourierNode(
        nodes.ServeAfterRun, _make_learner, config, spec, replay, counter))
  if config.offline_steps is not None:
    with program.group('actor'):
      for k in range(config.online_actors):
        program.add_node(lp.PyNode(nodes.run, _make_online_actor, config,
                                   spec, k, replay, learner, counter))
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


def _make_online_learner(config: config_lib.CollectConfig,
                         spec: episodes.DatasetSpec, replay, counter,
                         should_stop):
  """A learner fed by actors: runs until `should_stop` (its dataset is
  rebuilt after rate-limiter timeouts, and ends once `should_stop`)."""
  agent_config = _agent_config(config)

  def make_dataset():
    return replay_lib.make_snippet_dataset(
        replay.server_address, replay_lib.SNIPPET_TABLE,
        batch_size=agent_config.batch_size,
        snippet_length=config.snippet_length,
        snippets_per_item=config.snippets_per_item,
        rate_limiter_timeout_ms=1000)

  return registry.get(config.agent).make_learner(
      agent_config, spec.observation_shape[0], spec.action_shape[0],
      replay_lib.snippet_batches(make_dataset, should_stop),
      counting.Counter(counter, prefix='', time_delta=0.),
      loggers.make_logger(config.run_dir, 'learner', steps_key='learner_steps',
                          print_to_terminal=False),
      config.run_dir, None, num_tasks=_num_tasks(config))


def _make_collecting_actor(config: config_lib.CollectConfig,
                           spec: episodes.DatasetSpec, index: int, replay,
                           learner, counter):
  done = episodes.count_episodes(config.dataset_dir,
                                 collect_lib.seed_tag(config.seed))
  # A fresh environment seed per seed, actor and resumption.
  env_seed = int(np.random.SeedSequence(
      [config.seed, index, done]).generate_state(1)[0])
  return _make_actor(config, spec, index, replay, learner, counter,
                     env_seed=env_seed, dataset_dir=config.dataset_dir,
                     target_episodes=config.episodes,
                     table=replay_lib.SNIPPET_TABLE)


def build_collect_program(config: config_lib.CollectConfig,
                          spec: episodes.DatasetSpec,
                          start_episodes: int) -> lp.Program:
  """Replay, counter, an online learner, K logging actors, a monitor."""
  program = lp.Program(name='abmrl-collect')
  with program.group('replay'):
    replay = program.add_node(
        lp.ReverbNode(functools.partial(_make_tables, config, spec)))
  with program.group('counter'):
    counter = program.add_node(lp.CourierNode(counting.Counter))
  with program.group('learner'):
    learner = program.add_node(lp.CourierNode(
        nodes.OnlineLearner, _make_online_learner, config, spec, replay,
        counter))
  with program.group('actor'):
    for k in range(config.actors):
      program.add_node(lp.PyNode(nodes.run, _make_collecting_actor, config,
                                 spec, k, replay, learner, counter))
  with program.group('monitor'):
    program.add_node(lp.PyNode(
        nodes.run, nodes.CollectMonitor, counter, learner, config.actors,
        config.seed, config.episodes, start_episodes, config.progress_seconds,
        os.path.join(config.run_dir, 'progress.log')))
  return program
