"""`--launch ray` across hosts against the same on one host, in one run.

The hosts are network namespaces on a bridge (launch/netns_cluster.py;
root only): they share this machine's cores, so the ratios measure what
crossing hosts costs the data path (veth and bridge instead of loopback,
Reverb's and courier's traffic over TCP to another address), not a real
network's latency or bandwidth. Prints:
  1. the Ray cluster's start time (head, then the workers);
  2. restorer insert rate into a Reverb server on another host, against one
     on its own host (transitions/s, one restorer, the same episodes);
  3. learner steps/s (BM at the paper's batch, 512) of the whole program
     with replay and the restorer on another host than the learner, against
     all three on one host.

Usage (as root): python benchmarks/cluster.py [--episodes 20] [--steps 1500]
"""

import argparse
import os
import shutil
import subprocess
import sys

import pipeline  # benchmarks/pipeline.py: the dataset and restore_once

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
ABMRL = os.path.join(os.path.dirname(sys.executable), 'abmrl')
REVERB_PORT = 8000

# A Reverb server without rate limiting, as pipeline.py's insert test has.
_SERVER = f'''
import sys, time, reverb
from abmrl.datasets import episodes, replay
spec = episodes.read_spec(sys.argv[1])
table = reverb.Table(pipeline.TABLE, sampler=reverb.selectors.Uniform(),
                     remover=reverb.selectors.Fifo(), max_size=10**6,
                     rate_limiter=reverb.rate_limiters.MinSize(1),
                     signature=replay.snippet_signature(
                         spec, pipeline.SNIPPET_LENGTH,
                         pipeline.SNIPPETS_PER_ITEM))
server = reverb.Server([table], port={REVERB_PORT})
print('ready', flush=True)
time.sleep(3600)
'''
_CLIENT = '''
import sys, pipeline
rate, steps, seconds = pipeline.restore_once(sys.argv[1], sys.argv[2], 1)
print(f'RATE {rate:.1f} {steps} {seconds:.2f}', flush=True)
'''


def insert_rate(cluster, dataset, server_host, client_host) -> float:
  server = cluster.popen(server_host, [
      sys.executable, '-c', 'import pipeline\n' + _SERVER, dataset],
                         cwd=BENCHMARKS, stdout=subprocess.PIPE, text=True)
  try:
    assert server.stdout.readline().strip() == 'ready'
    done = cluster.run(client_host, [
        sys.executable, '-c', _CLIENT, dataset,
        f'{cluster.ip(server_host)}:{REVERB_PORT}'], cwd=BENCHMARKS,
                       timeout=900)
    line = [l for l in done.stdout.splitlines() if l.startswith('RATE')]
    if not line:
      sys.exit(f'insert benchmark failed: {done.stderr[-2000:]}')
    return float(line[0].split()[1])
  finally:
    os.killpg(server.pid, 9)
    server.wait()


def learner_rate(cluster, dataset, run_dir, steps, placement) -> float:
  """BM learner steps/s over the run's second half, from its own log."""
  from abmrl.launch import run as run_lib  # pylint: disable=g-import-not-at-top
  shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run, not a resumed one
  done = cluster.run(1, [
      ABMRL, 'train', '--agent', 'bm', '--env', pipeline.ENV_ID,
      '--dataset', dataset, '--steps', str(steps), '--restorers', '1',
      '--eval-episodes', '1', '--eval-every', str(10 * steps),
      '--run-dir', run_dir, '--launch', 'ray', '--ray-address',
      cluster.address, '--placement', placement], timeout=1800)
  if done.returncode:
    sys.exit(f'training failed ({placement}): {done.stderr[-2000:]}')
  rows = run_lib.read_csv(os.path.join(run_dir, 'logs', 'learner',
                                       'logs.csv'))
  # learner_walltime is the counter's running total of step times.
  half = [r for r in rows if r['learner_steps'] >= steps // 2]
  return ((half[-1]['learner_steps'] - half[0]['learner_steps']) /
          (half[-1]['learner_walltime'] - half[0]['learner_walltime']))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--dataset', default='data/bench-cheetah-run-cluster')
  parser.add_argument('--episodes', type=int, default=20)
  parser.add_argument('--steps', type=int, default=1500,
                      help='learner steps per training run (default 1500)')
  parser.add_argument('--runs', default='runs/bench-cluster')
  args = parser.parse_args()
  from abmrl.launch import netns_cluster  # pylint: disable=g-import-not-at-top
  why_not = netns_cluster.available()
  if why_not:
    sys.exit(f'abmrl: error: no simulated hosts here: {why_not}')
  dataset, runs = os.path.abspath(args.dataset), os.path.abspath(args.runs)
  pipeline.make_dataset(dataset, args.episodes)
  print(f'[bench] {os.cpu_count()} cores shared by every simulated host; '
        f'dataset {args.episodes} episodes of {pipeline.ENV_ID}', flush=True)
  with netns_cluster.NamespaceCluster(hosts=2) as cluster:
    print(f'[bench] Ray cluster of 2 hosts started in '
          f'{cluster.start_seconds:.1f} s', flush=True)
    local = insert_rate(cluster, dataset, 2, 2)
    remote = insert_rate(cluster, dataset, 2, 1)
    print(f'[bench] restorer inserts: {remote:,.0f} transitions/s to another '
          f'host, {local:,.0f} on its own: {remote / local:.2f}x', flush=True)
    rates = {}
    for name, placement in (
        ('one host', 'learner=host1,replay=host1,restorer=host1,'
         'evaluator=host2'),
        ('replay on another host', 'learner=host1,replay=host2,'
         'restorer=host2,evaluator=host2')):
      rates[name] = learner_rate(cluster, dataset, os.path.join(
          runs, name.replace(' ', '_')), args.steps, placement)
      print(f'[bench] learner, {name}: {rates[name]:.1f} steps/s',
            flush=True)
  ratio = rates['replay on another host'] / rates['one host']
  print('\n| measure | across hosts | one host | ratio |\n|---|---|---|---|')
  print(f'| Ray cluster start (2 hosts) | {cluster.start_seconds:.1f} s | | |')
  print(f'| restorer insert rate (transitions/s) | {remote:,.0f} | '
        f'{local:,.0f} | {remote / local:.2f}x |')
  print(f'| BM learner steps/s, batch 512 | '
        f'{rates["replay on another host"]:.1f} | {rates["one host"]:.1f} | '
        f'{ratio:.2f}x |')


if __name__ == '__main__':
  main()
