"""``python -m eps3d_ros.train --config X``: the training command (what ``torchrun ... -m eps3d_ros.train`` starts)."""

import sys

from .launch import main

if __name__ == "__main__":
    sys.exit(main())
