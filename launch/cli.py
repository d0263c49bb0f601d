"""The `abmrl` command line: train, dataset tools and the demo.

  abmrl train --agent bm --env control:cheetah-run --dataset DIR --steps S
  abmrl collect --env control:cheetah-run --seed 0 --episodes 100 --out DIR
  abmrl dataset generate --env control:point_mass-easy --out DIR
  abmrl dataset info DIR
  abmrl dataset validate DIR
  abmrl demo

Bad input (unknown environment, missing or empty dataset, a dataset that does
not match the environment, a malformed flag) is reported in one line before
any process starts.
"""

import argparse
import dataclasses
import os
import sys
from typing import List, Optional

# Quiet the native libraries before they load: TF's C++ logs, EnvLogger's
# glog, and MuJoCo's GL probing (no display here; EGL for offscreen use).
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('GLOG_minloglevel', '1')
from abmrl.environments import rendering  # pylint: disable=g-import-not-at-top
os.environ.setdefault('MUJOCO_GL', rendering.default_backend())

DEMO_ENV = 'control:point_mass-easy'
# `abmrl train`'s replay flags default to the agent's settings, else these.
_TRAIN_DEFAULTS = dict(snippets_per_item=16, replay_size=1_000_000,
                       min_replay_size=10_000, samples_per_insert=8.0,
                       online_samples_per_insert=32.0,
                       online_min_replay_size=1000)


class UsageError(Exception):
  """Bad input from the user: reported as one line, exit code 2."""


def _agent_overrides(agent: str, pairs: List[str]):
  """Parses `--set key=value` against the agent's config dataclass."""
  from abmrl.agents import registry  # pylint: disable=g-import-not-at-top
  defaults = registry.get(agent).config_class()
  fields = {f.name: f for f in dataclasses.fields(defaults)}
  overrides = {}
  for pair in pairs:
    key, sep, value = pair.partition('=')
    if not sep or key not in fields:
      raise UsageError(f'--set {pair}: expected key=value with key one of '
                       + ', '.join(sorted(fields)))
    current = getattr(defaults, key)
    kind = 'float' if current is None else type(current).__name__
    try:
      if isinstance(current, bool):
        if value.lower() not in ('true', 'false', '1', '0'):
          raise ValueError(value)
        overrides[key] = value.lower() in ('true', '1')
      elif isinstance(current, tuple):
        overrides[key] = tuple(int(v) for v in value.split(',') if v)
      elif current is None:  # Optional[float] fields, unset by default
        overrides[key] = float(value)
      else:
        overrides[key] = type(current)(value)
    except ValueError:
      raise UsageError(f'--set {pair}: {value!r} is not a valid '
                       f'{kind}') from None
  return overrides


def check_dataset(dataset_dir: str, env_id: str, relabel: bool = False):
  """The spec to train with, after checking the dataset exists, has
  episodes, and matches the environment (after relabelling, if asked)."""
  from abmrl.datasets import episodes  # pylint: disable=g-import-not-at-top
  from abmrl import environments  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  try:
    env = environments.make(env_id)
  except environments.UnknownEnvironmentError as e:
    raise UsageError(str(e)) from None
  spec = episodes.read_spec(dataset_dir)
  if not episodes.list_episodes(dataset_dir):
    raise UsageError(f'dataset {dataset_dir} has no complete episodes')
  env_spec = episodes.DatasetSpec.from_environment(env_id, env)
  restored = spec
  if relabel:
    relabellings = environments.relabellings(env_id)
    if not relabellings:
      raise UsageError(f'--relabel: {env_id} has no reward defined on '
                       'observations (the sawyer:* environments have)')
    observation_fn = relabellings[0][0]
    try:
      shape = np.shape(observation_fn(np.zeros((2,) + spec.observation_shape,
                                               np.float32)))[1:]
    except ValueError:
      shape = spec.observation_shape
    restored = dataclasses.replace(spec, observation_shape=tuple(shape))
  problem = restored.mismatch(env_spec)
  if problem:
    raise UsageError(f'dataset {dataset_dir} does not match {env_id}'
                     + (' after relabelling' if relabel else '')
                     + f': {problem}')
  return spec, env_spec


