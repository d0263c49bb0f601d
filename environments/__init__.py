"""Environments by id: the control suite and the Sawyer stacking cell."""

from environments.registry import UnknownEnvironmentError
from environments.registry import env_ids
from environments.registry import make
from environments.registry import evaluation_ids
from environments.registry import relabellings
from environments.registry import register
from environments.registry import step_limit
from environments.registry import tasks
