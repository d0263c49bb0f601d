"""The configuration of a training run, saved as `config.json` in its run dir."""

import dataclasses
import json
import os
from typing import Any, Dict, Optional


@dataclasses.dataclass
class TrainConfig:
  agent: str
  env_id: str
  dataset_dir: str
  run_dir: str
  steps: int = 10_000  # learner steps
  restorers: int = 2
  evaluators: int = 1
  eval_episodes: int = 5
  eval_every_learner_steps: int = 1_000
  snippet_length: int = 2  # rows per snippet: N − 1 transitions
  snippets_per_item: int = 16  # snippets packed in one Reverb item
  replay_size: int = 1_000_000  # snippets (the paper: 2e6 transitions)
  min_replay_size: int = 10_000
  samples_per_insert: float = 8.0
  restorer_interleave: int = 8
  first_episodes: Optional[int] = None  # per behaviour tag (seed)
  # Restore the data through env_id's relabellings: rewards recomputed for
  # its task from the observations, once per task for a multi-task env.
  relabel: bool = False
  # Standardise every network's input with the data's per-dimension mean and
  # std (datasets/statistics.py; saved as observation_stats.npz in run_dir).
  normalise_observations: bool = False
  # Offline→online fine-tuning: after `offline_steps` learner steps, online
  # actors act with the policy and insert into an online table; each batch
  # then takes `online_fraction` of its snippets from it. None: offline only.
  # With online_buffer 'shared' (AWAC's single buffer), restorers load the
  # dataset once into the replay table, actors append to that same table,
  # and batches sample the union uniformly (replay_size should hold both:
  # the table evicts its oldest snippets first).
  offline_steps: Optional[int] = None
  online_buffer: str = 'separate'  # or 'shared'
  online_actors: int = 1
  online_fraction: float = 0.5
  online_replay_size: int = 1_000_000  # snippets
  online_min_replay_size: int = 1_000
  online_samples_per_insert: float = 32.0
  seed: int = 0
  agent_config: Dict[str, Any] = dataclasses.field(default_factory=dict)

  @classmethod
  def for_agent(cls, agent: str, **fields) -> 'TrainConfig':
    """A config where fields given as None take the agent's defaults (its
    snippet length and replay settings, agents/registry.py), then the
    dataclass's."""
    from abmrl.agents import registry  # pylint: disable=g-import-not-at-top
    definition = registry.get(agent)
    defaults = dict(snippet_length=definition.snippet_length,
                    **definition.replay_defaults)
    given = {k: v for k, v in fields.items() if v is not None}
    return cls(agent=agent, **{**defaults, **given})

  @property
  def whole_episodes(self) -> bool:
    """Snippets are whole episodes (the agent's choice, e.g. AWR's); the
    snippet length is then the data's longest episode, set at launch."""
    from abmrl.agents import registry  # pylint: disable=g-import-not-at-top
    return registry.get(self.agent).whole_episodes

  def save(self, path: Optional[str] = None) -> str:
    return _save(self, path or os.path.join(self.run_dir, 'config.json'))

  def observation_stats(self):
    """(mean, std) the run's networks standardise with, or None."""
    if not self.normalise_observations:
      return None
    from abmrl.datasets import statistics  # pylint: disable=g-import-not-at-top
    return statistics.load(os.path.join(self.run_dir, statistics.FILENAME))

  @property
  def shared_buffer(self) -> bool:
    return self.offline_steps is not None and self.online_buffer == 'shared'

  @property
  def online_data_dir(self) -> str:
    """Where online actors log their episodes (a dataset of its own)."""
    return os.path.join(self.run_dir, 'online_data')

  def online_batch_size(self, batch_size: int) -> int:
    """Snippets per batch from the online table: the fraction, rounded to
    whole items."""
    k = self.snippets_per_item
    return max(k, int(round(self.online_fraction * batch_size / k)) * k)


# The collector's learner: MPO as the ABM paper's data came from (§5.1), with
# a smaller batch than offline training so it keeps pace with the actors on a
# small machine (more updates per collected step at the same sample reuse).
COLLECT_AGENT_DEFAULTS = {'batch_size': 256}


@dataclasses.dataclass
class CollectConfig:
  """One seed of an online MPO run whose actors log every episode."""
  env_id: str
  dataset_dir: str
  seed: int
  episodes: int  # the seed's target number of episodes on disk
  actors: int = 1
  agent: str = 'mpo'
  snippet_length: int = 2
  snippets_per_item: int = 16
  replay_size: int = 1_000_000  # snippets
  min_replay_size: int = 2_000
  samples_per_insert: float = 16.0  # samples per inserted snippet
  progress_seconds: float = 10.0
  agent_config: Dict[str, Any] = dataclasses.field(
      default_factory=lambda: dict(COLLECT_AGENT_DEFAULTS))

  @property
  def run_dir(self) -> str:
    """Config, logs and learner checkpoints of the seed's run (resumed)."""
    return os.path.join(self.dataset_dir, 'collector', f'seed{self.seed}')

  def save(self) -> str:
    return _save(self, os.path.join(self.run_dir, 'config.json'))


def load_train_config(path: str) -> TrainConfig:
  """A run's saved config.json (fields this version does not know are
  ignored)."""
  with open(path) as f:
    saved = json.load(f)
  fields = {f.name for f in dataclasses.fields(TrainConfig)}
  return TrainConfig(**{k: v for k, v in saved.items() if k in fields})


def _save(config, path: str) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(dataclasses.asdict(config), f, indent=1, default=list)
  os.replace(tmp, path)
  return path