def train(args) -> int:
  from abmrl.launch import config as config_lib  # pylint: disable=g-import-not-at-top
  from abmrl.launch import run as run_lib  # pylint: disable=g-import-not-at-top
  if args.steps <= 0:
    raise UsageError(f'--steps must be positive, got {args.steps}')
  if args.restorers <= 0:
    raise UsageError(f'--restorers must be positive, got {args.restorers}')
  if args.first_episodes is not None and args.first_episodes <= 0:
    raise UsageError(f'--first-episodes must be positive, got '
                     f'{args.first_episodes}')
  from abmrl.agents import registry  # pylint: disable=g-import-not-at-top
  if args.agent not in registry.AGENTS:
    raise UsageError(f'unknown agent {args.agent!r}; valid agents: '
                     + ', '.join(sorted(registry.AGENTS)))
  definition = registry.get(args.agent)
  if definition.whole_episodes and args.snippet_length is not None:
    raise UsageError(f'--snippet-length: {args.agent} learns from whole '
                     'episodes (its snippet length is the longest episode)')
  if args.snippet_length is not None and args.snippet_length < 2:
    raise UsageError(f'--snippet-length must be at least 2, got '
                     f'{args.snippet_length}')
  for flag in ('snippets_per_item', 'replay_size', 'min_replay_size',
               'samples_per_insert', 'online_samples_per_insert',
               'online_min_replay_size'):
    if getattr(args, flag) is None:
      setattr(args, flag, definition.replay_defaults.get(
          flag, _TRAIN_DEFAULTS[flag]))
  overrides = _agent_overrides(args.agent, args.set)
  batch_size = overrides.get('batch_size',
                             definition.config_class().batch_size)
  if args.snippets_per_item <= 0 or batch_size % args.snippets_per_item:
    raise UsageError(f'--snippets-per-item {args.snippets_per_item} must be '
                     f'positive and divide the batch size {batch_size}')
  if args.offline_steps is None and args.online_buffer != 'separate':
    raise UsageError('--online-buffer is for offline→online runs: add '
                     '--offline-steps')
  if args.offline_steps is not None:
    if not 0 <= args.offline_steps < args.steps:
      raise UsageError(f'--offline-steps must be in [0, --steps), got '
                       f'{args.offline_steps}')
    if not 0 < args.online_fraction < 1:
      raise UsageError(f'--online-fraction must be in (0, 1), got '
                       f'{args.online_fraction}')
    if args.online_actors <= 0:
      raise UsageError(f'--online-actors must be positive, got '
                       f'{args.online_actors}')
    if (args.online_buffer == 'separate'
        and batch_size < 2 * args.snippets_per_item):
      raise UsageError(f'batch size {batch_size} leaves no room for both an '
                       f'offline and an online part of {args.snippets_per_item}'
                       ' snippets (--snippets-per-item)')
  from abmrl import environments  # pylint: disable=g-import-not-at-top
  try:
    # Multi-task training always restores the data once per task.
    relabel = args.relabel or environments.tasks(args.env) is not None
  except environments.UnknownEnvironmentError as e:
    raise UsageError(str(e)) from None
  data_spec, spec = check_dataset(args.dataset, args.env, relabel)
  if data_spec.env_id != args.env and not relabel:
    raise UsageError(f'dataset {args.dataset} holds {data_spec.env_id} data; '
                     f'to train for {args.env}, add --relabel (rewards '
                     'recomputed from observations)')
  run_dir = args.run_dir or os.path.join(
      'runs', f'{args.agent}-{args.env.replace(":", "_")}')
  config = config_lib.TrainConfig.for_agent(
      args.agent, env_id=args.env,
      dataset_dir=os.path.abspath(args.dataset),
      run_dir=os.path.abspath(run_dir), steps=args.steps,
      restorers=args.restorers, evaluators=args.evaluators,
      eval_episodes=args.eval_episodes,
      eval_every_learner_steps=args.eval_every,
      snippet_length=args.snippet_length,
      snippets_per_item=args.snippets_per_item, replay_size=args.replay_size,
      min_replay_size=args.min_replay_size,
      samples_per_insert=args.samples_per_insert, seed=args.seed,
      first_episodes=args.first_episodes, relabel=relabel,
      normalise_observations=args.normalise_observations,
      offline_steps=args.offline_steps, online_actors=args.online_actors,
      online_fraction=args.online_fraction,
      online_buffer=args.online_buffer,
      online_samples_per_insert=args.online_samples_per_insert,
      online_min_replay_size=args.online_min_replay_size,
      agent_config=overrides)
  if config.normalise_observations:
    try:  # before any process starts (a resumed run checks its own file)
      run_lib.save_observation_stats(config)
    except ValueError as e:
      raise UsageError(str(e)) from None
  result = run_lib.train(config, spec, launch_type=args.launch)
  print(run_lib.format_summary(result))
  if config.evaluators and result.learner_steps < config.steps:
    print(f'abmrl: error: the run stopped after {result.learner_steps} of '
          f'{config.steps} learner steps (see the errors above)',
          file=sys.stderr)
    return 1
  return 0


