"""Learning curves of several agents on one mixed-quality dataset.

Like the ABM paper's Figure 1 (return against learner step for the RL policy
and the prior, the best episode in the data marked) and Table 6 (final
returns), at the scale this machine affords. Each agent runs as the full
Launchpad program (restorers, Reverb, learner, evaluators). With
--offline-steps, each run switches to online fine-tuning at that step (the
switch is marked), as AWAC's offline→online curves.

Usage:
  python benchmarks/abm_results.py [--steps 3000] [--out docs/results]
  python benchmarks/abm_results.py --env control:cheetah-run \
      --dataset data/mpo-cheetah_run --agents awac,abm_mpo \
      --offline-steps 5000 --steps 10000 --name finetune_cheetah --seeds 0,1,2

With several --seeds, each agent runs once per seed (runs/<agent>/seed<S>);
the plot shows the mean over seeds with the range shaded, and the table the
mean ± standard deviation, plus for fine-tuning runs the mean online
evaluation and the online learner steps until the policy first beats the
data's best episode.
"""

import argparse
import glob
import math
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('GLOG_minloglevel', '1')
os.environ.setdefault('MUJOCO_GL', 'egl')

ENV_ID = 'control:point_mass-easy'
AGENTS = ('abm_mpo', 'bm_mpo', 'mpo')
LAST_K = 3


