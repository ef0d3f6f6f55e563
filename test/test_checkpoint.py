"""Loading checkpoints: our format, the EPS3D release layout, VGGT checkpoints, errors, and the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from eps3d_ros.cli import main as cli_main
from eps3d_ros.model import EPS3D, CheckpointError, EPS3DConfig, inspect_checkpoint

X = torch.rand(1, 2, 3, 28, 42, generator=torch.Generator().manual_seed(1))


def predict(model: EPS3D):
    with torch.no_grad():
        return model(X)


@pytest.fixture()
def release_dir(tmp_path: Path, fixture_dir: Path) -> Path:
    """The release layout: model.safetensors (+ training-only distill copies) and config.json."""
    sd = load_file(fixture_dir / "weights_conv.safetensors")
    sd["encoder.distill_aggregator.camera_token"] = torch.zeros(1, 2, 1, 32)
    sd["encoder.distill_head.weight"] = torch.zeros(3)
    d = tmp_path / "release"
    d.mkdir()
    save_file(sd, str(d / "model.safetensors"))
    shutil.copy(fixture_dir / "config_conv.json", d / "config.json")
    return d


def test_release_layout_loads_strictly_and_reports_distill_keys(release_dir: Path, fixture_dir: Path) -> None:
    model = EPS3D.from_pretrained(release_dir, strict=True)
    r = model.load_report
    assert r.ok and r.format == "eps3d" and r.config_source.endswith("config.json")
    assert r.ignored == ["encoder.distill_aggregator.camera_token", "encoder.distill_head.weight"]
    assert r.num_loaded == 526 and r.num_parameters == model.num_parameters
    expected = load_file(fixture_dir / "case_conv_3v.safetensors")
    with torch.no_grad():
        means = model(expected["input.images"]).gaussians.means
    torch.testing.assert_close(means, expected["gaussians.means"], rtol=1e-4, atol=5e-5 * float(expected["gaussians.means"].abs().max()))


def test_our_format_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = EPS3D(EPS3DConfig.from_preset("tiny")).eval()
    model.save_pretrained(tmp_path / "ours")
    # The single file carries its config: it loads without config.json beside it.
    single = tmp_path / "single.safetensors"
    shutil.copy(tmp_path / "ours" / "model.safetensors", single)
    for src in (tmp_path / "ours", single):
        loaded = EPS3D.from_pretrained(src)
        assert loaded.load_report.ok and loaded.config == model.config
        torch.testing.assert_close(predict(loaded).gaussians.means, predict(model).gaussians.means, rtol=0, atol=0)
    assert EPS3D.from_pretrained(single).load_report.config_source == "safetensors metadata"
    assert json.loads((tmp_path / "ours" / "config.json").read_text())["format"] == "eps3d_ros"


def test_pt_checkpoint_with_wrapper(tmp_path: Path) -> None:
    torch.manual_seed(4)
    model = EPS3D(EPS3DConfig.from_preset("tiny"))
    torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "ckpt.pt")
    loaded = EPS3D.from_pretrained(tmp_path / "ckpt.pt", config=EPS3DConfig.from_preset("tiny"))
    torch.testing.assert_close(loaded.encoder.aggregator.camera_token, model.encoder.aggregator.camera_token)


def test_missing_unexpected_and_mismatched_keys_are_named(tmp_path: Path, fixture_dir: Path) -> None:
    sd = load_file(fixture_dir / "weights_conv.safetensors")
    del sd["encoder.sem2ins_fusion.w_1"]
    sd["encoder.extra.weight"] = torch.zeros(2)
    sd["decoder.feature_expansion.1.bias"] = torch.zeros(256)
    f = tmp_path / "broken.safetensors"
    save_file(sd, str(f))
    cfg = fixture_dir / "config_conv.json"
    with pytest.raises(CheckpointError) as err:
        EPS3D.from_pretrained(f, config=cfg)
    msg = str(err.value)
    assert str(f) in msg and "encoder.sem2ins_fusion.w_1" in msg and "encoder.extra.weight" in msg
    assert "decoder.feature_expansion.1.bias expected [512] got [256]" in msg
    model = EPS3D.from_pretrained(f, config=cfg, strict=False)  # non-strict: loads the rest, reports
    r = model.load_report
    assert r.missing == ["encoder.sem2ins_fusion.w_1"] and r.unexpected == ["encoder.extra.weight"]
    assert r.num_loaded == 524


def test_missing_files_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="weights file not found: .*nothing.safetensors"):
        EPS3D.from_pretrained(tmp_path / "nothing.safetensors")
    with pytest.raises(FileNotFoundError, match="no weights file in .*expected one of model.safetensors"):
        EPS3D.from_pretrained(tmp_path)
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="bad.safetensors: not a readable safetensors file"):
        EPS3D.from_pretrained(tmp_path / "bad.safetensors")
    save_file({"foo.weight": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="neither an EPS3D checkpoint"):
        EPS3D.from_pretrained(tmp_path / "foreign.safetensors")


class _RunsCode:
    """Unpickling this calls ``os.system``: what a malicious checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_whose_pickle_would_run_code_is_refused(tmp_path: Path) -> None:
    """weights_only: building anything but tensors and plain containers is refused, with the reason, before any
    code of the file runs (the marker file is never created)."""
    marker = tmp_path / "ran"
    sd = EPS3D(EPS3DConfig.from_preset("tiny")).state_dict()
    torch.save({"model": sd, "payload": _RunsCode(marker)}, tmp_path / "model.pt")
    for source in (tmp_path / "model.pt", tmp_path):
        with pytest.raises(CheckpointError, match=r"model.pt: refused: this checkpoint's pickle would create or call "
                                                  r"something other than tensors .*'posix.system'.*weights_only=True"):
            EPS3D.from_pretrained(source)
    code, _, err = _cli(["inspect-checkpoint", str(tmp_path / "model.pt")])
    assert code == 2 and "refused" in err
    assert not marker.exists()
    # the same state dict without the payload loads
    torch.save({"model": sd, "step": 3}, tmp_path / "model.pt")
    assert EPS3D.from_pretrained(tmp_path / "model.pt").load_report.missing == []


