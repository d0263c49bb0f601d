"""The one place where the Launchpad programs are declared.

Training (`build_program`):

  replay (Reverb) ◄── restorer ×K (episodes from disk)
     │      ▲
     │      └─ online actor ×A (fine-tuning, after `offline_steps`)
  learner ──variables──► evaluator ×E
  counter, stopper

A model-based agent (MABE, MOPO) adds a model table and rollout nodes:

  replay: snippets ──► learner ──policy, model──► rollout ×R ──► replay: model
     ▲  (stages 1–2; then each batch: real + model snippets)  (start states
     └── restorer ×K                                          from snippets)

Collection (`build_collect_program`: an online MPO run that logs its data):

  replay (Reverb) ◄── actor ×K ──► episodes on disk
     │                   ▲
  learner ──variables────┘
  counter, monitor (progress; stops the program when the seed is complete)

Nodes are classes from the other packages (agents/, datasets/); this module
only sizes them from the run configuration (launch/config.py) and wires
them together.
"""

import functools
import os
from typing import Optional

from acme.utils import counting
import launchpad as lp
import numpy as np

from abmrl.agents import builders
from abmrl.agents import evaluator as evaluator_lib
from abmrl.agents import loggers
from abmrl.datasets import collect as collect_lib
from abmrl.datasets import episodes
from abmrl.datasets import replay as replay_lib
from abmrl.datasets import restorer as restorer_lib
from abmrl.datasets import rollout as rollout_lib
from abmrl import environments
from abmrl.launch import config as config_lib
from abmrl.launch import nodes

# The online phase's counts exist from the start, so they are columns of the
# learner's CSV log (its header is fixed by the first row).
_ONLINE_COUNTS = ('learner_online_batches', 'collector_episodes',
                  'collector_steps', 'collector_return_sum')


def _num_tasks(env_id: str) -> Optional[int]:
  """K for task-conditioned networks (a multi-task environment), else None."""
  return len(environments.tasks(env_id) or ()) or None


def network_spec(env_id: str, spec: episodes.DatasetSpec,
                 observation_stats=None) -> builders.NetworkSpec:
  """What sizes a run's networks: the data's shapes, the environment's
  tasks, the run's observation statistics."""
  return builders.NetworkSpec(
      spec.observation_shape[0], spec.action_shape[0], _num_tasks(env_id),
      observation_stats,
      action_bounds=(tuple(spec.action_minimum), tuple(spec.action_maximum)))


def _real_snippets(config: config_lib.TrainConfig) -> int:
  """A model-based agent's RL batches: snippets from the data's table (the
  rest from the model table)."""
  from abmrl.agents.mabe import losses as mabe_losses  # pylint: disable=g-import-not-at-top
  return mabe_losses.real_batch_size(config.batch_size,
                                     config.agent_config.real_fraction,
                                     config.replay.snippets_per_item)


def _make_tables(replay: config_lib.ReplayConfig,
                 online: Optional[config_lib.OnlineConfig], batch_size: int,
                 whole_episodes: bool, spec: episodes.DatasetSpec,
                 model_table=None):
  """The snippet table, the online table of a fine-tuning run with separate
  buffers (`online`: None for a collection run), and a model-based agent's
  model table (`model_table`: its agent config and model batch size)."""
  table = functools.partial(
      replay_lib.make_snippet_table, spec=spec,
      snippet_length=replay.snippet_length,
      snippets_per_item=replay.snippets_per_item,
      whole_episodes=whole_episodes)
  shared = online is not None and online.shared_buffer
  tables = [table(replay_lib.SNIPPET_TABLE, max_size=replay.replay_size,
                  samples_per_insert=(None if shared
                                      else replay.samples_per_insert),
                  min_size_to_sample=replay.min_replay_size,
                  batch_size=batch_size)]
  if online is not None and online.enabled and not shared:
    tables.append(table(
        replay_lib.ONLINE_TABLE, max_size=online.replay_size,
        samples_per_insert=online.samples_per_insert,
        min_size_to_sample=online.min_replay_size,
        batch_size=online.batch_size(batch_size, replay.snippets_per_item)))
  if model_table is not None:
    agent_config, model_batch = model_table
    tables.append(table(
        replay_lib.MODEL_TABLE, max_size=agent_config.model_replay_size,
        samples_per_insert=agent_config.model_samples_per_insert,
        min_size_to_sample=agent_config.model_min_replay_size,
        batch_size=model_batch))
  return tables


