"""The simulated Sawyer block-stacking tasks of the ABM paper (§5.2, C.3)."""