def collect(args) -> int:
  from abmrl.datasets import episodes  # pylint: disable=g-import-not-at-top
  from abmrl import environments  # pylint: disable=g-import-not-at-top
  from abmrl.launch import config as config_lib  # pylint: disable=g-import-not-at-top
  from abmrl.launch import run as run_lib  # pylint: disable=g-import-not-at-top
  for flag in ('episodes', 'actors', 'samples_per_insert', 'min_replay_size',
               'replay_size', 'snippets_per_item'):
    if getattr(args, flag) <= 0:
      raise UsageError(f'--{flag.replace("_", "-")} must be positive, got '
                       f'{getattr(args, flag)}')
  if args.seed < 0:
    raise UsageError(f'--seed must be non-negative, got {args.seed}')
  try:
    env = environments.make(args.env)
  except environments.UnknownEnvironmentError as e:
    raise UsageError(str(e)) from None
  overrides = dict(config_lib.COLLECT_AGENT_DEFAULTS,
                   **_agent_overrides('mpo', args.set))
  if overrides['batch_size'] % args.snippets_per_item:
    raise UsageError(f'--snippets-per-item {args.snippets_per_item} must '
                     f'divide the batch size {overrides["batch_size"]}')
  spec = episodes.DatasetSpec.from_environment(args.env, env)
  out = os.path.abspath(args.out)
  if os.path.exists(os.path.join(out, episodes.DATASET_FILE)):
    existing = episodes.read_spec(out)
    problem = existing.mismatch(spec)
    if problem or existing.env_id != args.env:
      raise UsageError(f'{args.out} holds {existing.env_id} data; cannot '
                       f'collect {args.env} into it'
                       + (f' ({problem})' if problem else ''))
  elif os.path.exists(out) and not os.path.isdir(out):
    raise UsageError(f'--out {args.out} is a file, not a directory')
  config = config_lib.CollectConfig(
      env_id=args.env, dataset_dir=out, seed=args.seed,
      episodes=args.episodes, actors=args.actors,
      replay_size=args.replay_size, min_replay_size=args.min_replay_size,
      samples_per_insert=args.samples_per_insert,
      snippets_per_item=args.snippets_per_item,
      progress_seconds=args.progress_seconds, agent_config=overrides)
  before = episodes.count_episodes(out, f'seed{args.seed}')
  if before >= args.episodes:
    print(f'[collect seed {args.seed}] {args.out} already holds {before} '
          f'episodes of this seed (target {args.episodes}): nothing to do')
    return 0
  print(f'[collect seed {args.seed}] {args.env}: {before} episodes on disk, '
        f'collecting up to {args.episodes} with {args.actors} actor(s); '
        f'progress also in {os.path.join(config.run_dir, "progress.log")}',
        flush=True)
  result = run_lib.collect(config, spec, launch_type=args.launch)
  print(run_lib.format_collect_summary(result))
  if result.episodes_after < result.target:
    print(f'abmrl: error: the collection stopped at {result.episodes_after} '
          f'of {result.target} episodes (see the errors above); re-run to '
          'continue', file=sys.stderr)
    return 1
  return 0


def dataset_generate(args) -> int:
  from abmrl.datasets import generate  # pylint: disable=g-import-not-at-top
  from abmrl import environments  # pylint: disable=g-import-not-at-top
  if args.env not in environments.env_ids():
    raise UsageError(f'unknown environment id {args.env!r}; valid ids: '
                     + ', '.join(environments.env_ids()))
  if args.episodes_per_behaviour <= 0:
    raise UsageError('--episodes-per-behaviour must be positive')
  names = generate.controllers(args.env)
  if args.controller is not None and args.controller not in names:
    raise UsageError(f'--controller {args.controller!r}: {args.env} has '
                     + (f'only {", ".join(names)}' if names else
                        'no scripted controller'))
  try:
    noise = [float(n) for n in args.noise_levels.split(',')]
  except ValueError:
    raise UsageError(f'--noise-levels {args.noise_levels!r}: expected '
                     'comma-separated numbers, e.g. 0.1,0.5') from None
  if any(n < 0 for n in noise):
    raise UsageError(f'--noise-levels {args.noise_levels!r}: negative')
  behaviours = generate.default_behaviours(noise, random=not args.no_random)
  n = generate.generate(args.env, args.out, args.episodes_per_behaviour,
                        behaviours=behaviours, seed=args.seed,
                        controller=args.controller)
  print(f'wrote {n} episodes to {args.out}')
  return 0


