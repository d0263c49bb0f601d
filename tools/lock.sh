#!/usr/bin/env bash
# Regenerates requirements.lock from the pins in setup.py (plus test tools).
set -euo pipefail
cd "$(dirname "$0")/.."
req=$(mktemp)
python3 - > "$req" <<'PY'
import ast, re
src = open('setup.py').read()
tree = ast.parse(src)
for node in ast.walk(tree):
  if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') in ('INSTALL_REQUIRES', 'TEST_REQUIRES'):
    for elt in node.value.elts:
      print(elt.value)
PY
"$(command -v uv || echo .venv/bin/uv)" pip compile --python-version 3.10 --no-header "$req" -o requirements.lock
rm -f "$req"
