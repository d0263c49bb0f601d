"""What the ABM family's advantage filter does to each behaviour of the data.

Reads the learner logs of runs made by benchmarks/abm_results.py
(RUNS/<agent>/seed<S>/logs/learner/logs.csv) and draws, per behaviour tag of
the data, against learner step (mean over seeds, the seeds' range shaded):

  1. the ABM weights' mean, f(R(τ_t:N) − V̂(s_t)) (eq. 4): a filter at work
     keeps the better behaviour's snippets (→ high) and drops the other's
     (→ 0); BM weighs every snippet 1;
  2. the prior's log-likelihood of the tag's actions (ABM's should prefer
     the better behaviour; BM's, a prior of the whole mixture, should not);
  3. with held-out episodes (--holdout-fraction), the critic's V̂(s) at
     their states beside their Monte-Carlo returns: how far value has
     propagated;
  4. MPO's E-step weight entropy as a fraction of log M (1: the E-step's
     reweighting of the prior's samples is uniform, it improves nothing)
     and its temperature η.

Usage:
  python benchmarks/behaviour_filter.py --runs runs/conflict_reacher \
      --agents abm_mpo,bm_mpo --seeds 0,1,2 --out docs/results/x_filter.png
"""

import argparse
import os

import numpy as np

SMOOTH = 15  # log rows per running mean (each row is one batch)


def _learner_rows(run_dir):
  from abmrl.launch import run as run_lib
  path = os.path.join(run_dir, 'logs', 'learner', 'logs.csv')
  return run_lib.read_csv(path) if os.path.exists(path) else []


def _smoothed(x):
  if len(x) < SMOOTH:
    return np.asarray(x)
  return np.convolve(x, np.ones(SMOOTH) / SMOOTH, mode='valid')


def _series(runs, key):
  """(steps, [seeds, T] smoothed values) on the first run's step grid, or
  None if no run logs `key`."""
  curves = []
  for rows in runs:
    rows = [r for r in rows if key in r and 'learner_steps' in r]
    if rows:
      curves.append((np.array([r['learner_steps'] for r in rows]),
                     np.array([r[key] for r in rows])))
  if not curves:
    return None
  grid = _smoothed(curves[0][0])
  values = np.stack([np.interp(grid, _smoothed(s), _smoothed(v))
                     for s, v in curves])
  return grid, values


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--runs', required=True,
                      help='abm_results.py --runs directory')
  parser.add_argument('--agents', default='abm_mpo,bm_mpo')
  parser.add_argument('--seeds', default='0')
  parser.add_argument('--out', required=True, help='the PNG to write')
  parser.add_argument('--title', default='')
  args = parser.parse_args()
  agents = args.agents.split(',')
  seeds = [int(s) for s in args.seeds.split(',')]

  runs = {}
  for agent in agents:
    dirs = [os.path.join(args.runs, agent, f'seed{s}') for s in seeds]
    runs[agent] = [rows for rows in map(_learner_rows, dirs) if rows]
    if not runs[agent]:
      parser.error(f'no learner log of {agent} under {args.runs} for seeds '
                   f'{args.seeds}')
  keys = set().union(*(r for rs in runs.values() for r in rs[0][:1]))
  tags = sorted(k[len('prior_logp_'):] for k in keys
                if k.startswith('prior_logp_'))
  if not tags:
    parser.error('the learner logs hold no per-tag columns (prior_logp_<tag>)'
                 ': runs of an ABM-family agent from before they were logged?')

  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(2, 2, figsize=(12, 8))
  colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
  styles = ['-', '--', ':', '-.']

  def draw(ax, key, label, colour, style):
    found = _series(runs_of, key)
    if found is None:
      return
    grid, values = found
    ax.plot(grid, values.mean(axis=0), color=colour, linestyle=style,
            label=label)
    if len(values) > 1:
      ax.fill_between(grid, values.min(axis=0), values.max(axis=0),
                      color=colour, alpha=0.12)

  for a, agent in enumerate(agents):
    runs_of = runs[agent]
    style = styles[a % len(styles)]
    for t, tag in enumerate(tags):
      colour = colours[t % len(colours)]
      draw(axes[0, 0], f'abm_weight_{tag}', f'{agent}: {tag}', colour, style)
      draw(axes[0, 1], f'prior_logp_{tag}', f'{agent}: {tag}', colour, style)
      draw(axes[1, 0], f'heldout_v_{tag}', f'{agent}: V̂, {tag}', colour,
           style)
      if a == 0:
        draw(axes[1, 0], f'heldout_return_{tag}',
             f'Monte-Carlo return, {tag}', colour, (0, (1, 3)))
    draw(axes[1, 1], 'e_step_entropy', f'{agent}: E-step entropy (nats)',
         'black', style)
    draw(axes[1, 1], 'temperature', f'{agent}: temperature η', 'tab:red',
         style)
  titles = ('ABM weight mean per tag (eq. 4)',
            "prior's log-likelihood of each tag's actions",
            'held-out states: V̂ and the Monte-Carlo return',
            'MPO E-step: weight entropy (log M when uniform) and η')
  for ax, title in zip(axes.flat, titles):
    ax.set_title(title, fontsize=9)
    ax.set_xlabel('learner step')
    if ax.lines:
      ax.legend(fontsize=7)
    else:
      ax.text(0.5, 0.5, 'not in these runs\' logs (held-out values need '
              '--holdout-fraction)' if ax is axes[1, 0] else
              "not in these runs' logs", ha='center', va='center',
              transform=ax.transAxes, fontsize=8)
  if args.title:
    fig.suptitle(args.title, fontsize=10)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  fig.savefig(args.out, dpi=110)
  print(f'wrote {args.out} ({", ".join(tags)})')


if __name__ == '__main__':
  main()
