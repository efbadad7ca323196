#!/usr/bin/env bash
# Create .venv and install facedouble with its pinned CPU dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3.11 -m venv .venv || python3 -m venv .venv
. .venv/bin/activate
pip install -q --disable-pip-version-check torch==2.13.0
pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
pip install -q --disable-pip-version-check --no-deps -e .
