"""A program that fails stops, even when it is not the first one a process
launches (benchmarks launch several), and even when a node ignores SIGTERM:
every node is killed after the termination notice, instead of the launcher
waiting forever (launch/processes.py)."""

import os
import subprocess
import sys
import textwrap
import time

import psutil

SCRIPT = textwrap.dedent('''
    import os, signal, sys, time
    import launchpad as lp
    from abmrl.launch import config, nodes, run as run_lib

    class Quick:
      def run(self):
        lp.stop()

    class Stubborn:  # like a learner blocked in a C++ call: ignores SIGTERM
      def run(self):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with open({mark!r}, 'w') as f:
          f.write(str(os.getpid()))
        while True:
          time.sleep(1)

    class Failing:
      def run(self):
        time.sleep(3)
        raise RuntimeError('boom')

    first = lp.Program('first')
    first.add_node(lp.PyNode(nodes.run, Quick), label='stopper')
    run_lib._launch(first, config.LaunchConfig('local_mp'))
    print('first program done', flush=True)
    second = lp.Program('second')
    second.add_node(lp.PyNode(nodes.run, Stubborn), label='learner')
    second.add_node(lp.PyNode(nodes.run, Failing), label='replay')
    run_lib._launch(second, config.LaunchConfig('local_mp'))
''')


def test_a_failed_second_program_is_killed_not_left_hanging(tmp_path):
  mark = str(tmp_path / 'stubborn.pid')
  script = tmp_path / 'two_programs.py'
  script.write_text(SCRIPT.format(mark=mark))
  start, stubborn = time.time(), None
  try:
    done = subprocess.run([sys.executable, str(script)], capture_output=True,
                          text=True, timeout=120, cwd=str(tmp_path))
  except subprocess.TimeoutExpired:
    raise AssertionError('the second program hung after its node failed')
  finally:
    if os.path.exists(mark):  # never leave the stubborn node behind
      with open(mark) as f:
        stubborn = int(f.read())
  assert 'first program done' in done.stdout, done.stdout + done.stderr
  assert stubborn is not None, 'the second program never started its nodes'
  assert 'boom' in done.stdout + done.stderr
  assert ('node replay/0 (pid' in done.stderr and
          'exited with status 1; stopping the program' in done.stderr)
  assert done.returncode != 0 and time.time() - start < 100
  deadline = time.time() + 10
  while psutil.pid_exists(stubborn) and time.time() < deadline:
    try:
      if psutil.Process(stubborn).status() == psutil.STATUS_ZOMBIE:
        break
    except psutil.NoSuchProcess:
      break
    time.sleep(0.2)
  alive = psutil.pid_exists(stubborn) and (
      psutil.Process(stubborn).status() != psutil.STATUS_ZOMBIE)
  if alive:
    psutil.Process(stubborn).kill()
  assert not alive, 'the node that ignored SIGTERM was left running'
