"""The soak benchmark's short version: eps3d_node in its own process under frames at 5 Hz, queries at 2 Hz and
every fault of the schedule — it stays alive, answers every fault, leaks no publisher, logs no traceback and
ends cleanly. Behaviour only; the timings are the benchmark's (bench/soak_node.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import REPO


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_short_soak_with_every_fault(tmp_path) -> None:
    out = tmp_path / "soak.json"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "soak_node.py"), "--duration", "45",
                        "--fault-every", "2.5", "--out", str(out)], capture_output=True, text=True, timeout=540)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    names = {f["fault"] for f in res["faults"]}
    assert names >= {"bad_encoding", "size_change", "nan_depth", "out_of_order", "future_stamp", "stale_stamp",
                     "no_camera_info", "lifecycle_cycle", "reset_during_inference", "vocabulary_change",
                     "bad_queries"}, names
    unanswered = [f for f in res["faults"] if not f["answered"]]
    assert not unanswered, unanswered
    for f in res["faults"]:
        if f["fault"] == "lifecycle_cycle":
            assert set(f["publishers"].values()) == {1}, f  # one publisher per topic after every cycle
    assert res["node_alive"] and res["exit_code"] == 0 and res["tracebacks"] == 0
    # every query answered, except one asked while a lifecycle cycle removed the service (a client retries)
    assert res["reconstructions"] >= 1 and res["queries"]["calls"] > 0
    assert all(u["fault"] == "lifecycle_cycle" for u in res["queries"]["unanswered"]), res["queries"]["unanswered"]
    assert res["queries"]["answered"] + len(res["queries"]["unanswered"]) == res["queries"]["calls"]
