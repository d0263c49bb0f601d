"""BM: the behaviour-model prior of the ABM paper (eq. 3), trained on its own.

Import the modules themselves: this file imports nothing, so reading a
config does not load TensorFlow.
"""
