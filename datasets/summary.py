"""`abmrl dataset info` and `abmrl dataset validate`."""

import collections
import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np

from abmrl.datasets import episodes as episodes_lib


@dataclasses.dataclass
class ReturnStats:
  episodes: int
  steps: int
  return_min: float
  return_median: float
  return_max: float
  return_mean: float

  @classmethod
  def of(cls, returns: List[float], steps: int) -> 'ReturnStats':
    r = np.asarray(returns, np.float64)
    return cls(len(r), steps, float(r.min()), float(np.median(r)),
               float(r.max()), float(r.mean()))


@dataclasses.dataclass
class DatasetInfo:
  directory: str
  spec: episodes_lib.DatasetSpec
  total: ReturnStats
  by_behaviour: Dict[str, ReturnStats]
  best_episode: str
  partial_episodes: int
  # (path, reason) of episodes left out: unreadable, or a non-finite return.
  skipped: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
  # behaviour tag -> [(episode index, return)], for plots.
  returns_by_index: Dict[str, List[Tuple[int, float]]] = dataclasses.field(
      default_factory=dict)

  @property
  def best_return(self) -> float:
    return self.total.return_max

  @property
  def mean_return(self) -> float:
    return self.total.return_mean


def _spec_and_episodes(directory: str, first_episodes: Optional[int] = None):
  spec = episodes_lib.read_spec(directory)
  paths = episodes_lib.list_episodes(directory, first_episodes)
  if not paths:
    raise episodes_lib.DatasetError(f'dataset {directory} has no complete '
                                    'episodes')
  return spec, paths


def summarize(directory: str,
              first_episodes: Optional[int] = None) -> DatasetInfo:
  """Reads every episode's metadata (not its steps) and summarizes returns
  (of the first N episodes per behaviour tag with `first_episodes`).
  Episodes that cannot be read, or whose return is not finite (a NaN or
  infinite reward), are left out and listed in `skipped`; `validate` reads
  every step."""
  spec, paths = _spec_and_episodes(directory, first_episodes)
  returns: Dict[str, List[float]] = collections.defaultdict(list)
  by_index: Dict[str, List[Tuple[int, float]]] = collections.defaultdict(list)
  steps: Dict[str, int] = collections.defaultdict(int)
  best: Tuple[float, str] = (-np.inf, '')
  skipped = []
  for path in paths:
    try:
      metadata = episodes_lib.read_episode_metadata(path)
    except episodes_lib.BadEpisode as e:
      skipped.append((path, e.reason))
      continue
    if not np.isfinite(float(metadata['return'])):
      skipped.append((path, f'non-finite return {metadata["return"]} (its '
                      'rewards hold NaN or inf)'))
      continue
    tag = metadata['behaviour']
    returns[tag].append(float(metadata['return']))
    by_index[tag].append((int(metadata['episode_index']),
                          float(metadata['return'])))
    steps[tag] += int(metadata['length'])
    best = max(best, (float(metadata['return']), path))
  if not returns:
    raise episodes_lib.DatasetError(
        f'dataset {directory}: none of its {len(paths)} episode(s) can be '
        f'read; the first: {skipped[0][0]}: {skipped[0][1]}')
  return DatasetInfo(
      directory=directory, spec=spec, skipped=skipped,
      total=ReturnStats.of(sum(returns.values(), []), sum(steps.values())),
      by_behaviour={t: ReturnStats.of(returns[t], steps[t]) for t in returns},
      best_episode=best[1],
      partial_episodes=len(episodes_lib.list_partial_episodes(directory)),
      returns_by_index=dict(by_index))