def curves(run_dir):
  from abmrl.launch import run as run_lib
  out = {}
  for path in sorted(glob.glob(os.path.join(run_dir, 'logs', 'evaluator_*',
                                            'logs.csv'))):
    label = os.path.basename(os.path.dirname(path)).split('_')[1]
    rows = run_lib.read_csv(path)
    out[label] = ([r['learner_steps'] for r in rows],
                  [r['evaluation_return'] for r in rows])
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--dataset', default='data/results-point_mass')
  parser.add_argument('--episodes-per-behaviour', type=int, default=10)
  parser.add_argument('--steps', type=int, default=3000)
  parser.add_argument('--runs', default='runs/results')
  parser.add_argument('--out', default='docs/results')
  parser.add_argument('--agents', default=','.join(AGENTS))
  parser.add_argument('--eval-episodes', type=int, default=10)
  parser.add_argument('--env', default=ENV_ID)
  parser.add_argument('--first-episodes', type=int)
  parser.add_argument('--offline-steps', type=int)
  parser.add_argument('--seeds', default='0',
                      help='comma-separated run seeds (default 0)')
  parser.add_argument('--eval-every', type=int,
                      help='learner steps between evaluations (default '
                      'steps/10)')
  parser.add_argument('--name', default='abm_point_mass',
                      help='basename of the PNG and table written to --out')
  parser.add_argument('--plot-only', action='store_true',
                      help='redraw the plot and table from the runs already '
                      'in --runs')
  parser.add_argument('--relabel', action='store_true',
                      help='train for --env\'s task on data relabelled for '
                      'it (as abmrl train --relabel); the data lines are '
                      'then the relabelled returns')
  parser.add_argument('--normalise-observations', action='store_true',
                      help='as abmrl train --normalise-observations')
  parser.add_argument('--preset', default='',
                      help='as abmrl train --preset, for every agent (e.g. '
                      "paper: the ABM paper's exact settings)")
  parser.add_argument('--holdout-fraction', type=float,
                      help='as abmrl train --holdout-fraction: episodes kept '
                      'from the learner, for the logged value checks')
  parser.add_argument('--snippet-length', type=int,
                      help='rows per snippet (as abmrl train '
                      '--snippet-length; default: each agent\'s own)')
  parser.add_argument('--samples-per-insert', type=float, default=32.0,
                      help='replay samples per inserted snippet (as abmrl '
                      'train --samples-per-insert); with a large dataset, '
                      'lower it so the run reads the whole of it')
  parser.add_argument('--set', action='append', default=[],
                      metavar='KEY=VALUE', help='hyperparameter override for '
                      'every agent that has KEY')
  args = parser.parse_args()
  if args.snippet_length is not None and args.snippet_length < 2:
    parser.error(f'--snippet-length must be at least 2, got '
                 f'{args.snippet_length}')

  from abmrl.datasets import episodes, generate, summary
  from abmrl.launch import config as config_lib
  from abmrl.launch import flags
  from abmrl.launch import run as run_lib
  from abmrl.agents import registry
  import numpy as np
  if not episodes.list_episodes(args.dataset):
    if args.env != ENV_ID:
      sys.exit(f'abmrl: error: no episodes in {args.dataset}')
    generate.generate(ENV_ID, args.dataset, args.episodes_per_behaviour,
                      seed=0, progress=None)
  info = summary.summarize(args.dataset, args.first_episodes)
  print(summary.format_summary(info), flush=True)
  data_best, data_mean = info.best_return, info.mean_return
  if args.relabel:
    from abmrl import environments
    (observation_fn, reward_fn), = environments.relabellings(args.env)
    relabelled = [float(episodes.relabelled(
        episodes.read_episode(path), reward_fn, observation_fn).reward.sum())
                  for path in episodes.list_episodes(args.dataset,
                                                     args.first_episodes)]
    data_best, data_mean = np.max(relabelled), np.mean(relabelled)
    print(f'relabelled for {args.env}: mean {data_mean:.1f}, best '
          f'{data_best:.1f}', flush=True)
  seeds = [int(s) for s in args.seeds.split(',')]
  results = {}  # agent -> [(result, curves, seconds) per seed]
  for agent in args.agents.split(','):
    builder = registry.get(agent)
    overrides = flags.parse_overrides(
        builder.config_class,
        flags.overrides_it_has(builder.config_class, args.set))
    # Replay sizes in snippets, unless the agent has its own (AWR's are in
    # whole episodes); then what the command line gave.
    replay = {key: value for key, value in dict(
        replay_size=200_000, min_replay_size=5_000).items()
              if key not in builder.run_defaults.get('replay', {})}
    replay.update({key: value for key, value in dict(
        samples_per_insert=args.samples_per_insert,
        snippet_length=args.snippet_length).items() if value is not None})
    if builder.whole_episodes:
      replay.pop('snippet_length', None)
    for seed in seeds:
      run_dir = os.path.abspath(os.path.join(args.runs, agent,
                                             episodes.seed_tag(seed)))
      config = config_lib.TrainConfig.for_agent(
          agent, {
              'data': dict(dataset_dir=os.path.abspath(args.dataset),
                           restorers=1, first_episodes=args.first_episodes,
                           relabel=args.relabel,
                           normalise_observations=args.normalise_observations,
                           **({} if args.holdout_fraction is None else
                              dict(holdout_fraction=args.holdout_fraction))),
              'replay': replay,
              'online': dict(offline_steps=args.offline_steps),
              'evaluation': dict(
                  evaluators=1, episodes=args.eval_episodes,
                  every_learner_steps=(args.eval_every
                                       or max(1, args.steps // 10)))},
          overrides, preset=args.preset, env_id=args.env, run_dir=run_dir,
          steps=args.steps, seed=seed)
      start = time.time()
      if args.plot_only:
        result = run_lib.read_result(run_dir)
        with open(os.path.join(run_dir, 'wall_seconds')) as f:
          seconds = float(f.read())
      else:
        print(f'== {agent} seed {seed}', flush=True)
        result = run_lib.train(config)
        seconds = time.time() - start
        with open(os.path.join(run_dir, 'wall_seconds'), 'w') as f:
          f.write(f'{seconds:.1f}')
      results.setdefault(agent, []).append(
          (result, curves(run_dir), seconds))
      print(run_lib.format_summary(result), flush=True)

  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  os.makedirs(args.out, exist_ok=True)
  fig, ax = plt.subplots(figsize=(9, 4.5))
  colours = {'abm_mpo': 'tab:red', 'bm_mpo': 'tab:blue', 'mpo': 'tab:green',
             'awac': 'tab:purple', 'awr': 'tab:orange', 'bcq': 'tab:brown',
             'bear': 'tab:olive', 'bear_mmd': 'tab:cyan', 'mabe': 'tab:pink',
             'mabe_flat': 'tab:gray', 'mopo': 'black'}
  grid = np.linspace(0, args.steps, 101)
  for agent, runs in results.items():
    for label in runs[0][1]:
      on_grid = np.array([np.interp(grid, *agent_curves[label])
                          for _, agent_curves, _ in runs])
      style = dict(color=colours.get(agent, 'black'),
                   linestyle='-' if label == 'policy' else ':')
      ax.plot(grid, on_grid.mean(axis=0), label=f'{agent} [{label}]'
              + (f', mean of {len(runs)} seeds' if len(runs) > 1 else ''),
              **style)
      if len(runs) > 1:
        ax.fill_between(grid, on_grid.min(axis=0), on_grid.max(axis=0),
                        alpha=0.15, color=style['color'])
      else:
        ax.plot(*runs[0][1][label], marker='o', markersize=3, linewidth=0,
                color=style['color'])
  ax.axhline(data_best, color='grey', linestyle='--',
             label='best episode in data')
  ax.axhline(data_mean, color='grey', linestyle='-.',
             label='mean episode in data')
  if args.offline_steps is not None:
    ax.axvline(args.offline_steps, color='black', linewidth=0.8,
               label='offline → online')
  ax.set_xlabel('learner step')
  ax.set_ylabel('evaluation return (mean action)')
  used = (f'first {args.first_episodes} episodes per seed: '
          if args.first_episodes else '')
  ax.set_title(f'{args.env}, {used}{info.total.episodes} episodes; '
               f'mean of {args.eval_episodes} evaluation episodes',
               fontsize=9)
  ax.legend(fontsize=8, loc='center left', bbox_to_anchor=(1.01, 0.5))
  fig.tight_layout()
  png = os.path.join(args.out, f'{args.name}.png')
  fig.savefig(png, dpi=120)

  def mean_std(values):
    values = [v for v in values if not math.isnan(v)]
    if not values:
      return ''
    if len(values) == 1:
      return f'{values[0]:.1f}'
    return f'{np.mean(values):.1f} ± {np.std(values):.1f}'

  online = args.offline_steps is not None
  # The final evaluation, and the mean of the last LAST_K (MABE's protocol:
  # one evaluation of a few episodes is a noisy point of a noisy curve).
  header = ['agent', 'seeds', 'RL policy (final)', 'prior (final)',
            f'RL policy (last {LAST_K})', f'prior (last {LAST_K})']
  if online:
    header += ['policy, online evaluations: first half',
               'second half']
  # D4RL's normalised score beside the returns, for the tasks that have one.
  from abmrl import environments
  score = environments.score(args.env)
  if score:
    header += ['RL policy (final), D4RL score']
  header += ['wall time per run']
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for agent, runs in results.items():
    finals = {label: [r.final_returns.get(f'evaluator_{label}_0', math.nan)
                      for r, _, _ in runs] for label in ('policy', 'prior')}
    lasts = {label: [float(np.mean(agent_curves[label][1][-LAST_K:]))
                     if label in agent_curves else math.nan
                     for _, agent_curves, _ in runs]
             for label in ('policy', 'prior')}
    row = [agent, str(len(runs)), mean_std(finals['policy']),
           mean_std(finals['prior']), mean_std(lasts['policy']),
           mean_std(lasts['prior'])]
    if online:
      # How fast fine-tuning rises, and where it gets to: the policy's mean
      # evaluation in each half of the online phase, per seed.
      middle = (args.offline_steps + args.steps) / 2
      halves = ([], [])
      for _, agent_curves, _ in runs:
        steps, returns = (np.array(x) for x in agent_curves['policy'])
        for half, chosen in zip(halves, (
            (steps > args.offline_steps) & (steps <= middle),
            steps > middle)):
          half.append(float(returns[chosen].mean()) if chosen.any()
                      else math.nan)
      row += [mean_std(halves[0]), mean_std(halves[1])]
    if score:
      row.append(mean_std([score(v) for v in finals['policy']]))
    row.append(f'{np.mean([s for _, _, s in runs]):.0f} s')
    lines.append('| ' + ' | '.join(row) + ' |')
  blank = ' |' * (len(header) - 2)
  for label, value in (('best', data_best), ('mean', data_mean)):
    scored = f' (D4RL score {score(value):.1f})' if score else ''
    lines.append(f'| data: {label} episode | {value:.1f}{scored} |{blank}')
  table = '\n'.join(lines)
  print(table)
  with open(os.path.join(args.out, f'{args.name}_table.md'), 'w') as f:
    f.write(table + '\n')
  print(f'wrote {png}')


if __name__ == '__main__':
  main()
