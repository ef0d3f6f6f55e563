#!/usr/bin/env bash
# The one set-up command: `bash scripts/setup.sh` (idempotent; re-run it any time).
#
# Creates/updates a virtual environment (default .venv) holding eps3d_ros in editable mode
# with its test extras, a PyTorch that is never replaced, and ROS 2 (rclpy + messages).
#
#   torch: if ${PYTHON} can already `import torch` (e.g. a robot's CUDA build), the venv is
#          made with --system-site-packages and uses that torch; otherwise torch is installed
#          into the venv from ${EPS3D_TORCH_SPEC:-torch==2.13.0} (the local CPU wheel here).
#          Every later pip call runs under a constraints file pinning that torch.
#   ROS 2: if a ROS 2 distribution is sourced (ROS_DISTRO set and ${PYTHON} can import rclpy),
#          it is used: source ROS BEFORE running this script and before using the venv.
#          Otherwise the ROS 2 Kilted wheels from PyPI are installed into the venv
#          (extras "ros-wheels" and, to build our interfaces, "ros-build" in setup.py; "colcon" for the
#          suite's colcon build of this package).
#   Interfaces: msg/ and srv/ are built with rosidl (the sourced ROS's, or the wheels') and
#          installed into the venv by scripts/build_interfaces.py; skipped when unchanged.
#
# Environment: PYTHON (interpreter, default python3; must be 3.10-3.12),
#              EPS3D_VENV (venv path, default <repo>/.venv),
#              EPS3D_TORCH_SPEC (pip spec for torch when the interpreter has none;
#                                when set explicitly it is (re)installed into a plain venv).
set -euo pipefail

start_s=$SECONDS
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="${EPS3D_VENV:-$ROOT/.venv}"
DEFAULT_TORCH_SPEC="torch==2.13.0"
TORCH_SPEC="${EPS3D_TORCH_SPEC:-$DEFAULT_TORCH_SPEC}"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# ---- interpreter -------------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "interpreter '$PYTHON' not found (set PYTHON=/path/to/python3.X)"
py_ver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  || die "interpreter '$PYTHON' does not run (set PYTHON=/path/to/python3.X)"
"$PYTHON" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)' \
  || die "Python $py_ver ($PYTHON) is not supported: need 3.10-3.12 (set PYTHON=python3.X)"
# Run from inside a venv (e.g. an activated .venv), use the interpreter that venv was made from.
base_py="$("$PYTHON" -c 'import sys; print(sys._base_executable if sys.prefix != sys.base_prefix else "")')"
if [[ -n "$base_py" ]]; then
  log "$PYTHON belongs to a venv: using its base interpreter $base_py"
  PYTHON="$base_py"
fi
log "interpreter: $PYTHON (Python $py_ver)"

# ---- what the system already provides ----------------------------------------------------
if "$PYTHON" -c 'import torch' >/dev/null 2>&1; then torch_src=system; else torch_src=venv; fi

ros_src=wheels
if [[ -n "${ROS_DISTRO:-}" ]]; then
  if "$PYTHON" -c 'import rclpy' >/dev/null 2>&1; then
    ros_src=system
  else
    log "WARNING: ROS_DISTRO=$ROS_DISTRO is set but '$PYTHON -c \"import rclpy\"' fails" \
        "(ROS built for another Python?); falling back to the ROS 2 Kilted wheels from PyPI."
  fi
fi

# A system torch must be visible in the venv; a system ROS needs the system's numpy & co.
# (its compiled message modules were built against them).
system_site=false
if [[ $torch_src == system || $ros_src == system ]]; then system_site=true; fi
mode="python=$py_ver system_site=$system_site torch=$torch_src ros=$ros_src"
MARKER="$VENV/.eps3d-setup"

