#!/usr/bin/env bash
# The main job on embedded defaults: the webhook on a fresh local SQLite file, fed by a few
# simulated relays in real time (lora-emotion demo); it prints the dashboard URL first.
# Creates .venv and installs the package on first use. Extra arguments go to the command.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[webhook,simulate,serial]'
exec .venv/bin/lora-emotion demo "$@"
