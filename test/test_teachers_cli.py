"""Teachers for unlabelled recordings: the dense CLIP read-out (checked against open_clip's own blocks), SAM masks
(random-weight ViT-B SAM), and ``eps3d teachers`` (resumable, teacher.npz read lazily)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers.dataset_trees import two_view_frames, write_transforms
from eps3d_ros.teacher_models import DenseClip, DenseClipConfig, paint_masks
from eps3d_ros.train.make_teachers import make_teachers, scene_source
from eps3d_ros.train.teacher_store import TeacherFile, npz_member, write_npz_streamed


@pytest.fixture(scope="module")
def vit_b32():
    return DenseClip(DenseClipConfig(model="ViT-B-32", pretrained="", size=224))


def test_dense_readout_is_self_attention_through_open_clips_own_last_block(vit_b32) -> None:
    """MaskCLIP's read-out equals running open_clip's last block with each token attending only to itself."""
    rgb = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    x = vit_b32.preprocess(rgb)
    v = vit_b32.visual
    with torch.no_grad():
        h = vit_b32._embed(x)
        for blk in v.transformer.resblocks[:-1]:
            h = blk(h)
        n = h.shape[1]
        diag = torch.full((n, n), float("-inf"))
        diag.fill_diagonal_(0.0)
        h = v.transformer.resblocks[-1](h, attn_mask=diag)
        ref = v.ln_post(h[:, 1:]) @ v.proj
        torch.testing.assert_close(vit_b32.tokens(x), ref, atol=1e-5, rtol=1e-5)
    feats = vit_b32(rgb)
    assert feats.shape == (5, 7, 512)  # 320 → 224 wide: 7 patches of 32; 240 → 168: 5
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(5, 7))


def test_dense_embedding_at_the_native_grid_is_open_clips(vit_b32) -> None:
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(vit_b32._embed(x), vit_b32.visual._embeds(x))
    assert vit_b32.grid(480, 640) == (5, 7) and vit_b32(np.zeros((50, 60, 3), np.uint8), grid=(3, 4)).shape == (3, 4, 512)


def test_paint_masks_smallest_on_top() -> None:
    big = np.zeros((4, 4), bool)
    big[:, :] = True
    small = np.zeros((4, 4), bool)
    small[1:3, 1:3] = True
    out = paint_masks([small, big], (4, 4))
    assert out[0, 0] == 1 and out[1, 1] == 2 and out.dtype == np.int32


@pytest.mark.slow
def test_sam_masks_random_vit_b() -> None:
    """The real SAM ViT-B architecture with random weights through the automatic mask generator (one frame:
    its 1024-pixel image encoder takes ~40 s on 2 CPU cores)."""
    from eps3d_ros.teacher_models import SamConfig, SamMasks

    sam = SamMasks(SamConfig(model="vit_b", size=64, points_per_side=4, pred_iou_thresh=0.0,
                             stability_score_thresh=0.0))
    m = sam(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    assert m.shape == (48, 64) and m.dtype == np.int32 and m.min() >= 0 and m.max() >= 1


def test_streamed_npz_memory_maps_its_members(tmp_path) -> None:
    a = np.arange(60, dtype=np.float16).reshape(5, 3, 4)
    write_npz_streamed(tmp_path / "x.npz", {"a": (a.shape, a.dtype, [a[:2], a[2:]]),
                                            "ids": ((5,), np.dtype("<U3"), [np.array(["a", "b", "c", "d", "e"])])})
    m = npz_member(tmp_path / "x.npz", "a")
    assert isinstance(m, np.memmap) and np.array_equal(m, a)
    with np.load(tmp_path / "x.npz") as z:
        assert np.array_equal(z["a"], a) and list(z["ids"]) == list("abcde")
    with pytest.raises(ValueError, match="rows written"):
        write_npz_streamed(tmp_path / "y.npz", {"a": ((6, 3, 4), a.dtype, [a])})


class _Flaky:
    """A source that fails once at ``fail_at`` (an interrupted run), counting the frames it served."""

    def __init__(self, rgb, fail_at: int) -> None:
        self.rgb, self.fail_at, self.calls = rgb, fail_at, []

    def __call__(self, i: int) -> np.ndarray:
        if i == self.fail_at:
            self.fail_at = -1
            raise KeyboardInterrupt
        self.calls.append(i)
        return self.rgb(i)


def _capture(tmp_path, n: int = 5):
    g = two_view_frames()
    rgb = np.concatenate([g["rgb"]] * 3)[:n]
    poses = np.concatenate([g["poses"]] * 3)[:n]
    return write_transforms(tmp_path / "cap", rgb, poses)


def test_make_teachers_resumes_and_writes_the_documented_files(tmp_path) -> None:
    from eps3d_ros.data.captures import open_capture
    from eps3d_ros.text.clip import create_random_text_encoder

    weights = create_random_text_encoder(tmp_path / "clip.safetensors", "eps3d-tiny-clip", seed=1)
    clip = DenseClip(DenseClipConfig(model="eps3d-tiny-clip", pretrained=str(weights), size=64))
    source = scene_source(open_capture(_capture(tmp_path)))
    real = source.rgb
    flaky = source.rgb = _Flaky(real, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        make_teachers(source, tmp_path / "t", clip, None, chunk=2)
    assert sorted(p.name for p in (tmp_path / "t" / ".teacher_parts").glob("part_*.npz")) == ["part_000000.npz"]
    make_teachers(source, tmp_path / "t", clip, None, chunk=2)
    assert flaky.calls.count(1) == 1 and flaky.calls.count(2) == 2  # frame 2's chunk was cut short once
    assert not (tmp_path / "t" / ".teacher_parts").exists()
    tf = TeacherFile(tmp_path / "t")
    assert tf.frame_ids == [f"frame_{i:05d}" for i in range(5)] and tf.features.shape == (5, 3, 4, 512)
    assert tf.meta["format"] == "eps3d_teacher" and tf.meta["text_encoder"]["pretrained"] == str(weights)
    feats, masks = tf.read(tf.rows(["frame_00004", "frame_00001"]))
    np.testing.assert_allclose(np.linalg.norm(feats, axis=-1), 1.0, atol=2e-3)  # float16 unit vectors
    expected = clip(real(4), (3, 4)).numpy()
    np.testing.assert_allclose(feats[0], expected, atol=2e-3)
    assert masks.shape == (2, 24, 32) and not masks.any()  # --masks none
    with pytest.raises(ValueError, match="exists"):
        make_teachers(source, tmp_path / "t", clip, None, chunk=2)
    (tmp_path / "t2" / ".teacher_parts").mkdir(parents=True)
    (tmp_path / "t2" / ".teacher_parts" / "manifest.json").write_text(json.dumps({"chunk": 8}))
    with pytest.raises(ValueError, match="unfinished teacher run with other settings"):
        make_teachers(source, tmp_path / "t2", clip, None, chunk=2)


def test_eps3d_teachers_command(tmp_path) -> None:
    from eps3d_ros.text.clip import create_random_text_encoder

    weights = create_random_text_encoder(tmp_path / "clip.safetensors", "eps3d-tiny-clip", seed=1)
    cap = _capture(tmp_path, 3)
    cmd = [sys.executable, "-m", "eps3d_ros.cli", "teachers", str(cap), "--features", "clip-dense", "--masks", "none",
           "--out", str(tmp_path / "out"), "--clip-model", "eps3d-tiny-clip", "--clip-weights", str(weights),
           "--clip-size", "64", "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # as a program, once
    assert r.returncode == 0, r.stderr
    assert "3 frames, features 3x4x512" in r.stdout
    from eps3d_ros.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(cmd[3:]) == 2
    assert "eps3d: error:" in err.getvalue() and "--overwrite" in err.getvalue()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(cmd[3:4] + [str(tmp_path)] + cmd[5:]) == 2
    assert "not a recording" in err.getvalue()
