"""BM: the behaviour-model prior of the ABM paper (eq. 3), trained on its own."""

from abmrl.agents.bm.config import BMConfig
from abmrl.agents.bm.learning import BMLearner
from abmrl.agents.bm.losses import behaviour_model_loss
