"""The running pipeline, without ROS: a :class:`Session` takes frames and keeps one object map.

    session = Session.from_model_dir("models/demo_tiny")     # or Session(config, load_reconstructor(config))
    session.offer(frame)                                      # a Frame (eps3d_ros.frames): buffered, windows queued
    session.map.objects, session.query("red mug")

What a session is made of: the frame buffer (:mod:`.frame_buffer`), one inference thread (:mod:`.worker`), the
reconstruction of a window (:mod:`.reconstruct`: network, metric alignment, panoptic stage), the model folder's
loading (:mod:`.loading`), the input health (:mod:`.input_health`) and queries on the map (:mod:`.map_query`).
The node (``eps3d_ros.ros``) and ``eps3d run`` drive the same session.
"""

from .frame_buffer import DROP_REASONS, AddResult, EmptyBufferError, FrameBuffer
from .input_health import InputHealth
from .loading import load_reconstructor, resolve_config
from .map_query import QueryAnswer, answer_query
from .reconstruct import Reconstructor, SceneSnapshot, measured_world_points
from .session import ConfigChange, Session, SessionUpdate
from .worker import InferenceWorker

__all__ = [
    "DROP_REASONS",
    "AddResult",
    "ConfigChange",
    "EmptyBufferError",
    "FrameBuffer",
    "InferenceWorker",
    "InputHealth",
    "QueryAnswer",
    "Reconstructor",
    "SceneSnapshot",
    "Session",
    "SessionUpdate",
    "answer_query",
    "load_reconstructor",
    "measured_world_points",
    "resolve_config",
]
