#!/usr/bin/env bash
# The official FOCUS validator in its own virtual environment, outside the repository:
# focus-validator 2.2.1 needs Python 3.12 and pyarrow<26 (it pins numpy<2), which the
# project's Python 3.11 venv can't share. Idempotent: a stamp file skips the work.
set -euo pipefail
VENV="${FOCUS_VALIDATOR_VENV:-${PIPELINE_OPS_CACHE_DIR:-$HOME/.cache/pipeline-ops}/focus-validator-venv}"
STAMP="$VENV/.installed-focus-validator-2.2.1"
[ -f "$STAMP" ] && exit 0
PY=""
for candidate in python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12 \
    /usr/local/bin/python3.12 /usr/bin/python3.12; do
  # A pyenv shim may exist without 3.12 selected, so ask the interpreter itself.
  if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then
    PY="$candidate"
    break
  fi
done
if [ -z "$PY" ]; then
  echo "error: Python 3.12 not found; focus-validator 2.2.1 needs it" >&2
  exit 1
fi
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "focus-validator==2.2.1" "pyarrow==25.0.1" "numpy==1.26.4"
touch "$STAMP"
echo "focus-validator 2.2.1 installed in $VENV"
