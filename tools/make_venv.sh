#!/usr/bin/env bash
# Creates the project's virtual environment from Python 3.10 and installs the
# project into it. The pinned stack (TF 2.8, Reverb 0.7, Launchpad 0.5) has no
# wheels for Python 3.11+, so 3.10 is required.
set -euo pipefail
venv="${1:-.venv}"

find_python310() {
  if [ -n "${ABMRL_PYTHON:-}" ]; then echo "$ABMRL_PYTHON"; return; fi
  # A pyenv shim answers `command -v` even when 3.10 is not selected, so
  # check that the candidate really runs.
  if python3.10 -c 'import sys' >/dev/null 2>&1; then command -v python3.10; return; fi
  if command -v pyenv >/dev/null 2>&1; then
    local p
    p=$(pyenv which python3.10 2>/dev/null) && { echo "$p"; return; }
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)'); do
      p="$(pyenv root)/versions/$v/bin/python3.10"
      [ -x "$p" ] && { echo "$p"; return; }
    done
  fi
  return 1
}

if ! py=$(find_python310); then
  echo "abmrl: Python 3.10 not found (needed by TF 2.8 / Reverb 0.7 / Launchpad 0.5). Install it (e.g. 'pyenv install 3.10.13') or set ABMRL_PYTHON=/path/to/python3.10." >&2
  exit 1
fi
echo "abmrl: creating $venv with $py"
rm -rf "$venv"
"$py" -m venv "$venv"
# pip's resolver backtracks for many minutes over this 2022-era stack, so the
# exact versions are locked in requirements.lock (made with `uv pip compile`)
# and installed with uv.
"$venv/bin/pip" install -q --disable-pip-version-check 'uv==0.13.9' 2>&1 | grep -v '^WARNING: Location' || true
"$venv/bin/uv" pip install -q --python "$venv/bin/python" -r requirements.lock
"$venv/bin/uv" pip install -q --python "$venv/bin/python" --no-deps -e .
echo "abmrl: $venv ready"
