"""Does "no object matches" mean what it says? The calibrated query relevance on held-out synthetic scenes.

    .venv/bin/python bench/bench_query_calibration.py [--scenes 20] [--seed-start 100000] [--kinds ideal model]
        [--model models/demo_tiny] [--out bench/results/query_calibration.json]

For each kind (``eps3d_ros.eval.query_calibration``): ``ideal`` — the ground truth through the real panoptic stage
with ideal features (deterministic); ``model`` — the model folder's network and text encoder, Gaussians at the
true surface points. Present class names must be answered with an object of that class where one is (0.25 m);
the 20 absent or nonsense phrases must be answered "no match". The threshold is the model folder's
``panoptic.min_relevance`` (the demo model's: 0.65, chosen on seeds 90 000+), else 0.5; the rates at other
thresholds are recorded too. The machine's load is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eps3d_ros.eval.query_calibration import evaluate_query_calibration  # noqa: E402
from eps3d_ros.model.bundle import ModelBundle  # noqa: E402

THRESHOLDS = (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=20)
    ap.add_argument("--seed-start", type=int, default=100_000)
    ap.add_argument("--kinds", nargs="+", default=["ideal", "model"], choices=["ideal", "model"])
    ap.add_argument("--model", default=str(ROOT / "models" / "demo_tiny"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "query_calibration.json"))
    args = ap.parse_args()
    threshold = float(ModelBundle.load(args.model).settings.get("panoptic.min_relevance", 0.5))
    results = {"load_before": os.getloadavg(), "threshold_of_the_model": threshold}
    for kind in args.kinds:
        t0 = time.perf_counter()
        r = evaluate_query_calibration(kind, args.model, seed_start=args.seed_start, num_scenes=args.scenes,
                                       min_relevance=threshold if kind == "model" else 0.5, thresholds=THRESHOLDS)
        r["seconds"] = round(time.perf_counter() - t0, 1)
        results[kind] = r
        print(json.dumps({k: v for k, v in r.items() if k not in ("outcomes", "by_threshold")}), flush=True)
    results["load_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
