"""Agents by name, each built by its family's builder (agents/*/builder.py).

A new agent adds its folder and one line here. Builder modules are imported
when an agent is first asked for, so the command line (flags, --help,
dataset tools) starts without TensorFlow.
"""

import importlib
from typing import List

from abmrl.agents.abm import config as abm_config
from abmrl.agents.bear import config as bear_config
from abmrl.agents.mabe import config as mabe_config

_BUILDER_MODULES = {
    'bm': 'abmrl.agents.bm.builder',
    **{name: 'abmrl.agents.abm.builder' for name in abm_config.VARIANTS},
    'awac': 'abmrl.agents.awac.builder',
    'awr': 'abmrl.agents.awr.builder',
    'bcq': 'abmrl.agents.bcq.builder',
    **{name: 'abmrl.agents.bear.builder' for name in bear_config.VARIANTS},
    **{name: 'abmrl.agents.mabe.builder' for name in mabe_config.VARIANTS},
}


def names() -> List[str]:
  """Every agent name, in the order the README lists them."""
  return list(_BUILDER_MODULES)


def get(name: str):
  """The agent's builder (an agents.builders.AgentBuilder)."""
  if name not in _BUILDER_MODULES:
    raise ValueError(f'unknown agent {name!r}; valid agents: '
                     + ', '.join(names()))
  return importlib.import_module(_BUILDER_MODULES[name]).BUILDERS[name]
