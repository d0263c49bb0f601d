"""The learners of "Keep Doing What Worked" (ABM+MPO, BM+MPO, MPO, SVG, prior only)."""

from agents.abm.config import ABMConfig
from agents.abm.config import VARIANTS
from agents.abm.learning import ABMLearner
