"""What the benchmarks share: the rate of a repeated call.

Imported as a sibling module (`python benchmarks/<script>.py` puts this
folder first on the path).
"""

import time
from typing import Callable


def calls_per_second(call: Callable[[], object], count: int,
                     warmup: int = 0) -> float:
  """`count` calls of `call()` timed together, after `warmup` untimed ones
  (graph tracing, caches)."""
  for _ in range(warmup):
    call()
  start = time.time()
  for _ in range(count):
    call()
  return count / (time.time() - start)
