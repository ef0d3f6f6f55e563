#!/usr/bin/env bash
# The one test command: `bash scripts/test.sh [pytest args...]` (after `bash scripts/setup.sh`).
# Examples: bash scripts/test.sh -m "not slow"     bash scripts/test.sh test/test_packaging.py -x
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${EPS3D_VENV:-$ROOT/.venv}"
[[ -x "$VENV/bin/python" ]] || { echo "[test] no venv at $VENV: run 'bash scripts/setup.sh' first" >&2; exit 1; }

# ROS 2 traffic stays on this host and in a domain of its own, so parallel runs (and a robot
# on the default domain 0) do not cross-talk. Domain IDs 1..100 are valid on Linux.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=$(( $$ % 100 + 1 ))
export PYTHONHASHSEED=0
# OMP_NUM_THREADS is deliberately left as the caller set it.

# pytest plugins are not auto-loaded: a sourced ROS 2 exposes its own (launch_testing,
# ament_*), which we do not want in this suite. Plugins we use are named here.
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
exec "$VENV/bin/python" -m pytest -p pytest_timeout "$@"