def plot_returns(info: DatasetInfo, path: str) -> str:
  """Behaviour return against episode index, one line per tag (the ABM
  paper's Figure 6 plots this per seed of the logged learning runs)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for tag, points in sorted(info.returns_by_index.items()):
    index, value = np.array(sorted(points), dtype=float).T.reshape(2, -1)
    if len(points) <= 50:
      ax.plot(index, value, marker='.', label=tag)
      continue
    # Many episodes (a logged learning run): faint points and a moving mean.
    dots = ax.plot(index, value, '.', markersize=2, alpha=0.3)[0]
    window = max(5, len(points) // 40)
    mean = np.convolve(value, np.ones(window) / window, mode='valid')
    ax.plot(index[window - 1:], mean, color=dots.get_color(),
            label=f'{tag} (mean of {window})')
  ax.axhline(info.best_return, color='grey', linestyle='--',
             label=f'best episode ({info.best_return:.1f})')
  ax.set_xlabel('episode index (per behaviour tag)')
  ax.set_ylabel('episode return')
  ax.set_title(f'{info.spec.env_id}: {info.total.episodes} episodes')
  ax.legend(fontsize=8, loc='center left', bbox_to_anchor=(1.01, 0.5))
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def format_summary(info: DatasetInfo) -> str:
  header = (f'{"behaviour":<24} {"episodes":>8} {"steps":>9} {"min":>8} '
            f'{"median":>8} {"max":>8} {"mean":>8}')

  def row(name, s):
    return (f'{name:<24} {s.episodes:>8} {s.steps:>9} {s.return_min:>8.1f} '
            f'{s.return_median:>8.1f} {s.return_max:>8.1f} '
            f'{s.return_mean:>8.1f}')

  lines = [f'dataset {info.directory}: {info.spec.env_id}, observation '
           f'{info.spec.observation_shape}, action {info.spec.action_shape}',
           header]
  lines += [row(t, s) for t, s in sorted(info.by_behaviour.items())]
  lines.append(row('all', info.total))
  lines.append(f'best episode: return {info.best_return:.1f} '
               f'({info.best_episode})')
  if info.partial_episodes:
    lines.append(f'{info.partial_episodes} unfinished episode(s) ignored')
  if info.skipped:
    lines.append(f'{len(info.skipped)} bad episode(s) skipped (abmrl dataset '
                 'validate checks every step):')
    lines += [f'  {path}: {reason}' for path, reason in info.skipped]
  return '\n'.join(lines)


@dataclasses.dataclass
class ValidationReport:
  directory: str
  valid: int
  bad: List[Tuple[str, str]]  # (path, problem)
  partial: List[str]

  @property
  def ok(self) -> bool:
    return not self.bad


def non_finite_fields(episode: episodes_lib.Episode) -> Optional[str]:
  """'NaN/inf in ... (N rows)' naming the fields that hold any, else None."""
  bad = episodes_lib.non_finite_rows(episode)
  if not bad:
    return None
  fields = ', '.join(f'{name} ({len(rows)} of {len(episode.reward)} rows)'
                     for name, rows in bad.items())
  return f'NaN/inf in {fields}'


def validate(directory: str) -> ValidationReport:
  """Reads every step of every episode; checks shapes, lengths and returns."""
  spec, paths = _spec_and_episodes(directory)
  bad, valid = [], 0
  for path in paths:
    try:
      episode = episodes_lib.read_episode(path)
      problem = None
      if episode.observation.shape[1:] != spec.observation_shape:
        problem = f'observation shape {episode.observation.shape[1:]}'
      elif episode.action.shape[1:] != spec.action_shape:
        problem = f'action shape {episode.action.shape[1:]}'
      elif non_finite_fields(episode):
        problem = non_finite_fields(episode)
      elif not np.isclose(episode.reward.sum(), episode.metadata['return'],
                          rtol=1e-4, atol=1e-3):
        problem = (f'rewards sum to {episode.reward.sum():.3f}, metadata '
                   f'says {episode.metadata["return"]:.3f}')
    except episodes_lib.BadEpisode as e:
      problem = e.reason
    if problem:
      bad.append((path, problem))
    else:
      valid += 1
  return ValidationReport(directory, valid, bad,
                          episodes_lib.list_partial_episodes(directory))


def format_validation(report: ValidationReport) -> str:
  lines = [f'{report.directory}: {report.valid} valid episode(s), '
           f'{len(report.bad)} bad, {len(report.partial)} unfinished (ignored)']
  lines += [f'BAD {path}: {problem}' for path, problem in report.bad]
  lines.append('OK' if report.ok else 'FAILED')
  return '\n'.join(lines)
