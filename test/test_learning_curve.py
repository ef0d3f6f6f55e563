"""The learning curve: CPU/wall hours recorded by the trainer across resumes, CSV and plot of eval_log.csv."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from PIL import Image

from eps3d_ros.text.clip import create_random_text_encoder
from eps3d_ros.train import Trainer
from eps3d_ros.train.learning_curve import CURVE_METRICS, read_learning_curve, write_learning_curve
from eps3d_ros.train.run_usage import RunUsage
from helpers.train_configs import small_config


class _OneRank:
    world_size = 1

    @staticmethod
    def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
        return t


class _TwoRanks:
    """What all_reduce_sum gives when the other rank spent exactly as much."""

    world_size = 2

    @staticmethod
    def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
        return 2 * t


def _burn(seconds: float) -> None:
    import time

    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_usage_counts_cpu_of_every_rank_and_wall_once() -> None:
    u = RunUsage()
    u.start()
    _burn(0.2)
    u.sync(_OneRank())
    assert 0.19 <= u.cpu_s <= 1.0 and u.wall_s >= 0.19
    two = RunUsage()
    two.start()
    _burn(0.2)
    two.sync(_TwoRanks())
    # two ranks side by side: twice the CPU time, the wall time once
    assert two.cpu_s >= 0.39 and two.wall_s < two.cpu_s
    again = RunUsage()
    again.load(two.state())
    assert again.hours() == pytest.approx({"cpu_hours": two.cpu_s / 3600, "wall_hours": two.wall_s / 3600})
    fresh = RunUsage()
    fresh.load(None)  # a checkpoint from before usage was recorded
    assert fresh.hours() == {"cpu_hours": 0.0, "wall_hours": 0.0}


@pytest.fixture(scope="module")
def text_weights(tmp_path_factory) -> str:
    return str(create_random_text_encoder(tmp_path_factory.mktemp("text") / "text_encoder.safetensors", seed=0))


def test_eval_rows_carry_hours_that_go_on_after_a_resume(tmp_path, text_weights) -> None:
    run = {"checkpoint_every": 2, "eval_every": 2, "eval_scenes": 1, "eval_views": 3}
    cfg = small_config(tmp_path / "run", text_weights, optim={"steps": 4}, run=run)
    Trainer(cfg).fit(2)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["usage"]["cpu_s"] > 0 and state["usage"]["wall_s"] > 0
    Trainer(cfg, resume=True).fit()
    rows = list(csv.DictReader((tmp_path / "run" / "eval_log.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4]
    hours = [float(r["cpu_hours"]) for r in rows]
    assert 0 < hours[0] < hours[1]  # the resumed run counts on from the checkpoint's total
    assert float(rows[1]["wall_hours"]) > float(rows[0]["wall_hours"])


def test_curve_csv_and_plot_from_an_eval_log(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    cols = ["step", "cpu_hours", "wall_hours", "miou_3d", "camera_rotation_error_median_deg", "extra"]
    with (run / "eval_log.csv").open("w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(cols)
        wr.writerow([500, 0.25, 0.3, 0.30, 55.0, 1])
        wr.writerow([1000, 0.5, 0.6, 0.35, 50.0, 1])
        wr.writerow([1000, 0.5, 0.6, 0.36, 49.0, 1])  # the same step again (a resumed run): the last row wins
        wr.writerow([1500, "", "", 0.40, 45.0, 1])  # no hours (an older trainer)
    rows = read_learning_curve(run)
    assert [r["step"] for r in rows] == [500, 1000, 1500] and rows[1]["miou_3d"] == 0.36
    assert math.isnan(rows[2]["cpu_hours"]) and math.isnan(rows[0]["pq_3d"])
    csv_path, png = write_learning_curve(run, tmp_path / "model", title="test")
    out = list(csv.DictReader(csv_path.open()))
    assert list(out[0]) == ["step", "cpu_hours", "wall_hours", *(m.column for m in CURVE_METRICS)]
    assert out[1]["miou_3d"] == "0.36" and out[2]["cpu_hours"] == "" and out[0]["step"] == "500"
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] >= 1000 and im.size[1] >= 500


def test_curve_errors_name_the_problem(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no eval_log.csv"):
        read_learning_curve(tmp_path)
    (tmp_path / "eval_log.csv").write_text("step,miou_3d\n")
    with pytest.raises(ValueError, match="no evaluation rows"):
        read_learning_curve(tmp_path)


def test_eval_rows_follow_the_header_already_in_the_file(tmp_path) -> None:
    from eps3d_ros.train.run_log import RunLog

    log = RunLog(tmp_path)
    log.eval_row({"step": 1, "miou_3d": 0.1, "pq_3d": 0.2})
    log.eval_row({"step": 2, "pq_3d": 0.4, "miou_3d": 0.3})  # another order: written under the file's header
    log.eval_row({"step": 3, "cpu_hours": 0.5, "miou_3d": 0.5, "pq_3d": 0.6})  # a new column: the file is rewritten
    rows = list(csv.DictReader((tmp_path / "eval_log.csv").open()))
    assert [(r["step"], r["miou_3d"], r["pq_3d"], r["cpu_hours"]) for r in rows] == [
        ("1", "0.1", "0.2", ""), ("2", "0.3", "0.4", ""), ("3", "0.5", "0.6", "0.5")]


def test_learning_curve_command_writes_the_card_files_and_says_what_meets_the_aims(tmp_path, capsys) -> None:
    import json

    from eps3d_ros.cli import main

    run = tmp_path / "run"
    run.mkdir()
    with (run / "eval_log.csv").open("w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["step", "cpu_hours", "wall_hours", "miou_3d", "camera_rotation_error_median_deg"])
        wr.writerow([500, 0.25, 0.3, 0.40, 55.0])
        wr.writerow([1000, 0.5, 0.6, 0.55, 52.0])
        wr.writerow([1500, 0.75, 0.9, 0.52, 57.0])
    assert main(["learning-curve", str(run), "--out", str(tmp_path / "card"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (tmp_path / "card" / "learning_curve.csv").is_file() and (tmp_path / "card" / "learning_curve.png").is_file()
    by = {m["metric"]: m for m in out["metrics"]}
    miou, rot = by["miou_3d"], by["camera_rotation_error_median_deg"]
    assert (miou["first"], miou["last"], miou["best"], miou["best_step"], miou["meets_aim"]) == (0.40, 0.52, 0.55,
                                                                                               1000, True)
    assert (rot["best"], rot["best_step"], rot["best_cpu_hours"], rot["meets_aim"]) == (52.0, 1000, 0.5, False)
    assert by["pq_3d"]["points"] == 0 and "last" not in by["pq_3d"]
    assert main(["learning-curve", str(run)]) == 0
    table = capsys.readouterr().out
    assert "3 evaluations, steps 500..1500, 0.75 CPU-hours" in table and "semantic mIoU (3D)" in table
    assert main(["learning-curve", str(tmp_path / "card")]) == 2  # a folder without eval_log.csv
    assert "no eval_log.csv" in capsys.readouterr().err