def _make_learner(config: config_lib.TrainConfig, spec: episodes.DatasetSpec,
                  replay, counter):
  replay_config, online = config.replay, config.online

  def batches(table, size):
    return iter(replay_lib.make_snippet_dataset(
        replay.server_address, table, batch_size=size,
        snippet_length=replay_config.snippet_length,
        snippets_per_item=replay_config.snippets_per_item))

  learner_counter = counting.Counter(counter, prefix='', time_delta=0.)
  if online.enabled:
    learner_counter.increment(**{key: 0 for key in _ONLINE_COUNTS})
  inputs = {}
  # What the held-out episodes' rewards are read with.
  relabelling = (environments.relabellings(config.env_id)[0]
                 if config.data.relabel else None)
  if config.builder.model_based:
    # The held-out episodes (the restorers skip them) validate the model
    # and prior stages; RL batches join the data's and the model's tables.
    real = _real_snippets(config)
    inputs = dict(
        validation=episodes.held_out_transitions(
            config.data.dataset_dir, config.data.holdout_fraction,
            config.data.first_episodes, relabelling, seed=config.seed),
        rl_dataset=lambda: replay_lib.joined_batches(
            batches(replay_lib.SNIPPET_TABLE, real),
            batches(replay_lib.MODEL_TABLE, config.batch_size - real)),
        real_snippets=real)
  if config.builder.logs_behaviours:
    inputs['behaviour_tags'] = episodes.behaviour_tags(
        config.data.dataset_dir)
    if config.data.holdout_fraction:
      inputs['heldout'] = episodes.held_out_returns(
          config.data.dataset_dir, config.data.holdout_fraction,
          config.agent_config.discount, config.data.first_episodes,
          relabelling, seed=config.seed)
  learner = config.builder.make_learner(
      config.agent_config,
      network_spec(config.env_id, spec, config.observation_stats()),
      batches(replay_lib.SNIPPET_TABLE, config.batch_size), learner_counter,
      loggers.make_logger(config.run_dir, 'learner',
                          steps_key='learner_steps'),
      config.run_dir, config.steps, **inputs)
  learner.checkpoint_every(config.launch.checkpoint_minutes)
  if online.enabled and not online.shared_buffer:
    # From the switch on, each batch joins an offline and an online part.
    size = online.batch_size(config.batch_size,
                             replay_config.snippets_per_item)
    learner.switch_dataset_at(online.offline_steps, lambda: (
        replay_lib.joined_batches(
            batches(replay_lib.SNIPPET_TABLE, config.batch_size - size),
            batches(replay_lib.ONLINE_TABLE, size),
            lambda: learner_counter.increment(learner_online_batches=1))))
  return learner


def _make_evaluator(config: config_lib.TrainConfig, spec: episodes.DatasetSpec,
                    label: str, variable_key: str, index: int, learner,
                    counter):
  return evaluator_lib.Evaluator(
      environment_factories={  # one per task of a multi-task environment
          task: functools.partial(environments.make, env_id,
                                  seed=config.seed + 1000 + index)
          for task, env_id in environments.evaluation_ids(
              config.env_id).items()},
      policy_factory=functools.partial(
          config.builder.make_policy, config.agent_config, variable_key,
          network_spec(config.env_id, spec, config.observation_stats())),
      variable_source=learner, counter=counter,
      logger=loggers.make_logger(config.run_dir, f'evaluator_{label}_{index}',
                                 time_delta=0., steps_key='learner_steps'),
      num_episodes=config.evaluation.episodes, variable_key=variable_key,
      min_learner_steps_between=config.evaluation.every_learner_steps,
      should_stop=nodes.program_stopping,
      phase_switch_step=config.online.offline_steps,
      learner_steps_budget=config.steps,
      score=environments.score(config.env_id))