def dataset_info(args) -> int:
  from abmrl.datasets import summary  # pylint: disable=g-import-not-at-top
  info = summary.summarize(args.dir)
  print(summary.format_summary(info))
  plot = args.plot or os.path.join(args.dir, 'returns.png')
  try:
    print(f'plot of return against episode index: '
          f'{summary.plot_returns(info, plot)}')
  except OSError as e:
    print(f'abmrl: warning: could not write the plot {plot}: {e}',
          file=sys.stderr)
  return 0


def dataset_merge(args) -> int:
  from abmrl.datasets import episodes  # pylint: disable=g-import-not-at-top
  copied = episodes.merge(args.sources, args.out)
  print(f'merged {copied} episodes into {args.out}')
  return 0


def dataset_validate(args) -> int:
  from abmrl.datasets import summary  # pylint: disable=g-import-not-at-top
  report = summary.validate(args.dir)
  print(summary.format_validation(report))
  return 0 if report.ok else 1


def video(args) -> int:
  """Renders evaluation episodes of a run's latest checkpoint to a GIF."""
  from abmrl.agents import evaluator  # pylint: disable=g-import-not-at-top
  from abmrl.agents import registry  # pylint: disable=g-import-not-at-top
  from abmrl import environments  # pylint: disable=g-import-not-at-top
  from abmrl.launch import config as config_lib  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  path = os.path.join(args.run_dir, 'config.json')
  if not os.path.isfile(path):
    raise UsageError(f'{args.run_dir} is not a run directory (no config.json)')
  config = config_lib.load_train_config(path)
  definition = registry.get(config.agent)
  if args.policy not in definition.policies:
    raise UsageError(f'--policy {args.policy}: {config.agent} evaluates '
                     + ', '.join(definition.policies))
  env_ids = environments.evaluation_ids(config.env_id)
  task = args.task or next(iter(env_ids))
  if task not in env_ids:
    raise UsageError(f'--task {args.task}: {config.env_id} has tasks '
                     + ', '.join(t for t in env_ids if t))
  environment = environments.make(env_ids[task], seed=args.seed)
  num_tasks = len(environments.tasks(config.env_id) or ()) or None
  agent_config = definition.config_class(**config.agent_config)
  try:
    policy = registry.restore_policy(
        agent_config, environment.action_spec().shape[0],
        environment.observation_spec(), definition.policies[args.policy],
        os.path.join(args.run_dir, 'checkpoints', 'learner'), num_tasks,
        config.observation_stats())
  except (FileNotFoundError, ValueError) as e:
    raise UsageError(str(e)) from None
  out = args.out or os.path.join(
      args.run_dir, 'videos', f'{args.policy}{"-" + task if task else ""}.gif')
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  frames, returns = [], []
  try:
    for episode in range(args.episodes):
      episode_frames, episode_return = evaluator.record_episode(
          environment, policy,
          lambda env: rendering.render(env, args.width, args.height),
          args.frame_every)
      frames += episode_frames
      returns.append(episode_return)
      print(f'[video] episode {episode + 1}/{args.episodes}: return '
            f'{episode_return:.1f}, {len(episode_frames)} frames')
  except rendering.RenderingUnavailable as e:
    raise UsageError(str(e)) from None
  finally:
    environment.close()  # frees the GL context before the interpreter exits
  # GIF frame durations are in ms; play at the environment's speed.
  control_seconds = float(environment.control_timestep())
  tmp = out + '.tmp.gif'
  Image.fromarray(frames[0]).save(
      tmp, save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]],
      duration=max(20, int(1000 * control_seconds * args.frame_every)), loop=0)
  os.replace(tmp, out)
  print(f'[video] {len(frames)} frames, mean return {np.mean(returns):.1f}: '
        f'{out}')
  return 0


