#!/usr/bin/env bash
# Runs one command inside the kernel-SCTP lab VM (QEMU, Debian's kernel with its sctp
# module, this machine's root read-only with the repository and its .venv), e.g.
#   bash scripts/sctp-lab.sh -- python -m pytest -m sctp
#   bash scripts/sctp-lab.sh                  (an interactive shell in the VM)
# Options go before "--": --out DIR, --timeout S, --cpus N, --memory MB, --env NAME=VALUE.
# See docs/sctp-lab.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
exec .venv/bin/python -m tests.vm.lab "$@"
