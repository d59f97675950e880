#!/usr/bin/env bash
# Sets up everything the project needs on a fresh Debian-based machine:
# system packages (when running as root), a virtual environment in .venv,
# and the project with its test extras installed into it (editable).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # independent wire-format check and the TCP-mapping Lua dissector test
  tshark
  # SSH launcher tests start their own sshd; lab scenarios need ip/bridge
  openssh-server iproute2
  # the kernel-SCTP lab: a QEMU VM booting Debian's kernel (sctp module) from a
  # busybox initramfs (tests/vm, docs/sctp-lab.md)
  qemu-system-x86 linux-image-amd64 busybox-static
  # rsplib's own programs (3.4.4): peers for the interop tests inside the SCTP lab, the
  # control center's rsplib component kinds, and cspmonitor for status interop
  rsplib-registrar rsplib-services rsplib-tools
  # Qt runtime (offscreen and on a real display)
  libgl1 libegl1 libx11-6 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libfreetype6
  libglib2.0-0 libdbus-1-3 fonts-dejavu-core libx11-xcb1 libxcb-cursor0 libxcb-icccm4
  libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0 libxcb-shape0
  libxcb-xfixes0 libxcb-xkb1 libxcb-shm0 libxcb-sync1 libxcb-util1
)

missing_apt() {
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  mapfile -t need < <(missing_apt)
  if [ "${#need[@]}" -gt 0 ]; then
    echo "setup: installing system packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # tshark asks whether non-root users may capture; answer no without a prompt
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
else
  mapfile -t need < <(missing_apt 2>/dev/null || true)
  [ "${#need[@]}" -eq 0 ] || echo "setup: not root; tests needing these packages will be skipped: ${need[*]}"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating virtual environment .venv"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test,fast]"
# What this installation was made from; scripts/demo.sh skips the setup while it matches.
bash scripts/setup_stamp.sh > .venv/setup-stamp
echo "setup: ready (.venv)"
