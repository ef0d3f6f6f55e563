"""Soak and faults: eps3d_node in its own process, this script its client — bounded in time, JSON out.

    .venv/bin/python bench/soak_node.py [--duration 600] [--fps 5] [--query-hz 2] [--fault-every 20]
        [--out bench/results/soak_node.json]

The node runs the demo model (``model.weights`` only, plus ``pipeline.use_measured_depth``). The client:

* publishes a synthetic robot walk (colour, depth, camera_info, ``camera_pose``) at ``--fps``, stamped with the
  wall clock, looping the path;
* asks ``~/query_objects`` at ``--query-hz`` from a thread of its own (its own context and executor: round
  trips are not spin-quantised) and records every round trip;
* every ``--fault-every`` seconds runs the next fault of :data:`FAULTS` and records how the node answered it
  (the counter in ``/diagnostics`` that had to move, the service answer, the publisher counts);
* samples the node's RSS every 5 s.

The JSON: query p50 / p95 / max (overall and while a window runs), RSS over time (first vs last five minutes),
reconstructions, each fault with its outcome, publisher counts per topic after every lifecycle cycle,
tracebacks and errors in the node's log, its exit code after SIGINT. The machine's load is recorded.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "test")]

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState  # noqa: E402
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from eps3d_ros.data.synthetic import generate_sequence  # noqa: E402
from eps3d_ros.ros.messages import seconds_to_stamp  # noqa: E402
from eps3d_ros.srv import QueryObjects  # noqa: E402
from helpers.node_client import NodeClient, start_node, stop_node  # noqa: E402

NS = "/soak"
OUTPUTS = ("semantic_cloud", "instance_cloud", "objects", "markers")
FAULTS = ("bad_encoding", "size_change", "nan_depth", "out_of_order", "future_stamp", "stale_stamp",
          "no_camera_info", "lifecycle_cycle", "reset_during_inference", "vocabulary_change", "bad_queries")


class Queries(threading.Thread):
    """Queries at a fixed rate from a process of their own (bench/query_process.py: a grasp planner's side,
    not sharing this process's GIL with the frame sender); round trips in seconds, with the time of the
    answer and whether a window was queued when it came."""

    def __init__(self, hz: float, busy: threading.Event) -> None:
        super().__init__(daemon=True)
        self.hz, self.busy = hz, busy
        self.stop = threading.Event()
        self.calls: list[dict] = []

    def run(self) -> None:
        proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "query_process.py"),
                                 f"{NS}/eps3d_node/query_objects", str(self.hz)], stdout=subprocess.PIPE, text=True)
        reader = threading.Thread(target=self._read, args=(proc,), daemon=True)
        reader.start()
        self.stop.wait()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        reader.join(timeout=5)

    def _read(self, proc) -> None:
        for line in proc.stdout:
            try:
                call = json.loads(line)
            except ValueError:
                continue
            call["busy"] = self.busy.is_set()
            self.calls.append(call)


class Soak:
    def __init__(self, args) -> None:
        self.args = args
        self.client = NodeClient(NS, name="soak_client")
        n = self.client.node
        self.diag: dict = {}
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.change = n.create_client(ChangeState, f"{NS}/eps3d_node/change_state")
        self.params = n.create_client(SetParameters, f"{NS}/eps3d_node/set_parameters")
        seq = generate_sequence(args.seed, num_frames=40, height=112, width=112)
        self.frames = list(seq.frames("camera_optical"))
        self.k = 0
        self.last_stamp = 0.0
        self.busy = threading.Event()  # a window was queued less than a window's time ago

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            if st.name.startswith("eps3d_node"):
                self.diag = {kv.key: kv.value for kv in st.values}

    def value(self, key: str, default=0):
        raw = self.diag.get(key)
        if raw is None:
            return default
        try:
            return ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw

    def dropped(self, reason: str) -> int:
        return int((self.value("buffer_dropped", {}) or {}).get(reason, 0))

    def send(self, stamp: float | None = None, **kw) -> None:
        f = self.frames[self.k % len(self.frames)]
        self.k += 1
        stamp = time.time() if stamp is None else stamp
        self.client.send(f, stamp=stamp, **kw)
        self.last_stamp = max(self.last_stamp, stamp)

    def wait(self, predicate, timeout: float) -> bool:
        return self.client.wait_for(predicate, timeout)

    # ------------------------------------------------------------------------------------- faults
    def fault(self, name: str) -> dict:
        return getattr(self, f"_{name}")()

    def _raw(self, encoding: str, h: int, w: int, data: bytes, stamp: float) -> None:
        """A colour image of any encoding with its camera_info and a valid depth image (the camera has depth)."""
        from sensor_msgs.msg import CameraInfo

        f = self.frames[0]
        img = Image(height=h, width=w, encoding=encoding, step=len(data) // h, data=data)
        img.header.stamp, img.header.frame_id = seconds_to_stamp(stamp), f.frame_id
        info = CameraInfo(header=img.header, height=h, width=w)
        info.k = (np.asarray(f.K) * [[w / f.width], [h / f.height], [1]]).reshape(-1).tolist()
        d = np.full((h, w), 1.5, np.float32)
        depth = Image(header=img.header, height=h, width=w, encoding="32FC1", step=4 * w, data=d.tobytes())
        self.client.info.publish(info)
        self.client.depth.publish(depth)
        self.client.rgb.publish(img)

    def _bad_encoding(self) -> dict:
        before = self.value("bad_input")
        self._raw("yuv422", 112, 112, bytes(112 * 112 * 2), time.time())
        ok = self.wait(lambda: self.value("bad_input") > before, 10)
        return {"answered": ok, "how": "bad_input counted, error logged"}

    def _size_change(self) -> dict:
        before = self.value("buffer_accepted")
        f = self.frames[0]
        small = f.__class__(time.time(), np.ascontiguousarray(f.rgb[14:98]), f.K - [[0, 0, 0], [0, 0, 14], [0, 0, 0]],
                            f.frame_id, depth=np.ascontiguousarray(f.depth[14:98]), pose=f.pose)
        self.client.send(small)
        ok = self.wait(lambda: self.value("buffer_accepted") > before, 10)
        return {"answered": ok, "how": "84x112 frame accepted beside 112x112 ones"}

    def _nan_depth(self) -> dict:
        before = self.value("buffer_accepted")
        f = self.frames[1]
        nan = f.__class__(time.time(), f.rgb, f.K, f.frame_id, depth=np.full_like(f.depth, np.nan), pose=f.pose)
        self.client.send(nan)
        ok = self.wait(lambda: self.value("buffer_accepted") > before, 10)
        return {"answered": ok, "how": "frame with all-invalid depth accepted"}

    def _stamp_fault(self, reason: str, stamp: float) -> dict:
        before = self.dropped(reason)
        self.client.send(self.frames[2], stamp=stamp)
        ok = self.wait(lambda: self.dropped(reason) > before, 10)
        return {"answered": ok, "how": f"refused as {reason}"}

    def _out_of_order(self) -> dict:
        return self._stamp_fault("out_of_order", self.last_stamp - 0.1)

    def _future_stamp(self) -> dict:
        return self._stamp_fault("future", time.time() + 100.0)

    def _stale_stamp(self) -> dict:
        return self._stamp_fault("stale", self.last_stamp - 20.0)

    def _no_camera_info(self) -> dict:
        f = self.frames[3]
        before = self.value("input_rgb_received")
        for _ in range(3):
            img = Image(height=f.height, width=f.width, encoding="rgb8", step=3 * f.width, data=f.rgb.tobytes())
            img.header.stamp, img.header.frame_id = seconds_to_stamp(time.time()), f.frame_id
            self.client.rgb.publish(img)
            self.client.spin(0.2)
        ok = self.wait(lambda: self.value("input_rgb_received") > before, 10)
        return {"answered": ok, "how": "colour without camera_info: counted, never used"}

    def _transition(self, tid: int) -> bool:
        r = self.client.call(self.change, ChangeState.Request(transition=Transition(id=tid)), timeout=120)
        return bool(r.success)

    def _lifecycle_cycle(self) -> dict:
        steps = [Transition.TRANSITION_DEACTIVATE, Transition.TRANSITION_CLEANUP, Transition.TRANSITION_CONFIGURE,
                 Transition.TRANSITION_ACTIVATE]
        ok = all(self._transition(t) for t in steps)

        def counts() -> dict:
            out = {t: self.client.node.count_publishers(f"{NS}/eps3d_node/{t}") for t in OUTPUTS}
            names = [t for t, _ in self.client.node.get_publisher_names_and_types_by_node("eps3d_node", NS)]
            return {**out, "/diagnostics": names.count("/diagnostics")}

        # the graph reaches this process with a delay (longer under load): wait for one publisher per topic, up to
        # 10 s, and report what is seen then
        self.client.wait_for(lambda: all(v == 1 for v in counts().values()), 10)
        seen = counts()
        return {"answered": ok and all(v == 1 for v in seen.values()), "publishers": seen}

    def _reset_during_inference(self) -> dict:
        for _ in range(8):  # a window's worth of frames
            self.send()
            self.client.spin(0.05)
        r = self.client.call(self.client.reset, Trigger.Request(), timeout=30)
        return {"answered": bool(r.success), "how": r.message}

    def _vocabulary_change(self) -> dict:
        vocab = ["floor", "wall", "table", "chair", "thing"] if self.k % 2 else \
            ["floor", "wall", "table", "chair", "mug", "bowl", "box", "bottle", "ball", "book", "lamp", "can", "plant"]
        p = Parameter(name="panoptic.vocabulary",
                      value=ParameterValue(type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=vocab))
        r = self.client.call(self.params, SetParameters.Request(parameters=[p]), timeout=30)
        return {"answered": bool(r.results and r.results[0].successful), "how": f"vocabulary of {len(vocab)} classes"}

    def _bad_queries(self) -> dict:
        q = self.client.query
        empty = self.client.call(q, QueryObjects.Request(text="  "), timeout=30)
        control = self.client.call(q, QueryObjects.Request(text="mug\x1b[2J", max_results=0), timeout=30)
        ok = (not empty.success and "empty" in empty.message) and "\x1b" not in control.message
        return {"answered": ok, "how": f"{empty.message!r}; {control.message!r}"}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--query-hz", type=float, default=2.0)
    ap.add_argument("--fault-every", type=float, default=20.0, help="seconds between faults")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "soak_node.json"))
    ap.add_argument("--log", default="", help="node log file (default beside --out)")
    ap.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                    help="a further node parameter (repeatable), e.g. output.max_cloud_points:=1000")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = Path(args.log or out.with_suffix(".log"))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    load_before = os.getloadavg()
    params = {"model.weights": str(ROOT / "models" / "demo_tiny"), "pipeline.use_measured_depth": True}
    for item in args.param:
        key, _, value = item.partition(":=")
        params[key] = yaml.safe_load(value)
    node = start_node(log_path, params, NS)
    soak = Soak(args)
    queries = Queries(args.query_hz, soak.busy)
    result: dict = {"args": vars(args), "load_before": load_before, "faults": [], "rss_mb": []}
    t_start = time.time()
    try:
        if not soak.client.query.wait_for_service(timeout_sec=120):
            raise SystemExit(f"the node did not start: see {log_path}")
        if not soak.client.wait_until_heard():
            raise SystemExit(f"the node never subscribed to the soak's topics: see {log_path}")
        queries.start()
        t_start = time.time()
        next_frame = next_rss = t_start
        next_fault = t_start + args.fault_every
        fault_i = 0
        busy_until = 0.0
        while time.time() - t_start < args.duration:
            now = time.time()
            if now >= next_frame:
                soak.send()
                next_frame += 1.0 / args.fps
                if soak.k % 8 == 0:  # every_n_frames (default 8): a window is queued now
                    busy_until = now + 3.0
            soak.busy.set() if now < busy_until else soak.busy.clear()
            if now >= next_rss:
                result["rss_mb"].append({"t": round(now - t_start, 1), "mb": round(rss_mb(node.pid), 1)})
                next_rss += 5.0
            if now >= next_fault:
                name = FAULTS[fault_i % len(FAULTS)]
                fault_i += 1
                t0 = time.time()
                outcome = soak.fault(name)
                result["faults"].append({"fault": name, "t": round(t0 - t_start, 1),
                                         "seconds": round(time.time() - t0, 2), **outcome})
                next_fault = time.time() + args.fault_every
                next_frame = time.time()
            soak.client.spin(0.005)
        result["reconstructions"] = len(soak.client.objects)
        result["node_alive"] = node.poll() is None
        result["diagnostics"] = {k: soak.diag.get(k) for k in ("worker_runs", "worker_failures", "failures",
                                                               "map_objects", "bad_input", "buffer_dropped")}
    finally:
        queries.stop.set()
        queries.join(timeout=15)
        soak.client.close()
        result["exit_code"] = stop_node(node)
    times = [c["s"] for c in queries.calls if c["done"]]
    busy = [c["s"] for c in queries.calls if c["done"] and c["busy"]]
    result["queries"] = {"calls": len(queries.calls), "answered": len(times),
                         "p50_ms": 1e3 * statistics.median(times) if times else None,
                         "p95_ms": 1e3 * float(np.percentile(times, 95)) if times else None,
                         "max_ms": 1e3 * max(times) if times else None,
                         "while_a_window_runs": {"calls": len(busy),
                                                 "p95_ms": 1e3 * float(np.percentile(busy, 95)) if busy else None,
                                                 "max_ms": 1e3 * max(busy) if busy else None}}
    # The slow and the unanswered round trips, with the fault (if any) being applied when they were asked:
    # where to look first. (A request that reaches the node while a lifecycle cycle destroys its service is
    # never answered: a client retries after its timeout.)
    def fault_at(c: dict) -> str | None:
        t = c["t"] - c["s"] - t_start
        during = [f["fault"] for f in result["faults"] if f["t"] - 0.5 <= t <= f["t"] + f["seconds"] + 0.5]
        return during[0] if during else None

    result["queries"]["over_50_ms"] = [{"t": round(c["t"] - c["s"] - t_start, 1), "ms": round(1e3 * c["s"], 1),
                                        "fault": fault_at(c)} for c in queries.calls if c["done"] and c["s"] > 0.05]
    result["queries"]["unanswered"] = [{"t": round(c["t"] - c["s"] - t_start, 1), "fault": fault_at(c)}
                                       for c in queries.calls if not c["done"]]
    rss = result["rss_mb"]
    five = [r["mb"] for r in rss if r["t"] < 300]
    last5 = [r["mb"] for r in rss if r["t"] >= rss[-1]["t"] - 300] if rss else []
    result["rss_first_5min_mean_mb"] = float(np.mean(five)) if five else None
    result["rss_last_5min_mean_mb"] = float(np.mean(last5)) if last5 else None
    log = log_path.read_text()
    result["tracebacks"] = log.count("Traceback")
    result["errors_logged"] = sum("[ERROR]" in line for line in log.splitlines())
    result["faults_answered"] = sum(bool(f["answered"]) for f in result["faults"])
    result["load_after"] = os.getloadavg()
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({k: result[k] for k in ("reconstructions", "node_alive", "exit_code", "tracebacks", "queries",
                                             "rss_first_5min_mean_mb", "rss_last_5min_mean_mb", "faults_answered",
                                             "load_before", "load_after")}, indent=2, default=str))
    print(f"faults: {len(result['faults'])}, answered {result['faults_answered']}; full result in {out}")


if __name__ == "__main__":
    main()
