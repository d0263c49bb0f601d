"""BM: the behaviour-model prior of the ABM paper (eq. 3), trained on its own."""

from agents.bm.config import BMConfig
from agents.bm.learning import BMLearner
from agents.bm.losses import behaviour_model_loss
