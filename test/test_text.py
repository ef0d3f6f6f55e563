"""ClipTextEncoder: CLIP text embeddings, prototypes, probabilities, cache, weights resolution (no network)."""

from __future__ import annotations

import random
import threading
import socket
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from eps3d_ros.text.clip import (
    ClipTextEncoder,
    TextEncoderConfig,
    TextEncoderUnavailable,
    _tag_file,
    import_open_clip,
    register_tiny_test_model,
)

NAMES = ["chair", "table", "sofa", "red mug", "potted plant", "wall", "floor"]


@pytest.fixture(scope="module")
def open_clip():
    return import_open_clip()


@pytest.fixture(scope="module")
def tiny(open_clip) -> str:
    return register_tiny_test_model()


@pytest.fixture(scope="module")
def source_model(open_clip, tiny):
    """A full tiny open_clip model (random weights) as the source of checkpoints."""
    torch.manual_seed(1)
    return open_clip.create_model(tiny, pretrained=None).eval()


@pytest.fixture(scope="module")
def checkpoint(source_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny_clip.pt"
    torch.save(source_model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def enc(tiny, checkpoint) -> ClipTextEncoder:
    return ClipTextEncoder(model=tiny, pretrained=str(checkpoint))


def _refuse_network(monkeypatch) -> list:
    """Make every outgoing connection fail and record it: "offline" must mean no connection is even tried."""
    attempts: list = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network disabled in this test (tried {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    return attempts


def _reference(open_clip, model, tiny, texts) -> torch.Tensor:
    tokens = open_clip.get_tokenizer(tiny)(texts)
    with torch.inference_mode():
        return F.normalize(model.encode_text(tokens).float(), dim=-1)


# ---------------------------------------------------------------------- encoding
def test_shapes_normalised_and_text_tower_only(enc):
    x = enc.encode(NAMES)
    assert x.shape == (len(NAMES), 512) and x.dtype == torch.float32 and enc.dim == 512
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(len(NAMES)))
    assert enc.encode("chair").shape == (1, 512)
    assert enc.model.visual is None  # dropped; encode_text does not need it
    assert not x.is_inference()  # usable with autograd outside inference mode


def test_deterministic_and_stripped(tiny, checkpoint):
    a = ClipTextEncoder(model=tiny, pretrained=str(checkpoint), cache_size=0)
    b = ClipTextEncoder(model=tiny, pretrained=str(checkpoint), cache_size=0)
    x = a.encode(NAMES)
    assert torch.equal(x, a.encode(NAMES)) and torch.equal(x, b.encode(NAMES))
    assert torch.equal(a.encode(["  chair\t"]), a.encode(["chair"]))
    assert not torch.allclose(x[0], x[1])


def test_duplicates_in_one_call(tiny, checkpoint):
    e = ClipTextEncoder(model=tiny, pretrained=str(checkpoint))
    x = e.encode(["chair", "table", "chair"])
    assert torch.equal(x[0], x[2])
    assert e.cache_info()["misses"] == 2


def test_returned_tensor_does_not_alias_cache(enc):
    x = enc.encode(["lamp"])
    x.zero_()
    assert enc.encode(["lamp"]).norm() > 0.99


def test_lru_cache_hits_and_evictions(tiny, checkpoint):
    e = ClipTextEncoder(model=tiny, pretrained=str(checkpoint), cache_size=2)
    first = e.encode(["a", "b"])
    assert e.cache_info() == {"hits": 0, "misses": 2, "size": 2, "maxsize": 2}
    assert torch.equal(e.encode(["a"])[0], first[0])  # hit; "a" is now the most recent
    assert e.cache_info()["hits"] == 1
    e.encode(["c"])  # evicts "b", the least recently used
    assert e.cache_info() == {"hits": 1, "misses": 3, "size": 2, "maxsize": 2}
    e.encode(["a"])  # still cached
    assert e.cache_info()["hits"] == 2
    e.encode(["b"])  # was evicted: a miss
    assert e.cache_info() == {"hits": 2, "misses": 4, "size": 2, "maxsize": 2}
    e.clear_cache()
    assert e.cache_info() == {"hits": 0, "misses": 0, "size": 0, "maxsize": 2}


def test_cache_disabled(tiny, checkpoint):
    e = ClipTextEncoder(model=tiny, pretrained=str(checkpoint), cache_size=0)
    e.encode(["a"]), e.encode(["a"])
    assert e.cache_info() == {"hits": 0, "misses": 2, "size": 0, "maxsize": 0}


def test_threads_give_identical_results(tiny, checkpoint):
    """Many threads, a cache smaller than the vocabulary (evictions), one text per call: bit-identical."""
    texts = [f"object {i}" for i in range(12)]
    e = ClipTextEncoder(model=tiny, pretrained=str(checkpoint), cache_size=4, batch_size=1)
    ref = {t: v for t, v in zip(texts, ClipTextEncoder(model=tiny, pretrained=str(checkpoint), batch_size=1,
                                                   cache_size=0).encode(texts))}
    errors: list[BaseException] = []
    batched: list[torch.Tensor] = []

    def work(seed: int) -> None:
        try:
            order = texts * 2
            random.Random(seed).shuffle(order)
            for t in order:
                if not torch.equal(e.encode([t])[0], ref[t]):
                    raise AssertionError(f"thread {seed}: {t!r} differs")
            batched.append(e.encode(texts))
        except BaseException as ex:  # noqa: BLE001 - reported below
            errors.append(ex)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    expected = torch.stack([ref[t] for t in texts])
    for x in batched:  # cached and fresh rows mixed; batch_size=1 keeps every row bit-identical
        assert torch.equal(x, expected)
    info = e.cache_info()
    assert info["size"] <= 4 and info["hits"] + info["misses"] == 4 * (2 * len(texts) + len(texts))


# ---------------------------------------------------------------------- prototypes and probabilities
def test_prototypes_single_template_equal_encode(enc):
    assert torch.equal(enc.prototypes(NAMES), enc.encode(NAMES))


def test_templates_average(tiny, checkpoint):
    templates = ["a photo of a {}.", "a {} in a room."]
    e = ClipTextEncoder(model=tiny, pretrained=str(checkpoint), templates=templates)
    plain = ClipTextEncoder(model=tiny, pretrained=str(checkpoint))
    per_template = torch.stack([plain.encode([t.format(n) for n in NAMES]) for t in templates])  # [T, K, D]
    manual = F.normalize(F.normalize(per_template, dim=-1).mean(0), dim=-1)
    protos = e.prototypes(NAMES)
    torch.testing.assert_close(protos, manual, rtol=0, atol=1e-6)
    torch.testing.assert_close(protos.norm(dim=-1), torch.ones(len(NAMES)))
    assert not torch.allclose(protos, plain.prototypes(NAMES), atol=1e-3)


def test_probabilities(enc):
    assert enc.config.logit_scale == pytest.approx(14.2857, abs=1e-4)
    protos = enc.prototypes(NAMES)
    feats = torch.randn(3, 4, 512) * 5  # not normalised
    p = enc.probabilities(feats, protos)
    assert p.shape == (3, 4, len(NAMES))
    torch.testing.assert_close(p.sum(-1), torch.ones(3, 4))
    cos = (feats / feats.norm(dim=-1, keepdim=True)) @ protos.T
    torch.testing.assert_close(p, torch.softmax(cos / 0.07, dim=-1))
    # prototypes given unnormalised give the same result; a zero feature is uniform
    torch.testing.assert_close(enc.probabilities(feats, protos * 3), p)
    torch.testing.assert_close(enc.probabilities(torch.zeros(512), protos), torch.full((len(NAMES),), 1 / len(NAMES)))


def test_probabilities_backprop_through_features(enc):
    feats = torch.randn(5, 512, requires_grad=True)
    enc.probabilities(feats, enc.prototypes(NAMES))[:, 0].sum().backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0


def test_probabilities_shape_errors(enc):
    protos = enc.prototypes(NAMES)
    with pytest.raises(ValueError, match="share D"):
        enc.probabilities(torch.randn(4, 256), protos)
    with pytest.raises(ValueError, match="share D"):
        enc.probabilities(torch.randn(4, 512), protos[0])


def test_custom_logit_scale(tiny, checkpoint, enc):
    e = ClipTextEncoder(model=tiny, pretrained=str(checkpoint), logit_scale=100.0)
    protos, feats = enc.prototypes(NAMES), torch.randn(2, 512)
    cos = F.normalize(feats, dim=-1) @ protos.T
    torch.testing.assert_close(e.probabilities(feats, protos), torch.softmax(100.0 * cos, dim=-1))


# ---------------------------------------------------------------------- weights
def test_checkpoint_round_trip_bit_identical(open_clip, enc, source_model, tiny):
    assert torch.equal(enc.encode(NAMES), _reference(open_clip, source_model, tiny, NAMES))


def test_safetensors_checkpoint(open_clip, source_model, tiny, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "tiny_clip.safetensors"
    save_file(source_model.state_dict(), str(path))
    e = ClipTextEncoder(model=tiny, pretrained=str(path))
    assert torch.equal(e.encode(NAMES), _reference(open_clip, source_model, tiny, NAMES))


def test_random_weights_warn(tiny, caplog):
    with caplog.at_level("WARNING", logger="eps3d_ros.text.clip"):
        e = ClipTextEncoder(model=tiny, pretrained="")
    assert "RANDOM weights" in caplog.text and e.checkpoint == ""


def test_hub_tag_from_cache_without_network(open_clip, tiny, source_model, tmp_path, monkeypatch):
    """A tag whose file is in the (fake) Hugging Face cache loads with allow_download=False; the tag's
    quick_gelu is followed."""
    from safetensors.torch import save_file

    qg_model = open_clip.create_model(tiny, pretrained=None, force_quick_gelu=True).eval()
    qg_model.load_state_dict(source_model.state_dict())
    snapshot = tmp_path / "models--eps3d--tiny-clip" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (tmp_path / "models--eps3d--tiny-clip" / "refs").mkdir()
    (tmp_path / "models--eps3d--tiny-clip" / "refs" / "main").write_text("0" * 40)
    save_file(source_model.state_dict(), str(snapshot / "open_clip_model.safetensors"))
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, tiny,
                        {"fake": {"hf_hub": "eps3d/tiny-clip/", "quick_gelu": True}})
    attempts = _refuse_network(monkeypatch)
    e = ClipTextEncoder(model=tiny, pretrained="fake", allow_download=False, cache_dir=str(tmp_path))
    assert attempts == []
    assert e.quick_gelu and e.checkpoint == str(snapshot / "open_clip_model.safetensors")
    assert torch.equal(e.encode(NAMES), _reference(open_clip, qg_model, tiny, NAMES))
    assert not torch.equal(e.encode(NAMES), _reference(open_clip, source_model, tiny, NAMES))


def test_real_tag_resolves_from_cache(open_clip, tmp_path):
    """ViT-B-32/openai resolves to the cached safetensors file (here an empty stand-in) with no network."""
    repo = tmp_path / "models--timm--vit_base_patch32_clip_224.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("1" * 40)
    (repo / "snapshots" / ("1" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("1" * 40) / "open_clip_pytorch_model.bin").write_bytes(b"")
    cfg = open_clip.get_pretrained_cfg("ViT-B-32", "openai")
    config = TextEncoderConfig(allow_download=False, cache_dir=str(tmp_path))
    path = _tag_file(open_clip, "ViT-B-32", "openai", cfg, config)
    assert path.endswith("open_clip_pytorch_model.bin")


def test_default_config_is_vit_b_32_openai(open_clip):
    c = TextEncoderConfig()
    assert (c.model, c.pretrained, c.templates, c.device) == ("ViT-B-32", "openai", ["{}"], "cpu")
    assert open_clip.get_model_config(c.model)["embed_dim"] == 512
    tag = open_clip.get_pretrained_cfg(c.model, c.pretrained)
    assert tag["hf_hub"].startswith("timm/vit_base_patch32_clip_224.openai") and tag["quick_gelu"]
    assert c.logit_scale == pytest.approx(1 / 0.07)


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("texts, match", [
    ([], "empty query text list"),
    ("", "empty query text at index 0"),
    (["chair", "   "], "empty query text at index 1"),
])
def test_empty_texts(enc, texts, match):
    with pytest.raises(ValueError, match=match):
        enc.encode(texts)


def test_empty_class_names(enc):
    with pytest.raises(ValueError, match="empty class name at index 2"):
        enc.prototypes(["chair", "table", "\t"])
    with pytest.raises(ValueError, match="empty class name list"):
        enc.prototypes([])
    with pytest.raises(TypeError, match="not one string"):
        enc.prototypes("chair")
    with pytest.raises(TypeError, match="index 1 must be a string"):
        enc.encode(["chair", 3])


def test_unknown_architecture():
    with pytest.raises(ValueError, match=r"unknown open_clip architecture 'ViT-Q-99'.*ViT-B-32"):
        ClipTextEncoder(model="ViT-Q-99")


def test_unknown_tag_lists_tags():
    with pytest.raises(ValueError, match=r"unknown pretrained tag 'laion9000'.*'openai'.*'laion2b_s34b_b79k'"):
        ClipTextEncoder(model="ViT-B-32", pretrained="laion9000")


@pytest.mark.parametrize("path", ["/nonexistent/dir/clip.pt", "weights.safetensors", "./clip_text"])
def test_missing_checkpoint_file(path):
    with pytest.raises(FileNotFoundError, match="checkpoint file not found"):
        ClipTextEncoder(model="ViT-B-32", pretrained=path)


def test_checkpoint_of_another_architecture(open_clip, checkpoint, tmp_path):
    other = register_tiny_test_model("eps3d-tiny-clip-256", embed_dim=256)
    with pytest.raises(ValueError, match=r"cannot load .*tiny_clip.pt.* as an open_clip eps3d-tiny-clip-256"):
        ClipTextEncoder(model=other, pretrained=str(checkpoint))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot load"):
        ClipTextEncoder(model=other, pretrained=str(junk))


@pytest.mark.parametrize("overrides, match", [
    ({"templates": ["a photo"]}, "one '{}'"),
    ({"templates": []}, "at least one"),
    ({"templates": ["{} {x}"]}, "not a valid format string"),
    ({"cache_size": -1}, "cache_size"),
    ({"batch_size": 0}, "batch_size"),
    ({"logit_scale": 0.0}, "logit_scale"),
])
def test_bad_config(tiny, overrides, match):
    with pytest.raises(ValueError, match=match):
        ClipTextEncoder(model=tiny, pretrained="", **overrides)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda(tiny):
    with pytest.raises(ValueError, match="CUDA is not available"):
        ClipTextEncoder(model=tiny, pretrained="", device="cuda")


def test_offline_tag_fails_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    attempts = _refuse_network(monkeypatch)
    with pytest.raises(TextEncoderUnavailable) as info:
        ClipTextEncoder(allow_download=False, cache_dir=str(tmp_path))  # ViT-B-32 / openai, empty cache
    assert attempts == []  # fails at once: no connection was even tried
    msg = str(info.value)
    for part in ["text.allow_download is false", "timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors",
                 # the fix in the user's terms: the node's parameters, the CLI's flags, Python's arguments
                 "-p text.pretrained:=/path/to/open_clip_model.safetensors -p text.quick_gelu:=true",
                 "--text-weights /path/to/open_clip_model.safetensors --set text.quick_gelu=true",
                 "pretrained='/path/to/open_clip_model.safetensors', quick_gelu='true'", "HF_HUB_OFFLINE",
                 "hub cache"]:
        assert part in msg, part
    assert isinstance(info.value, RuntimeError)


def test_hf_hub_offline_env_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    attempts = _refuse_network(monkeypatch)
    with pytest.raises(TextEncoderUnavailable, match="HF_HUB_OFFLINE is set"):
        ClipTextEncoder(pretrained="laion2b_s34b_b79k", cache_dir=str(tmp_path))  # allow_download=True
    assert attempts == []


def test_unreachable_hub_fails_at_once_with_the_settings_to_give(tmp_path, monkeypatch):
    """An offline robot with downloads allowed (the default): one connection attempt, no minute of hub retries,
    and the fix as node parameters and CLI flags."""
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    attempts = _refuse_network(monkeypatch)
    downloads: list = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: downloads.append(a))
    with pytest.raises(TextEncoderUnavailable) as info:
        ClipTextEncoder(cache_dir=str(tmp_path))  # ViT-B-32 / openai, allow_download=True, empty cache
    assert len(attempts) == 1 and downloads == []
    msg = str(info.value)
    assert "the Hugging Face Hub is unreachable: huggingface.co cannot be reached" in msg
    assert "eps3d_node --ros-args -p text.pretrained:=/path/to/open_clip_model.safetensors" in msg
    assert "--text-weights /path/to/open_clip_model.safetensors" in msg and "text.allow_download" in msg
