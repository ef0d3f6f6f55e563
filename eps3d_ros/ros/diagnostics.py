"""The node's ``/diagnostics`` status: latency per stage, buffer, worker, map, input health per camera (and the
input callbacks' time), the views of each camera in the last window (``last_window_views``, e.g. ``head:2
wrist:2``), GPU memory, scale."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header


def diagnostics_message(values: dict, snapshot, last_error: str, degraded: bool, stamp,
                        problems: list[str] | None = None) -> DiagnosticArray:
    """One ``DiagnosticStatus`` "eps3d_node: pipeline": WARN with the first input problem, an alignment that fell
    back (TF or depth disagreeing with the images), or after bad input / failures; "scale unknown" noted."""
    values = dict(values)
    if snapshot is not None:
        values.update({f"latency_{k}_s": round(v, 4) for k, v in snapshot.timings.items()})
        values["scene_frame"] = snapshot.frame_id
        values["scale"] = "known" if snapshot.scale_known else "scale unknown"
        a = snapshot.alignment
        values["alignment"] = a.method
        values["alignment_residual_m"] = None if a.residual_m != a.residual_m else round(a.residual_m, 4)
        values["alignment_warning"] = a.warning
    if problems:
        values["input_problems"] = " | ".join(problems)
    st = DiagnosticStatus(name="eps3d_node: pipeline", hardware_id="eps3d", level=DiagnosticStatus.OK)
    st.message = "ok" if snapshot is None or snapshot.scale_known else "scale unknown"
    warning = (problems[0] if problems else "") or (snapshot.alignment.warning if snapshot is not None else "")
    if warning:
        st.level, st.message = DiagnosticStatus.WARN, warning[:200]
    elif degraded:
        st.level, st.message = DiagnosticStatus.WARN, last_error[:200] or st.message
    st.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
    return DiagnosticArray(header=Header(stamp=stamp), status=[st])


def session_diagnostics(session, frame_input, poses, stamp, warn) -> DiagnosticArray:
    """The status of a running session; input problems are also passed to ``warn`` (each at most every 30 s)."""
    from ..pipeline.loading import gpu_memory

    c = session.config
    health = session.health
    seen = bool(poses is not None and poses.frames())  # no TF at all: frames without a pose are expected
    problems = health.problems(c.output.map_frame, c.pipeline.every_n_frames, seen)
    health.log_problems(problems, warn)
    stats = session.stats()
    values = {**stats, **health.stats(), "scale_known": session.scale_known,
              "sync_dropped": frame_input.dropped if frame_input is not None else 0, **gpu_memory()}
    times = sorted(frame_input.callback_times) if frame_input is not None else []
    if times:
        values["input_callback_ms_p50"] = round(1e3 * times[len(times) // 2], 3)
        values["input_callback_ms_p95"] = round(1e3 * times[min(len(times) - 1, int(0.95 * len(times)))], 3)
    degraded = bool(stats["failures"] or stats["bad_input"])
    return diagnostics_message(values, session.snapshot, stats["last_error"], degraded, stamp,
                               [m for _, m in problems])
