"""Environments: the control suite (and, later, Sawyer stacking) by id."""

from environments.registry import UnknownEnvironmentError
from environments.registry import env_ids
from environments.registry import make
from environments.registry import register
