"""The training losses on crafted inputs: each behaves as the paper's definition says."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from eps3d_ros.train.losses import (
    LossConfig,
    camera_loss,
    depth_loss,
    ins2sem_loss,
    instance_infonce,
    rgb_loss,
    semantic_ce_loss,
    semantic_loss,
    ssim,
    total_loss,
)
from eps3d_ros.train.teachers import STUFF_MASK_OFFSET, GroundTruthTeacher, TeacherTargets


def _clusters(separation: float, noise: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two masks in one 8x8 view with features around two centres ``separation`` apart (channels last)."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(1, 8, 8, dtype=torch.long)
    masks[0, :, :4], masks[0, :, 4:] = 3, 7
    c0 = torch.tensor([1.0, 0.0, 0.0, 0.0])
    c1 = torch.tensor([math.cos(separation), math.sin(separation), 0.0, 0.0])
    feats = torch.where((masks == 3)[..., None], c0, c1) + noise * torch.randn(1, 8, 8, 4, generator=g)
    return feats, masks


# ------------------------------------------------------------------------------------------ RGB
def test_rgb_loss_is_l1_and_zero_for_equal_images() -> None:
    a = torch.rand(2, 3, 16, 16)
    assert rgb_loss(a, a).item() == 0.0
    assert rgb_loss(a, a + 0.1).item() == pytest.approx(0.1, abs=1e-6)
    assert rgb_loss(a, a, ssim_weight=0.2).item() == pytest.approx(0.0, abs=1e-6)
    b = (a + 0.2 * torch.randn_like(a)).clamp(0, 1)
    assert rgb_loss(a, b, ssim_weight=0.2) > rgb_loss(a, a, ssim_weight=0.2)
    with pytest.raises(ValueError, match="one shape"):
        rgb_loss(a, a[:1])


def test_ssim_is_one_for_equal_images_and_lower_for_noise() -> None:
    a = torch.rand(1, 3, 20, 20)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-5)
    assert ssim(a, (a + 0.3 * torch.randn_like(a)).clamp(0, 1)).item() < 0.9


# ------------------------------------------------------------------------------------- semantic
def test_semantic_loss_is_one_minus_cosine_over_valid_pixels() -> None:
    target = F.normalize(torch.randn(2, 8, 4, 4), dim=1)
    assert semantic_loss(3.0 * target, target).item() == pytest.approx(0.0, abs=1e-6)  # scale-invariant
    assert semantic_loss(-target, target).item() == pytest.approx(2.0, abs=1e-6)
    pred = target.clone()
    pred[0, :, 0, 0] = -pred[0, :, 0, 0]  # one wrong pixel ...
    valid = torch.ones(2, 4, 4, dtype=torch.bool)
    assert semantic_loss(pred, target, valid).item() == pytest.approx(2.0 / 32, abs=1e-6)
    valid[0, 0, 0] = False  # ... that the teacher does not label
    assert semantic_loss(pred, target, valid).item() == pytest.approx(0.0, abs=1e-6)
    empty = semantic_loss(pred.requires_grad_(), target, torch.zeros(2, 4, 4, dtype=torch.bool))
    assert empty.item() == 0.0 and empty.requires_grad


def test_class_targets_average_prototypes_like_the_expansion_downsamples() -> None:
    protos = F.normalize(torch.randn(3, 16), dim=-1)
    ids = torch.tensor([[[0, 1], [1, -1]]])  # one 2x2 view: classes 0, 1, 1 and one unlabelled pixel
    t = TeacherTargets(masks=torch.zeros(1, 2, 2, dtype=torch.long), class_ids=ids, prototypes=protos)
    full, valid_full = t.semantic_target((2, 2))
    assert torch.allclose(full[0, :, 0, 1], protos[1], atol=1e-6) and valid_full[0, 1, 1] == 0
    half, valid = t.semantic_target((1, 1))  # 3 of 4 pixels labelled: valid, target ∝ p0 + 2 p1
    assert valid.item() == 1.0
    assert torch.allclose(half[0, :, 0, 0], F.normalize(protos[0] + 2 * protos[1], dim=0), atol=1e-6)


def test_semantic_cross_entropy_over_prototypes() -> None:
    protos = F.normalize(torch.randn(4, 8), dim=-1)
    classes = torch.tensor([[[0, 1], [2, -1]]])  # one 2x2 view, one unlabelled pixel
    right = protos[classes.clamp(min=0)].permute(0, 3, 1, 2)  # [1, 8, 2, 2]: each pixel its prototype
    wrong = protos[(classes.clamp(min=0) + 1) % 4].permute(0, 3, 1, 2)
    assert semantic_ce_loss(right, classes, protos) < 0.1 < semantic_ce_loss(wrong, classes, protos)
    # The unlabelled pixel does not count.
    right2 = right.clone()
    right2[0, :, 1, 1] = -right2[0, :, 1, 1]
    assert semantic_ce_loss(right2, classes, protos).item() == pytest.approx(
        semantic_ce_loss(right, classes, protos).item(), abs=1e-6)
    none = semantic_ce_loss(right.requires_grad_(), torch.full_like(classes, -1), protos)
    assert none.item() == 0.0 and none.requires_grad
    # Balanced: a rare class weighs as much as a frequent one.
    big = torch.zeros(1, 10, 10, dtype=torch.long)
    big[0, 0, 0] = 1  # one pixel of class 1, 99 of class 0
    feats = protos[torch.zeros_like(big)].permute(0, 3, 1, 2).clone()  # everything predicted as class 0
    plain, bal = semantic_ce_loss(feats, big, protos), semantic_ce_loss(feats, big, protos, balanced=True)
    assert bal > 10 * plain  # the missed rare class is half of the balanced loss, 1% of the plain one
    t = TeacherTargets(masks=torch.zeros(1, 4, 4, dtype=torch.long),
                       class_ids=torch.tensor([[[0, 0, 1, -1], [0, 2, -1, -1], [3, 3, 3, 3], [3, 3, 3, 3]]]),
                       prototypes=protos)
    assert t.semantic_classes((2, 2)).tolist() == [[[0, -1], [3, 3]]]  # majority; < half labelled → -1


# ------------------------------------------------------------------------------------- instance
def test_infonce_lower_for_separated_clusters() -> None:
    close = instance_infonce(*_clusters(0.1), temperature=0.1)
    far = instance_infonce(*_clusters(math.pi / 2), temperature=0.1)
    assert far < close
    assert far.item() < 0.05  # orthogonal centroids at τ = 0.1: nearly zero


def test_infonce_is_invariant_to_mask_id_permutations_and_ignores_id_zero() -> None:
    feats, masks = _clusters(1.0, noise=0.3)
    base = instance_infonce(feats, masks)
    relabelled = torch.where(masks == 3, torch.full_like(masks, 100), torch.full_like(masks, 5))
    assert instance_infonce(feats, relabelled).item() == pytest.approx(base.item(), abs=1e-6)
    # Pixels of id 0 take no part: making them garbage does not change the loss.
    masks0 = masks.clone()
    masks0[0, 0, :] = 0
    feats0 = feats.clone()
    ref = instance_infonce(feats0, masks0)
    feats0[0, 0, :] = torch.randn(8, 4)
    assert instance_infonce(feats0, masks0).item() == pytest.approx(ref.item(), abs=1e-6)


def test_infonce_single_view_no_contrast_is_zero_and_views_are_independent() -> None:
    feats, masks = _clusters(1.0)
    one_mask = torch.ones_like(masks)
    assert instance_infonce(feats, one_mask).item() == 0.0
    # Two views whose masks reuse the same ids for different things: each view is on its own.
    f2 = torch.cat([feats, feats.flip(2)])
    m2 = torch.cat([masks, masks])
    assert instance_infonce(f2, m2).item() == pytest.approx(
        0.5 * (instance_infonce(feats, masks) + instance_infonce(feats.flip(2), masks)).item(), abs=1e-6)


def test_infonce_temperature_and_pixel_sampling() -> None:
    feats, masks = _clusters(1.2, noise=0.05)
    assert instance_infonce(feats, masks, temperature=0.05) < instance_infonce(feats, masks, temperature=0.5)
    g = torch.Generator().manual_seed(0)
    sampled = instance_infonce(feats, masks, max_pixels=16, generator=g)
    assert torch.isfinite(sampled) and sampled.item() > 0


def test_infonce_gradient_separates_clusters() -> None:
    feats, masks = _clusters(0.2, noise=0.05)
    feats.requires_grad_(True)
    opt = torch.optim.SGD([feats], lr=0.5)
    first = instance_infonce(feats, masks).item()
    for _ in range(20):
        opt.zero_grad()
        instance_infonce(feats, masks).backward()
        opt.step()
    assert instance_infonce(feats, masks).item() < 0.5 * first


# -------------------------------------------------------------------------------------- Ins2Sem
def test_ins2sem_zero_when_instance_neighbours_agree_semantically() -> None:
    g = torch.Generator().manual_seed(0)
    # 3 objects of 30 Gaussians: instance codes separate them, semantics constant within each.
    codes = F.normalize(torch.randn(3, 8, generator=g), dim=-1)
    sem_codes = torch.randn(3, 16, generator=g)
    obj = torch.arange(3).repeat_interleave(30)
    ins = codes[obj] + 0.01 * torch.randn(90, 8, generator=g)
    sem = sem_codes[obj] * (1 + torch.rand(90, 1, generator=g))  # scaled: cosine ignores it
    loss = ins2sem_loss(ins, sem, num_anchors=20, num_neighbors=10, generator=g)
    assert loss.item() == pytest.approx(0.0, abs=1e-5)
    # Jittered semantics inside an object are penalised ...
    noisy = sem + 0.5 * torch.randn(90, 16, generator=g)
    assert ins2sem_loss(ins, noisy, 20, 10, generator=torch.Generator().manual_seed(1)).item() > 0.05
    # ... and an expansion applied to the gathered rows is used for the cosine.
    expand = torch.nn.Linear(16, 32, bias=False)  # linear: the per-Gaussian scale still cancels
    assert ins2sem_loss(ins, sem, 20, 10, generator=g, expand=expand).item() == pytest.approx(0.0, abs=1e-5)


def test_ins2sem_ignores_invalid_gaussians_and_small_inputs() -> None:
    ins = torch.randn(10, 4)
    sem = torch.randn(10, 6, requires_grad=True)
    valid = torch.zeros(10, dtype=torch.bool)
    valid[:1] = True
    out = ins2sem_loss(ins, sem, valid=valid)
    assert out.item() == 0.0 and out.requires_grad
    out = ins2sem_loss(ins, sem, num_anchors=100, num_neighbors=100)  # clamped to N and N - 1
    assert torch.isfinite(out)
    out.backward()
    assert sem.grad is not None and torch.isfinite(sem.grad).all()


# ------------------------------------------------------------------------------------- geometry
def test_depth_and_camera_losses() -> None:
    gt = torch.rand(2, 4, 4) + 0.5
    gt[0, 0, 0] = 0  # no measurement
    pred = gt + 0.1
    pred[0, 0, 0] = 100.0
    assert depth_loss(pred, gt).item() == pytest.approx(0.1, abs=1e-5)
    target = torch.randn(3, 9)
    q = F.normalize(target[:, 3:7], dim=-1)
    target[:, 3:7] = q
    flipped = target.clone()
    flipped[:, 3:7] = -q  # the same rotations
    assert camera_loss([flipped], target).item() == pytest.approx(0.0, abs=1e-6)
    worse = target + 0.5
    better = target + 0.1
    assert camera_loss([worse, better], target) < camera_loss([better, worse], target)  # last counts most


def test_total_loss_weights_and_config_defaults() -> None:
    cfg = LossConfig()
    assert (cfg.rgb, cfg.instance, cfg.semantic, cfg.ins2sem) == (0.1, 1e-3, 0.1, 1e-4)  # the paper's w1..w4
    terms = {"rgb": torch.tensor(1.0), "instance": torch.tensor(2.0), "semantic": torch.tensor(3.0),
             "ins2sem": torch.tensor(4.0), "depth": torch.tensor(5.0)}
    assert total_loss(terms, cfg).item() == pytest.approx(0.1 + 2e-3 + 0.3 + 4e-4)  # depth: weight 0
    with pytest.raises(ValueError, match="temperature"):
        LossConfig(temperature=0).validate()
    with pytest.raises(ValueError, match="no loss term"):
        total_loss({"depth": torch.tensor(1.0)}, cfg)


# -------------------------------------------------------------------------------------- teacher
def test_ground_truth_teacher_targets() -> None:
    from types import SimpleNamespace

    protos = F.normalize(torch.randn(4, 8), dim=-1)  # classes: background, floor (stuff), mug, table (stuff)
    teacher = GroundTruthTeacher(protos, ["background", "floor", "mug", "table"], stuff_classes=[1, 3])
    sem = torch.tensor([[[0, 1], [2, 3]]])
    ins = torch.tensor([[[0, 0], [5, 0]]])
    t = teacher(SimpleNamespace(semantic=sem, instance=ins))
    assert t.class_ids.tolist() == [[[-1, 1], [2, 3]]]  # background: no semantic target
    assert t.masks.tolist() == [[[0, STUFF_MASK_OFFSET + 1], [5, STUFF_MASK_OFFSET + 3]]]
    plain = GroundTruthTeacher(protos, ["background", "floor", "mug", "table"], stuff_classes=[1, 3],
                               stuff_masks=False)(SimpleNamespace(semantic=sem, instance=ins))
    assert plain.masks.tolist() == [[[0, 0], [5, 0]]]
