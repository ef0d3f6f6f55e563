"""Camera frames on their way in, without ROS: the :class:`Frame` value, raw image decoding, the one intake
that fits frames to the network (aspect kept, intrinsics exact) and chooses keyframes, and approximate time
synchronisation of the inputs.

    frame = prepare_frame(Frame(stamp, decode_color(...), K, frame_id, depth=decode_depth(...)), box)
"""

from .frame import Frame, synthetic_frames
from .images import UnsupportedEncoding, decode_color, decode_depth
from .intake import (fit_frame, network_size, prepare_frame, select_indices, select_keyframes, select_window,
                     window_frames)
from .time_sync import ApproximateTimeSynchronizer

__all__ = [
    "ApproximateTimeSynchronizer",
    "Frame",
    "UnsupportedEncoding",
    "decode_color",
    "decode_depth",
    "fit_frame",
    "network_size",
    "prepare_frame",
    "select_indices",
    "select_keyframes",
    "select_window",
    "synthetic_frames",
    "window_frames",
]
