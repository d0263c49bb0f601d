"""Environments by id: the control suite, the Sawyer stacking cell and
gymnasium's MuJoCo tasks."""

from abmrl.environments.registry import UnknownEnvironmentError
from abmrl.environments.registry import env_ids
from abmrl.environments.registry import make
from abmrl.environments.registry import evaluation_ids
from abmrl.environments.registry import relabellings
from abmrl.environments.registry import register
from abmrl.environments.registry import score
from abmrl.environments.registry import step_limit
from abmrl.environments.registry import tasks