def _make_actor(config, spec: episodes.DatasetSpec, index: int, replay,
                learner, counter, env_seed: int, observation_stats=None,
                **actor_args):
  """A CollectingActor acting with the learner's policy (`config`: a
  CollectConfig or, for fine-tuning, a TrainConfig)."""
  networks = network_spec(config.env_id, spec, observation_stats)
  builder = config.builder
  return collect_lib.CollectingActor(
      environment=environments.make(config.env_id, seed=env_seed),
      env_id=config.env_id, seed=config.seed, actor_index=index,
      policy_network=builder.make_policy(config.agent_config, 'policy',
                                         networks),
      variable_source=learner, replay=replay,
      snippet_length=config.replay.snippet_length,
      snippets_per_item=config.replay.snippets_per_item, counter=counter,
      should_stop=nodes.program_stopping,
      whole_episodes=builder.whole_episodes,
      # A multi-task environment's transitions go in once per task.
      relabellings=(environments.relabellings(config.env_id)
                    if networks.num_tasks else None),
      **actor_args)


def _make_online_actor(config: config_lib.TrainConfig,
                       spec: episodes.DatasetSpec, index: int, replay,
                       learner, counter):
  """An actor of the online phase: waits for the learner's `offline_steps`,
  then acts with samples of its policy, logging to the run's online_data."""
  def offline_phase_over():
    return (counter.get_counts().get('learner_steps', 0)
            >= config.online.offline_steps)

  return _make_actor(
      config, spec, index, replay, learner, counter,
      env_seed=config.seed + 2000 + index,
      observation_stats=config.observation_stats(),
      dataset_dir=config.online_data_dir, target_episodes=None,
      table=(replay_lib.SNIPPET_TABLE if config.online.shared_buffer
             else replay_lib.ONLINE_TABLE), behaviour='online',
      should_start=offline_phase_over, policy_name=config.agent)