def _cli(argv: list[str]) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(argv)
    return code, out.getvalue(), err.getvalue()


def vggt_state_dict(model: EPS3D) -> dict[str, torch.Tensor]:
    """What a VGGT checkpoint holds: aggregator, camera and depth heads (+ heads we do not use)."""
    sd = {k.removeprefix("encoder."): v for k, v in model.state_dict().items()
          if k.startswith(("encoder.aggregator.", "encoder.camera_head.", "encoder.depth_head."))}
    sd["point_head.norm.weight"] = torch.ones(64)
    sd["track_head.feature_extractor.weight"] = torch.ones(3)
    return sd


def test_vggt_checkpoint_loads_geometry_and_reports_absent_heads(tmp_path: Path) -> None:
    torch.manual_seed(5)
    source = EPS3D(EPS3DConfig.from_preset("tiny")).eval()
    torch.save(vggt_state_dict(source), tmp_path / "model.pt")
    torch.manual_seed(6)
    model = EPS3D.from_pretrained(tmp_path, config=EPS3DConfig.from_preset("tiny"), strict=True)
    r = model.load_report
    assert r.format == "vggt" and r.ok
    assert set(r.ignored) == {"point_head.norm.weight", "track_head.feature_extractor.weight"}
    assert r.absent_modules == [
        "decoder", "encoder.gaussian_feature_param_head", "encoder.gaussian_instance_param_head",
        "encoder.gaussian_param_head", "encoder.sem2ins_fusion",
    ]
    a, b = predict(model), predict(source)
    torch.testing.assert_close(a.depth, b.depth)
    torch.testing.assert_close(a.extrinsics, b.extrinsics)
    # A VGGT checkpoint missing part of the geometry is still an error.
    sd = vggt_state_dict(source)
    del sd["depth_head.norm.weight"]
    torch.save(sd, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="encoder.depth_head.norm.weight"):
        EPS3D.from_pretrained(tmp_path, config=EPS3DConfig.from_preset("tiny"))


def test_vggt_safetensors_with_inferred_config(tmp_path: Path) -> None:
    """Without any config the sizes come from the tensors, and what cannot be known is listed."""
    torch.manual_seed(7)
    source = EPS3D(EPS3DConfig.from_preset("tiny"))
    save_file(vggt_state_dict(source), str(tmp_path / "vggt.safetensors"))
    report, cfg = inspect_checkpoint(tmp_path / "vggt.safetensors")
    assert report.ok and report.config_source == "tensor shapes"
    assert cfg.aggregator.embed_dim == 32 and cfg.aggregator.depth == 6 and cfg.aggregator.num_heads == 2
    assert cfg.dpt.features == 16 and cfg.dpt.out_channels == [8, 16, 32, 32]
    assert any("camera_head.num_heads" in a for a in report.assumptions)


def test_fixture_weights_inferred_config_matches_shapes(fixture_dir: Path) -> None:
    report, cfg = inspect_checkpoint(fixture_dir / "weights_conv.safetensors")
    assert report.ok and cfg.dpt.gs_merger_channels == 8 and cfg.dpt.gs_hidden == 12
    assert cfg.gaussians.sh_degree == 4 and cfg.gaussians.semantic_expanded_dim == 512


def test_cli_inspect_checkpoint(tmp_path: Path, fixture_dir: Path, capsys) -> None:
    w, c = fixture_dir / "weights_conv.safetensors", fixture_dir / "config_conv.json"
    assert cli_main(["inspect-checkpoint", str(w), "--config", str(c)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["parameters"] == 580061 and out["strict_load_ok"] and out["missing"] == []
    sd = load_file(w)
    del sd["encoder.camera_head.token_norm.weight"]
    save_file(sd, str(tmp_path / "m.safetensors"))
    assert cli_main(["inspect-checkpoint", str(tmp_path / "m.safetensors"), "--config", str(c)]) == 1
    assert json.loads(capsys.readouterr().out)["missing"] == ["encoder.camera_head.token_norm.weight"]
    assert cli_main(["inspect-checkpoint", str(tmp_path / "none.safetensors")]) == 2
    assert "weights file not found" in capsys.readouterr().err


def test_cli_runs_as_a_program(fixture_dir: Path) -> None:
    exe = shutil.which("eps3d", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "eps3d_ros.cli"]
    proc = subprocess.run(
        [*cmd, "inspect-checkpoint", str(fixture_dir / "weights_dinov2_patch_embed.safetensors"),
         "--config", str(fixture_dir / "config_dinov2.json")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1  # only the patch-embedding tensors: everything else is missing
    report = json.loads(proc.stdout)
    assert len(report["missing"]) == 560 - 36 and report["unexpected"] == []
