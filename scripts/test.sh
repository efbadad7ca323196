#!/usr/bin/env bash
# The test command: the whole pytest suite on the real footage in ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .venv/bin/activate ] && . .venv/bin/activate
exec python -m pytest -q "$@"