def _make_rollouts(config: config_lib.TrainConfig, spec: episodes.DatasetSpec,
                   index: int, replay, learner, counter):
  """A model-rollout node: waits for the learner's RL stage, then writes
  rollouts of its policy in its model to the model table."""
  from abmrl.agents.mabe import learning as mabe_learning  # pylint: disable=g-import-not-at-top
  agent_config, builder = config.agent_config, config.builder
  networks = network_spec(config.env_id, spec, config.observation_stats())
  k = config.replay.snippets_per_item
  starts = iter(replay_lib.make_snippet_dataset(
      replay.server_address, replay_lib.SNIPPET_TABLE,
      batch_size=-(-agent_config.rollout_batch // k) * k,
      snippet_length=config.replay.snippet_length, snippets_per_item=k,
      prefetch_size=1, num_parallel_calls=1))

  def rl_started() -> bool:
    stage = learner.get_variables(['stage'])[0][0]
    return int(stage) >= mabe_learning.RL_STAGE

  return rollout_lib.ModelRollouts(
      model=builder.make_model(agent_config, networks),
      policy_network=builder.make_policy(agent_config, 'policy', networks),
      variable_source=learner,
      start_states=(batch['observation'][:, 0] for batch in starts),
      replay=replay, table=replay_lib.MODEL_TABLE,
      observation_size=spec.observation_shape[0],
      action_bounds=networks.bounds(),
      rollout_length=agent_config.rollout_length,
      rollout_batch=agent_config.rollout_batch,
      penalty=agent_config.penalty if agent_config.use_penalty else 0.,
      state_margin=agent_config.state_margin, snippets_per_item=k,
      variable_update_period=agent_config.rollout_variable_update_period,
      counter=counter,
      logger=loggers.make_logger(config.run_dir, f'rollout_{index}',
                                 time_delta=5.0, print_to_terminal=False),
      should_start=rl_started, should_stop=nodes.program_stopping)


def _add_replay_and_counter(program: lp.Program, config, online,
                            spec: episodes.DatasetSpec):
  model_table = None
  if config.builder.model_based:
    model_table = (config.agent_config,
                   config.batch_size - _real_snippets(config))
  with program.group('replay'):
    replay = program.add_node(lp.ReverbNode(functools.partial(
        _make_tables, config.replay, online, config.batch_size,
        config.builder.whole_episodes, spec, model_table)))
  with program.group('counter'):
    counter = program.add_node(lp.CourierNode(counting.Counter))
  return replay, counter


def build_program(config: config_lib.TrainConfig,
                  spec: episodes.DatasetSpec) -> lp.Program:
  """Replay, counter, K restorers, the learner, E evaluators per policy."""
  program = lp.Program(name='abmrl')
  replay, counter = _add_replay_and_counter(program, config, config.online,
                                            spec)
  with program.group('restorer'):
    for k in range(config.data.restorers):
      program.add_node(lp.PyNode(
          nodes.run, restorer_lib.Restorer, config.data.dataset_dir, replay,
          replay_lib.SNIPPET_TABLE, config.replay.snippet_length,
          snippets_per_item=config.replay.snippets_per_item, shard_index=k,
          num_shards=config.data.restorers,
          interleave=config.data.restorer_interleave, seed=config.seed,
          counter=counter, should_stop=nodes.program_stopping,
          first_episodes=config.data.first_episodes,
          max_passes=1 if config.online.shared_buffer else None,
          # Multi-task environments always restore once per task.
          relabellings=(environments.relabellings(config.env_id)
                        if config.data.relabel or _num_tasks(config.env_id)
                        else None),
          whole_episodes=config.whole_episodes,
          holdout_fraction=config.data.holdout_fraction))
  with program.group('learner'):
    learner = program.add_node(lp.CourierNode(
        nodes.ServeAfterRun, _make_learner, config, spec, replay, counter))
  if config.builder.model_based:
    with program.group('rollout'):
      for k in range(config.rollout_nodes):
        program.add_node(lp.PyNode(nodes.run, _make_rollouts, config, spec, k,
                                   replay, learner, counter))
  if config.online.enabled:
    with program.group('actor'):
      for k in range(config.online.actors):
        program.add_node(lp.PyNode(nodes.run, _make_online_actor, config,
                                   spec, k, replay, learner, counter))
  num_evaluators = 0
  with program.group('evaluator'):
    for label, variable_key in config.builder.policies.items():
      for e in range(config.evaluation.evaluators):
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
  def make_dataset():
    return replay_lib.make_snippet_dataset(
        replay.server_address, replay_lib.SNIPPET_TABLE,
        batch_size=config.batch_size,
        snippet_length=config.replay.snippet_length,
        snippets_per_item=config.replay.snippets_per_item,
        rate_limiter_timeout_ms=1000)

  learner = config.builder.make_learner(
      config.agent_config, network_spec(config.env_id, spec),
      replay_lib.snippet_batches(make_dataset, should_stop),
      counting.Counter(counter, prefix='', time_delta=0.),
      loggers.make_logger(config.run_dir, 'learner', steps_key='learner_steps',
                          print_to_terminal=False),
      config.run_dir, None)
  learner.checkpoint_every(config.launch.checkpoint_minutes)
  return learner


def _make_collecting_actor(config: config_lib.CollectConfig,
                           spec: episodes.DatasetSpec, index: int, replay,
                           learner, counter):
  done = episodes.count_episodes(config.dataset_dir,
                                 episodes.seed_tag(config.seed))
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
  replay, counter = _add_replay_and_counter(program, config, None, spec)
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
