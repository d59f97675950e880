#!/usr/bin/env bash
# The README demo in one command: sets everything up (only when something
# changed since the last setup; its output goes to .venv/setup.log), then
#  - with a display: opens the control center on scenarios/local.toml, which
#    shows the pool user's picture in its own window (extra arguments go to
#    rsp-control-center, e.g. --start-all, --present or --viewers);
#  - without one: plays the failover storyboard in the window offscreen and writes
#    the map screenshots, a window screenshot and the JSON report to out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ] && [ -f .venv/setup-stamp ] \
  && [ "$(bash scripts/setup_stamp.sh)" = "$(cat .venv/setup-stamp)" ]; then
  : # up to date: nothing to install
else
  echo "demo: setting up (system packages, .venv; this takes a while the first time)"
  mkdir -p .venv
  if ! bash scripts/setup.sh > .venv/setup.log 2>&1; then
    echo "demo: the setup failed; the end of .venv/setup.log:" >&2
    tail -n 20 .venv/setup.log >&2
    exit 1
  fi
fi
source .venv/bin/activate

if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  echo "demo: opening the control center on scenarios/local.toml"
  echo "demo: Start all (A), then X kills a pool element that is working; F11 presents"
  exec rsp-control-center scenarios/local.toml "$@"
fi

OUT=${DEMO_OUT:-out/demo}
rm -rf "$OUT"
mkdir -p "$OUT"
echo "demo: no display; playing scenarios/failover-story.toml offscreen"
status=0
QT_QPA_PLATFORM=offscreen rsp-control-center --storyboard scenarios/failover-story.toml \
  --screenshot-dir "$OUT" --report "$OUT/report.json" --close-when-done \
  --run-dir "$OUT/run" --size 1440x880 || status=$?
echo
echo "demo: map screenshots (one per step, map-failover.png at the first failover):"
ls -1 "$OUT"/*.png 2>/dev/null | sed 's/^/  /'
echo "demo: report:   $OUT/report.json"
echo "demo: logs:     $OUT/run/"
if [ "$status" -eq 0 ]; then
  echo "demo: the storyboard PASSED (the image completed without losing a pixel)"
else
  echo "demo: the storyboard FAILED (status $status); see the report and the logs"
fi
exit "$status"
