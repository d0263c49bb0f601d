#!/usr/bin/env bash
# Regenerates requirements.lock from the pins in setup.py (plus test and
# cluster tools). The lock's current versions are kept (passed as
# constraints), so adding a requirement moves no existing pin; delete
# requirements.lock first to resolve everything afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
req=$(mktemp)
python3 - > "$req" <<'PY'
import ast, re
src = open('setup.py').read()
tree = ast.parse(src)
for node in ast.walk(tree):
  if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') in ('INSTALL_REQUIRES', 'TEST_REQUIRES', 'CLUSTER_REQUIRES'):
    for elt in node.value.elts:
      print(elt.value)
PY
constraints=$(mktemp)
[ -f requirements.lock ] && cp requirements.lock "$constraints"
"$(command -v uv || echo .venv/bin/uv)" pip compile --python-version 3.10 --no-header "$req" -c "$constraints" -o requirements.lock
# The constraints file is temporary: keep it out of the lock's comments.
sed -i -e "\|^ *#   -c $constraints\$|d" -e "s| *-c $constraints||" requirements.lock
rm -f "$req" "$constraints"
