"""Where ABM+MPO's step time goes: the target critic on sampled actions.

At the paper's shapes (batch 512 two-row snippets, M = 20, critic 256-256-256)
ABM+MPO evaluates the target critic on 3·M·B = 30,720 (state, action) rows
per step: V̂ at s_t and at s_{t+1} under the target policy, and the prior's
E-step samples at s_t (Acme's MPO needs M·B = 10,240). This prints, in one
run, the whole step's time, the time of that one critic call, and the
matmul rate it runs at; then, each in a fresh process (oneDNN is chosen when
TensorFlow loads), a 30,720 × 256 × 256 matmul in float32 and bfloat16, with
and without oneDNN, with and without XLA: the precision lever that is left.

Usage: python benchmarks/critic_cost.py [--repeats 20]
"""

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

ROWS = 3 * 20 * 512

MATMUL = '''
import time, tensorflow as tf
x = tf.cast(tf.random.normal([{rows}, 256]), tf.{dtype})
w = tf.cast(tf.random.normal([256, 256]), tf.{dtype})
f = tf.function(lambda x: tf.matmul(x, w), jit_compile={jit})
f(x).numpy()
start = time.time()
for _ in range({repeats}):
  f(x).numpy()
print((time.time() - start) / {repeats} * 1000)
'''


def timed(fn, repeats):
  fn()
  start = time.time()
  for _ in range(repeats):
    fn()
  return (time.time() - start) / repeats * 1000


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--repeats', type=int, default=20)
  args = parser.parse_args()
  import numpy as np
  import tensorflow as tf
  from acme.utils import loggers
  from abmrl.agents import networks
  from abmrl.agents.abm import learning
  from abmrl.agents import registry

  rng = np.random.default_rng(0)
  batch = {'observation': tf.constant(rng.normal(size=(512, 2, 17)), tf.float32),
           'action': tf.constant(rng.uniform(-1, 1, (512, 2, 6)), tf.float32),
           'reward': tf.constant(rng.normal(size=(512, 2)), tf.float32),
           'discount': tf.ones([512, 2])}
  builder = registry.get('abm_mpo')
  config = builder.make_config(**builder.preset('paper')['agent'])

  def batches():
    while True:
      yield batch

  learner = learning.ABMLearner(
      networks.make_gaussian_policy(6, config.policy_layer_sizes),
      networks.make_gaussian_policy(6, config.prior_layer_sizes),
      networks.make_critic(config.critic_layer_sizes), batches(), 17, 6,
      config=config, logger=loggers.NoOpLogger())
  step_ms = timed(learner.step, args.repeats)
  critic = networks.make_critic(config.critic_layer_sizes)
  states = tf.random.normal([ROWS, 17])
  actions = tf.random.normal([ROWS, 6])
  forward = tf.function(lambda s, a: critic(s, a), jit_compile=True)
  critic_ms = timed(lambda: forward(states, actions).numpy(), args.repeats)
  flops = 2 * ROWS * (23 * 256 + 256 * 256 * 2 + 256)
  print(f'abm_mpo step (XLA, float32): {step_ms:.1f} ms')
  print(f'target critic on {ROWS} sampled rows (XLA, float32): '
        f'{critic_ms:.1f} ms = {critic_ms / step_ms:.0%} of the step, '
        f'{flops / critic_ms / 1e6:.0f} GFLOP/s')
  print(f'\n{ROWS} x 256 x 256 matmul, ms (each in a fresh process):')
  print('| dtype | oneDNN | XLA | ms |\n|---|---|---|---|')
  for dtype in ('float32', 'bfloat16'):
    for onednn in ('0', '1'):
      for jit in (False, True):
        out = subprocess.run(
            [sys.executable, '-c', MATMUL.format(rows=ROWS, dtype=dtype,
                                                 jit=jit,
                                                 repeats=args.repeats)],
            capture_output=True, text=True, check=True,
            env=dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn))
        print(f'| {dtype} | {"on" if onednn == "1" else "off"} | '
              f'{"on" if jit else "off"} | {float(out.stdout.split()[-1]):.2f} |')


if __name__ == '__main__':
  main()
