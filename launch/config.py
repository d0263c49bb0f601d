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
  seed: int = 0
  agent_config: Dict[str, Any] = dataclasses.field(default_factory=dict)

  def save(self, path: Optional[str] = None) -> str:
    path = path or os.path.join(self.run_dir, 'config.json')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      json.dump(dataclasses.asdict(self), f, indent=1, default=list)
    os.replace(tmp, path)
    return path
