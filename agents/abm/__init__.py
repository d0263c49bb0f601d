"""The learners of "Keep Doing What Worked" (ABM+MPO, BM+MPO, MPO, SVG, prior only)."""

from abmrl.agents.abm.config import ABMConfig
from abmrl.agents.abm.config import VARIANTS
from abmrl.agents.abm.learning import ABMLearner
