"""Every server of a program listens on one address: loopback on one
machine, the host's cluster IP on a cluster.

Launchpad hands each server only a port: `ReverbNode` builds
`reverb.Server(tables, port)` and `CourierNode` a courier server on it, and
both listen on "[::]:PORT", every interface of the machine, unauthenticated
(anyone who reaches it could insert into replay or read the policy). Neither
Reverb 0.7 nor Courier takes an address, so this is done under them, not
through them: each node's process preloads a small shim (bindshim.c) that
turns a bind() to the unspecified address into one to ABMRL_BIND_IP.

The shim is compiled with the machine's C compiler on first use, into
~/.cache/abmrl (one file per shim source, written whole, then renamed).
Without a compiler, `preload_env` returns nothing, and the launcher says in
one line that servers listen on every interface.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, Optional

BIND_IP_ENV = 'ABMRL_BIND_IP'
_warned = False  # the line above, once per launcher
_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       'bindshim.c')


def _cache_dir() -> str:
  root = os.environ.get('XDG_CACHE_HOME') or os.path.join(
      os.path.expanduser('~'), '.cache')
  return os.path.join(root, 'abmrl')


def shim_path() -> Optional[str]:
  """The compiled shim (built now if missing), or None without a compiler."""
  with open(_SOURCE, 'rb') as f:
    source = f.read()
  path = os.path.join(_cache_dir(), 'bindshim-'
                      + hashlib.sha1(source).hexdigest()[:12] + '.so')
  if os.path.exists(path):
    return path
  compiler = shutil.which(os.environ.get('CC', 'cc')) or shutil.which('gcc')
  if compiler is None:
    return None
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as build:
    built = os.path.join(build, 'bindshim.so')
    done = subprocess.run(
        [compiler, '-shared', '-fPIC', '-O2', '-o', built, _SOURCE, '-ldl'],
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
      return None
    os.replace(built, path)  # whole or not at all, also across hosts
  return path


def preload_env(ip: str) -> Dict[str, str]:
  """A node's environment that binds its servers to `ip` ({} without the
  shim)."""
  global _warned
  path = shim_path()
  if path is None:
    if not _warned:
      _warned = True
      print('[abmrl] warning: no C compiler (cc) to build launch/bindshim.c: '
            'servers listen on every interface', file=sys.stderr, flush=True)
    return {}
  inherited = os.environ.get('LD_PRELOAD')
  return {BIND_IP_ENV: ip,
          'LD_PRELOAD': path + (' ' + inherited if inherited else '')}