def demo(args) -> int:
  from abmrl.datasets import episodes  # pylint: disable=g-import-not-at-top
  from abmrl.datasets import generate  # pylint: disable=g-import-not-at-top
  from abmrl.datasets import summary  # pylint: disable=g-import-not-at-top
  from abmrl.launch import config as config_lib  # pylint: disable=g-import-not-at-top
  from abmrl.launch import run as run_lib  # pylint: disable=g-import-not-at-top
  dataset_dir = os.path.abspath(args.dataset)
  if not episodes.list_episodes(dataset_dir):
    print(f'[demo] making a small mixed-quality {DEMO_ENV} dataset in '
          f'{dataset_dir}')
    generate.generate(DEMO_ENV, dataset_dir, episodes_per_behaviour=5,
                      seed=0)
  _, spec = check_dataset(dataset_dir, DEMO_ENV)
  info = summary.summarize(dataset_dir)
  print(summary.format_summary(info))
  config = config_lib.TrainConfig(
      agent='bm', env_id=DEMO_ENV, dataset_dir=dataset_dir,
      run_dir=os.path.abspath(args.run_dir), steps=args.steps, restorers=2,
      evaluators=1, eval_episodes=5, eval_every_learner_steps=1000,
      snippet_length=2, replay_size=100_000, min_replay_size=2_000,
      samples_per_insert=8.0)
  result = run_lib.train(config, spec, launch_type='local_mp')
  print(run_lib.format_summary(result))
  print(f'[demo] BM evaluation return {result.final_return:.1f} '
        f'(mean over {config.eval_episodes} episodes) | dataset: best episode '
        f'{info.best_return:.1f}, mean episode {info.mean_return:.1f}')
  return 0


class _Parser(argparse.ArgumentParser):
  """Reports a bad flag in one line (argparse prints the usage first)."""

  def error(self, message):
    self.exit(2, f'abmrl: error: {message} (see `{self.prog} --help`)\n')


