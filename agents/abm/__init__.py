"""The learners of "Keep Doing What Worked" (ABM+MPO, BM+MPO, MPO, SVG,
prior only).

config.py (Tables 1-2), losses.py (the equations), learning.py (the learner),
builder.py (what launch/ needs). Import the modules themselves: this file
imports nothing, so reading a config does not load TensorFlow.
"""
