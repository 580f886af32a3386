"""MMT.CPU_BF16: bfloat16 autocast of the training forwards on the CPU, float32 everywhere else."""

import pytest
import torch

from fastreid.modeling import build_model
from fastreid.utils.events import EventStorage

from fastreid_mmt.modeling.meta_arch.chunked import forward_in_chunks

from .conftest import SMALL_INPUT, small_mmt_cfg


def _batch(n=16, ids=4):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, *SMALL_INPUT, generator=g) * 255
    return {"images": images, "images2": images.flip(-1).clone(),
            "targets": torch.arange(ids).repeat_interleave(n // ids)}


def _model(bf16):
    cfg = small_mmt_cfg()
    cfg.defrost()
    cfg.MMT.CPU_BF16 = bf16
    torch.manual_seed(0)
    return build_model(cfg)


def test_training_forward_runs_in_bf16_and_returns_float32():
    model = _model(True)
    seen = []
    model.net1.backbone.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with EventStorage():
        losses = model(_batch())
    assert seen and all(d == torch.bfloat16 for d in seen)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    grads = [p.grad for p in model.net1.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 for g in grads)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_losses_close_to_float32():
    exact, fast = _model(False), _model(True)
    fast.load_state_dict(exact.state_dict())
    with EventStorage():
        a, b = exact(_batch()), fast(_batch())
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0.05, atol=0.05)


def test_evaluation_stays_float32_and_clustering_features_follow_training():
    exact, fast = _model(False).eval(), _model(True).eval()
    fast.load_state_dict(exact.state_dict())
    seen = []
    fast.mean_net1.backbone.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with torch.no_grad():
        features = fast(_batch())
        assert seen == [torch.float32] and features.dtype == torch.float32
        torch.testing.assert_close(features, exact(_batch()))
        clustering = fast.extract_mean_features(_batch()["images"])  # bf16, as in training
    assert seen[-1] == torch.bfloat16 and clustering.dtype == torch.float32


def test_eval_mode_head_output_is_cast_back():
    net = _model(True).net1.eval()
    with torch.no_grad():
        out = forward_in_chunks(net, torch.randn(4, 3, *SMALL_INPUT), None, 0, bf16=True)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32


def test_refused_on_cuda():
    cfg = small_mmt_cfg()
    cfg.defrost()
    cfg.MMT.CPU_BF16 = True
    cfg.MODEL.DEVICE = "cuda"
    with pytest.raises(ValueError, match="MMT.CPU_BF16 is for training on the CPU.*SOLVER.AMP.ENABLED"):
        build_model(cfg)