# ---- venv --------------------------------------------------------------------------------
VPY="$VENV/bin/python"
recreate=""
if [[ -e "$VENV" ]]; then
  if ! "$VPY" -c 'import sys' >/dev/null 2>&1; then
    recreate="its interpreter does not run"
  elif [[ "$("$VPY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$py_ver" ]]; then
    recreate="it was made with another Python version"
  elif [[ -f "$MARKER" && "$(cat "$MARKER")" != "$mode" ]]; then
    recreate="it was set up for '$(cat "$MARKER")'"
  elif ! grep -qi "^include-system-site-packages *= *$system_site" "$VENV/pyvenv.cfg" 2>/dev/null; then
    recreate="its include-system-site-packages is not $system_site"
  fi
fi
if [[ -n "$recreate" ]]; then
  log "recreating $VENV: $recreate (now: $mode)"
  rm -rf -- "$VENV"
fi
if [[ ! -e "$VENV" ]]; then
  venv_args=()
  if [[ $system_site == true ]]; then venv_args+=(--system-site-packages); fi
  log "creating venv $VENV ${venv_args[*]:-}"
  "$PYTHON" -m venv "${venv_args[@]}" "$VENV" \
    || die "could not create a venv with $PYTHON (on Ubuntu: sudo apt install python3-venv)"
else
  log "reusing venv $VENV"
fi
# pip quietly; drop only the "Location 'file://...' is ignored" lines that a pip.conf naming
# absent local indexes prints per package (everything else, errors included, still shows).
pip_install() {
  local rc=0
  "$VPY" -m pip install -q "$@" 2>&1 \
    | grep -v "^WARNING: Location 'file:.*' is ignored: it is neither a file nor a directory\.$" \
    || rc=${PIPESTATUS[0]}
  return "$rc"
}

# ---- torch -------------------------------------------------------------------------------
has_torch() { "$VPY" -c 'import importlib.metadata as m; m.version("torch")' >/dev/null 2>&1; }
if [[ $torch_src == system ]]; then
  log "torch: using the interpreter's own torch (not installing or upgrading it)"
  if [[ -n "${EPS3D_TORCH_SPEC:-}" ]]; then
    log "WARNING: EPS3D_TORCH_SPEC ignored: $PYTHON already has torch"
  fi
elif [[ -n "${EPS3D_TORCH_SPEC:-}" ]] || ! has_torch; then
  log "torch: pip install $TORCH_SPEC"
  pip_install "$TORCH_SPEC"
else
  log "torch: already in the venv (not touching it)"
fi
has_torch || die "torch is not importable in $VENV"

# ---- constraints: pin what must never change ---------------------------------------------
CONSTRAINTS="$VENV/constraints.txt"
"$VPY" - "$CONSTRAINTS" "$ros_src" <<'EOF'
import importlib.metadata as md
import sys

path, ros_src = sys.argv[1], sys.argv[2]
pins = ["torch", "torchvision", "torchaudio"]  # whichever are installed
if ros_src == "system":
    pins.append("numpy")  # the one the system ROS message modules were compiled against
lines = ["# Generated by scripts/setup.sh - do not edit. Used as `pip install -c` for every install."]
for name in pins:
    try:
        lines.append(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        if name == "torchvision":
            # Not installed yet: allow only the release paired with this torch (2.Y -> 0.(Y+15)),
            # otherwise pip would reach for a newer torchvision that requires another torch.
            major, minor = (int(x) for x in md.version("torch").split(".")[:2])
            if major == 2:
                lines.append(f"torchvision==0.{minor + 15}.*")
with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
EOF
log "constraints ($CONSTRAINTS): $(grep -v '^#' "$CONSTRAINTS" | tr '\n' ' ')"

# ---- the package, its test tools and (when no system ROS) the ROS 2 wheels ---------------
cuda="$("$VPY" -W ignore -c 'import torch; print(torch.cuda.is_available())')"
extras="test"
if [[ $cuda == True ]]; then extras+=",gpu"; fi
if [[ $ros_src == wheels ]]; then extras+=",ros-wheels,ros-build,colcon"; fi
log "pip install -e .[$extras]"
pip_install -c "$CONSTRAINTS" -e ".[$extras]"

# ---- our ROS interfaces (msg/, srv/): build + install into the venv, skipped when unchanged ----
if_start_s=$SECONDS
"$VPY" scripts/build_interfaces.py \
  || die "building the ROS interfaces failed (see above; a C/C++ compiler and the Python headers are needed)"
log "interfaces: $(( SECONDS - if_start_s )) s"
echo "$mode" > "$MARKER"

# ---- smoke check (outside the repo, so the installed package is what gets imported) ------
log "smoke check: import eps3d_ros, rclpy node, our QueryObjects service called once"
(
  cd /
  ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=$(( $$ % 100 + 1 )) "$VPY" - <<'EOF'
import eps3d_ros  # noqa: F401  (the sources, light)
import rclpy
from rclpy.executors import SingleThreadedExecutor

from eps3d_ros.srv import QueryObjects  # the generated interfaces

ctx = rclpy.Context()
rclpy.init(context=ctx)
try:
    node = rclpy.create_node("eps3d_setup_smoke", context=ctx)
    node.create_service(QueryObjects, "eps3d_setup_smoke", lambda req, res: setattr(res, "success", True) or res)
    client = node.create_client(QueryObjects, "eps3d_setup_smoke")
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    assert client.wait_for_service(timeout_sec=10.0), "service not discovered"
    future = client.call_async(QueryObjects.Request(text="smoke"))
    executor.spin_until_future_complete(future, timeout_sec=10.0)
    assert future.done() and future.result().success, "no answer from the QueryObjects service"
    executor.shutdown()
    node.destroy_node()
finally:
    rclpy.shutdown(context=ctx)
EOF
) || die "smoke check failed (see the traceback above)"

torch_desc="$("$VPY" -c 'import torch
cuda = torch.cuda.is_available()
print(torch.__version__, "CUDA " + str(torch.version.cuda) + " (" + torch.cuda.get_device_name(0) + ")" if cuda else "CPU")')"
if [[ $ros_src == system ]]; then
  ros_desc="system ROS 2 $ROS_DISTRO (keep it sourced when using the venv)"
else
  ros_desc="ROS 2 Kilted wheels from PyPI (ros-rclpy $("$VPY" -c 'import importlib.metadata as m; print(m.version("ros-rclpy"))'))"
fi
log "done in $(( SECONDS - start_s )) s"
log "  venv : $VENV"
log "  torch: $torch_desc (from: $torch_src)"
log "  ROS 2: $ros_desc"
log "  test : bash scripts/test.sh"
