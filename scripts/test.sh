#!/usr/bin/env bash
# Run the whole test suite: creates .venv, installs the package with its dev extras, runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/test_messages.py -x).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
exec .venv/bin/python -m pytest "$@"