def build_parser() -> argparse.ArgumentParser:
  parser = _Parser(
      prog='abmrl',
      description='Distributed offline RL from logged episodes: restorers '
      'replay episodes from disk into Reverb, a learner trains on them, '
      'evaluators run the policy; one Launchpad program.')
  sub = parser.add_subparsers(dest='command', required=True)

  p = sub.add_parser('train', help='train an agent on a dataset',
                     description='Launch restorers, replay, learner and '
                     'evaluators; stop after --steps learner steps.')
  p.add_argument('--agent', required=True,
                 help='agent: bm, abm_mpo, bm_mpo, mpo, abm_svg, bm_svg, svg, '
                 'abm_prior, awac, awr')
  p.add_argument('--env', required=True,
                 help='environment id, e.g. control:cheetah-run')
  p.add_argument('--dataset', required=True, help='dataset directory')
  p.add_argument('--steps', type=int, default=10_000,
                 help='learner steps (default 10000)')
  p.add_argument('--restorers', type=int, default=2,
                 help='restorer processes (default 2)')
  p.add_argument('--evaluators', type=int, default=1,
                 help='evaluators per evaluated policy (default 1)')
  p.add_argument('--eval-episodes', type=int, default=5,
                 help='episodes per evaluation (default 5)')
  p.add_argument('--eval-every', type=int, default=1000,
                 help='learner steps between evaluations, the first at the '
                 'first step (default 1000); there is always a final one')
  p.add_argument('--snippet-length', type=int, default=None,
                 help='rows per snippet N, i.e. N-1 transitions (default: '
                 'the agent\'s, 2; awr learns from whole episodes)')
  p.add_argument('--snippets-per-item', type=int,
                 help='snippets packed in one Reverb item; divides the batch '
                 'size (default 16; 1 for awr)')
  p.add_argument('--replay-size', type=int,
                 help='replay table size in snippets (default 1e6; awr: '
                 '1000 episodes)')
  p.add_argument('--min-replay-size', type=int,
                 help='snippets in replay before learning starts (default '
                 '10000; awr: 50 episodes)')
  p.add_argument('--samples-per-insert', type=float,
                 help='rate limiter: samples per inserted snippet (default 8)')
  p.add_argument('--first-episodes', type=int, metavar='N',
                 help='restore only the first N episodes of each behaviour '
                 'tag (seed): the paper\'s data regimes as views')
  p.add_argument('--relabel', action='store_true',
                 help='recompute the data\'s rewards for --env\'s task from '
                 'the observations as restorers read them (e.g. learn '
                 'sawyer:bring_to_corner from sawyer:lift data)')
  p.add_argument('--normalise-observations', action='store_true',
                 help='standardise every network\'s input with the data\'s '
                 'per-dimension mean and std, computed once at launch and '
                 'saved in the run directory (recommended for sawyer:*, '
                 'whose observations mix N·m torques with mm offsets)')
  p.add_argument('--offline-steps', type=int, metavar='N',
                 help='offline→online fine-tuning: after N learner steps on '
                 'the dataset, online actors act with the policy, log their '
                 'episodes to RUN_DIR/online_data and feed an online table; '
                 'the run continues to --steps without a restart')
  p.add_argument('--online-actors', type=int, default=1,
                 help='online actor processes (default 1)')
  p.add_argument('--online-buffer', choices=('separate', 'shared'),
                 default='separate',
                 help='separate (default): online snippets go to a table of '
                 'their own and make up --online-fraction of each batch; '
                 'shared: AWAC\'s single buffer, the dataset loaded once '
                 '(one restorer pass) and online snippets appended to the '
                 'same table, sampled uniformly (--replay-size should hold '
                 'both; the oldest snippets are evicted first)')
  p.add_argument('--online-fraction', type=float, default=0.5,
                 help='share of each batch from the online table in the '
                 'online phase, with --online-buffer separate (default 0.5)')
  p.add_argument('--online-samples-per-insert', type=float,
                 help='online table rate limiter: samples per inserted '
                 'snippet (default 32)')
  p.add_argument('--online-min-replay-size', type=int,
                 help='online snippets before the online phase samples '
                 '(default 1000; awr: 10 episodes)')
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--run-dir', help='run directory (config, logs, '
                 'checkpoints); a run restarted with it resumes. Default '
                 'runs/<agent>-<env>')
  p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                 help='override an agent hyperparameter, e.g. '
                 'learning_rate=1e-4 (repeatable)')
  p.add_argument('--launch', default='local_mp',
                 choices=['local_mp', 'test_mt'],
                 help='local_mp: one process per node (default); test_mt: '
                 'threads in this process (fast, for tests)')
  p.set_defaults(func=train)

  c = sub.add_parser(
      'collect', help='log an online MPO run into a dataset (one seed)',
      description='Run an online MPO agent (replay, learner, K actors) whose '
      'actors log every episode they generate into DIR, tagged with the '
      'seed, until the seed holds --episodes episodes. Re-running continues '
      'the count (the learner resumes from DIR/collector/seed<S>); run once '
      'per seed to put several seeds into one dataset.')
  c.add_argument('--env', required=True,
                 help='environment id, e.g. control:cheetah-run')
  c.add_argument('--seed', type=int, default=0,
                 help='the run\'s seed; its episodes are tagged seed<S>')
  c.add_argument('--episodes', type=int, required=True,
                 help='target number of episodes of this seed in DIR')
  c.add_argument('--out', required=True, metavar='DIR',
                 help='dataset directory (created, or appended to)')
  c.add_argument('--actors', type=int, default=1,
                 help='actor processes (default 1)')
  c.add_argument('--samples-per-insert', type=float, default=16.0,
                 help='rate limiter: learner samples per inserted snippet '
                 '(default 16)')
  c.add_argument('--min-replay-size', type=int, default=2_000,
                 help='snippets in replay before learning starts '
                 '(default 2000)')
  c.add_argument('--replay-size', type=int, default=1_000_000,
                 help='replay table size in snippets (default 1e6)')
  c.add_argument('--snippets-per-item', type=int, default=16,
                 help='snippets packed in one Reverb item (default 16)')
  c.add_argument('--progress-seconds', type=float, default=10.0,
                 help='seconds between progress lines (default 10)')
  c.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                 help='override an MPO hyperparameter (see `abmrl train`), '
                 'e.g. batch_size=512 (default here: batch_size=256)')
  c.add_argument('--launch', default='local_mp',
                 choices=['local_mp', 'test_mt'],
                 help='local_mp: one process per node (default); test_mt: '
                 'threads in this process (for tests)')
  c.set_defaults(func=collect)

  d = sub.add_parser('dataset', help='dataset tools').add_subparsers(
      dest='dataset_command', required=True)
  g = d.add_parser('generate', help='write a small mixed-quality dataset '
                   '(scripted controller at several noise levels + random)')
  g.add_argument('--env', default=DEMO_ENV)
  g.add_argument('--out', required=True)
  g.add_argument('--episodes-per-behaviour', type=int, default=5)
  g.add_argument('--seed', type=int, default=0)
  g.add_argument('--controller', help='the scripted controller, where the '
                 'environment has several (Sawyer: pick_and_lift, the '
                 'default; pick_and_place: the green cube to a random '
                 'free place on the floor each episode; '
                 'pick_and_place_keep_away: so, never within the bring '
                 'tasks\' tolerance of their targets; '
                 'pick_and_place_detour: half the carries go by a random '
                 'waypoint out past the basket\'s walls first; '
                 'pick_and_place_wander: during carries the hand drifts up '
                 'or down for a few steps now and then; '
                 'pick_and_place_stop: at each carry step, with probability '
                 '0.02, the cube is set down wherever the carry has got to; '
                 'pick_and_place_detour_stop: both; '
                 'pick_and_place_roam_stop: both, with detours out to 12 cm '
                 'past the walls instead of 4; '
                 'pick_and_place_roam_stop_hold: so, and half the '
                 'set-downs are held still for 5-60 steps before the '
                 'fingers open; pick_and_place_roam_stop_hold_onto: so, and '
                 'one place in ten is on top of another cube, which the '
                 'green cube is pressed onto until the wrist-force limit)')
  g.add_argument('--noise-levels', default='0.1,0.5,1.5',
                 help='Gaussian action noise of the scripted behaviours, in '
                 'half-ranges of each action (default 0.1,0.5,1.5)')
  g.add_argument('--no-random', action='store_true',
                 help='leave out the uniformly random behaviour')
  g.set_defaults(func=dataset_generate)
  i = d.add_parser('info', help='episodes, steps and returns per behaviour; '
                   'writes a plot of return against episode index')
  i.add_argument('dir')
  i.add_argument('--plot', help='where to write the plot (default '
                 'DIR/returns.png)')
  i.set_defaults(func=dataset_info)
  j = d.add_parser('merge', help='copy the episodes of several datasets '
                   'of one environment into one')
  j.add_argument('sources', nargs='+', help='dataset directories')
  j.add_argument('--out', required=True, help='the merged dataset (created, '
                 'or appended to)')
  j.set_defaults(func=dataset_merge)
  v = d.add_parser('validate', help='read every episode; report bad ones')
  v.add_argument('dir')
  v.set_defaults(func=dataset_validate)

  r = sub.add_parser('video', help='render episodes of a run\'s latest '
                     'checkpoint (mean action, as evaluators act) to a GIF')
  r.add_argument('--run-dir', required=True)
  r.add_argument('--policy', default='policy',
                 help='policy (default) or prior, where the agent has one')
  r.add_argument('--task', help='for a multi-task run: the task to show '
                 '(default the first)')
  r.add_argument('--episodes', type=int, default=1)
  r.add_argument('--frame-every', type=int, default=2,
                 help='render every Nth step (default 2)')
  r.add_argument('--width', type=int, default=320)
  r.add_argument('--height', type=int, default=240)
  r.add_argument('--seed', type=int, default=0)
  r.add_argument('--out', help='GIF path (default RUN_DIR/videos/'
                 '<policy>[-<task>].gif)')
  r.set_defaults(func=video)

  m = sub.add_parser('demo', help='make a small dataset, train BM briefly, '
                     'print its evaluation beside the data')
  m.add_argument('--dataset', default='data/demo-point_mass')
  m.add_argument('--run-dir', default='runs/demo')
  m.add_argument('--steps', type=int, default=3000)
  m.set_defaults(func=demo)
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  from abmrl.datasets.episodes import DatasetError  # pylint: disable=g-import-not-at-top
  try:
    return args.func(args)
  except (UsageError, DatasetError) as e:
    print(f'abmrl: error: {e}', file=sys.stderr)
    return 2


def entry_point() -> None:
  """The `abmrl` command (and `python -m launch.cli`): main(), then exit
  without the interpreter's teardown.

  By then every node has stopped and closed its logs, checkpoints and
  episode files, so teardown only frees memory — and there TensorFlow frees
  the graph of every function traced in the process one by one, with each
  op's stack trace (py-spy: `TF_DeleteFunction` → `~StackTraceWrapper`).
  After a 20-step `sawyer:multitask` run in one process that took 56 s, a
  quarter of the command's time; `os._exit` leaves it to the operating
  system.
  """
  code = main()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access


if __name__ == '__main__':
  entry_point()
