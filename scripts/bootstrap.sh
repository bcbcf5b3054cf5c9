# Sourced by ./run and ./run-tests: makes .venv with the pinned packages, from PyPI, when it is
# missing or pyproject.toml changed since it was made. Needs only python3 (>= 3.11).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.twister-installed"
PYTHON="${PYTHON:-python3}"

want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "twister needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
  echo "Installing twister and its pinned dependencies into $VENV ..." >&2
  "$PYTHON" -m venv "$VENV" \
    || { echo "python3 -m venv failed: install your distribution's venv package (e.g. python3-venv)" >&2; exit 1; }
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[embedded,dev]"
  echo "$want" > "$STAMP"
fi
