#!/usr/bin/env bash
# Prints a fingerprint of what scripts/setup.sh installs from: the project's
# packaging files, the optional C helper and the setup script itself. The
# setup stores it in .venv/setup-stamp; an equal fingerprint means the
# environment is up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
cat pyproject.toml setup.py scripts/setup.sh rsplib/wire/_slots.c 2>/dev/null | sha256sum | cut -d' ' -f1
