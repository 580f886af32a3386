"""The MMT meta-architecture built through fast-reid's registry."""

import pytest
import torch

from fastreid.modeling import build_model
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from fastreid.utils.events import EventStorage

from fastreid_mmt.modeling import ema_momentum, ema_update
from fastreid_mmt.modeling.meta_arch.mmt import NET_NAMES
from fastreid_mmt.modeling.weights_io import CLASSIFIER_KEY

from .conftest import SMALL_INPUT, small_mmt_cfg


def _batch(n=16, ids=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, *SMALL_INPUT, generator=g) * 255
    return {"images": images, "images2": images.flip(-1).clone(),
            "targets": torch.arange(ids).repeat_interleave(n // ids)}


def _sgd_step(model, batch):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1)
    with EventStorage():
        losses = model(batch)
    opt.zero_grad()
    sum(losses.values()).backward()
    opt.step()
    return losses


def test_registered_and_four_networks_are_submodules(mmt_cfg):
    assert META_ARCH_REGISTRY.get("MMT") is not None
    model = build_model(mmt_cfg)
    children = dict(model.named_children())
    assert set(NET_NAMES) <= set(children)
    keys = model.state_dict().keys()
    for name in NET_NAMES:
        assert any(k.startswith(name + ".backbone.") for k in keys)
    assert all(not p.requires_grad for n in ("mean_net1", "mean_net2") for p in getattr(model, n).parameters())
    # students train exactly what a plain fast-reid network trains (the BN-neck bias is frozen)
    assert {k for k, p in model.net1.named_parameters() if not p.requires_grad} == {"heads.bottleneck.0.bias"}
    assert {k for k, p in model.net2.named_parameters() if not p.requires_grad} == {"heads.bottleneck.0.bias"}


# The backbones the README promises (any fast-reid backbone): name, depth, IBN, feature width.
BACKBONES = [
    ("build_resnet_backbone", "18x", False, 512),
    ("build_resnet_backbone", "18x", True, 512),
    ("build_resnet_backbone", "34x", False, 512),
    ("build_resnet_backbone", "34x", True, 512),
    ("build_resnet_backbone", "50x", False, 2048),
    ("build_resnet_backbone", "50x", True, 2048),
    ("build_osnet_backbone", "x0_25", False, 128),
    ("build_osnet_backbone", "x1_0", False, 512),
    ("build_osnet_backbone", "x1_0", True, 512),
]


@pytest.mark.parametrize("backbone,depth,ibn,feat_dim", BACKBONES)
def test_one_step_changes_students_and_not_mean_nets(backbone, depth, ibn, feat_dim):
    wrong = 2048 if feat_dim != 2048 else 512
    with pytest.raises(ValueError, match=rf"FEAT_DIM is {wrong} but {backbone} \(DEPTH {depth}, WITH_IBN {ibn}\) "
                                         rf"produces {feat_dim}-channel features: set MODEL.BACKBONE.FEAT_DIM {feat_dim}"):
        small_mmt_cfg(backbone, depth, wrong, MODEL__BACKBONE__WITH_IBN=ibn)
    model = build_model(small_mmt_cfg(backbone, depth, feat_dim, MODEL__BACKBONE__WITH_IBN=ibn))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = _sgd_step(model, _batch())
    assert set(losses) == {"loss_ce", "loss_tri", "loss_soft_ce", "loss_soft_tri"}
    assert all(torch.isfinite(v) for v in losses.values())
    after = model.state_dict()
    for student in ("net1", "net2"):
        assert not torch.equal(before[f"{student}.{CLASSIFIER_KEY}"], after[f"{student}.{CLASSIFIER_KEY}"])
    for mean in ("mean_net1", "mean_net2"):
        for name, _ in getattr(model, mean).named_parameters():
            assert torch.equal(before[f"{mean}.{name}"], after[f"{mean}.{name}"]), name
    # ... and they move only through the EMA.
    ema_update(model.mean_net1, model.net1, ema_momentum(0, 0.999))
    for (name, p), q in zip(model.mean_net1.named_parameters(), model.net1.parameters()):
        assert torch.equal(p, q), name


def test_inputs_are_not_normalised_in_place_and_loss_weights(mmt_cfg):
    model = build_model(mmt_cfg)
    model.train()
    batch = _batch()
    images = batch["images"].clone()
    with EventStorage():
        losses = model(batch)
    assert torch.equal(batch["images"], images)
    # zero soft weights leave only the hard terms, at full weight
    model.soft_ce_weight = model.soft_tri_weight = 0.0
    with EventStorage():
        hard_only = model(batch)
    assert hard_only["loss_soft_ce"].item() == 0.0 and hard_only["loss_soft_tri"].item() == 0.0
    assert hard_only["loss_ce"].item() == pytest.approx(losses["loss_ce"].item() / 0.5, rel=1e-4)
    # MMT.HARD_*_WEIGHT hold the hard terms at the paper's weights while the soft ones are 0
    model.hard_ce_weight, model.hard_tri_weight = 0.5, 0.2
    with EventStorage():
        held = model(batch)
    assert held["loss_ce"].item() == pytest.approx(losses["loss_ce"].item(), rel=1e-4)
    assert held["loss_tri"].item() == pytest.approx(losses["loss_tri"].item(), rel=1e-4)
    assert held["loss_soft_tri"].item() == 0.0


@pytest.mark.parametrize("value", [-0.1, "half"])
def test_hard_weight_must_be_none_or_a_non_negative_number(value):
    cfg = small_mmt_cfg(MMT__HARD_TRI_WEIGHT=value)
    with pytest.raises(ValueError, match="MMT.HARD_TRI_WEIGHT must be None"):
        build_model(cfg)


def test_student_is_taught_by_the_other_mean_net(mmt_cfg):
    from fastreid_mmt.modeling.losses import soft_cross_entropy, soft_softmax_triplet_loss
    model = build_model(mmt_cfg)
    model.train()
    with torch.no_grad():  # make the two mean nets clearly different teachers
        for p in model.mean_net1.parameters():
            p.add_(0.5 * torch.randn_like(p))
    batch = _batch()
    torch.manual_seed(0)
    with EventStorage():
        losses = model(batch)
    # Same forward again, by hand (BN in train mode uses batch statistics: deterministic).
    x1, x2, y = model.preprocess(batch["images"]), model.preprocess(batch["images2"]), batch["targets"]
    o1, o2 = model._run(model.net1, x1, y), model._run(model.net2, x2, y)
    m1, m2 = model._run(model.mean_net1, x1, y), model._run(model.mean_net2, x2, y)
    crossed = soft_cross_entropy(o1["pred_class_logits"], m2["pred_class_logits"]) + \
        soft_cross_entropy(o2["pred_class_logits"], m1["pred_class_logits"])
    own = soft_cross_entropy(o1["pred_class_logits"], m1["pred_class_logits"]) + \
        soft_cross_entropy(o2["pred_class_logits"], m2["pred_class_logits"])
    assert losses["loss_soft_ce"].item() == pytest.approx(0.5 * crossed.item(), rel=1e-4)
    assert crossed.item() != pytest.approx(own.item(), rel=1e-3)
    tri = soft_softmax_triplet_loss(o1["features"], m2["features"], y) + \
        soft_softmax_triplet_loss(o2["features"], m1["features"], y)
    assert losses["loss_soft_tri"].item() == pytest.approx(0.8 * tri.item(), rel=1e-4)


@pytest.mark.parametrize("test_net", ["mean_net1", "mean_net2", "mean"])
def test_eval_returns_features_of_the_chosen_network(test_net):
    model = build_model(small_mmt_cfg(MMT__TEST_NET=test_net))
    model.eval()
    images = _batch()["images"]
    feats = model({"images": images.clone()})
    assert feats.shape == (16, 512)
    if test_net != "mean":
        expected = getattr(model, test_net).eval()({"images": images.clone()})
        torch.testing.assert_close(feats, expected)


def test_reset_classifiers_follows_cluster_count(mmt_cfg):
    model = build_model(mmt_cfg)
    centroids = torch.randn(5, 512)
    params = model.reset_classifiers(centroids)
    assert len(params) == 4 and model.num_classes() == 5
    for p in params:
        torch.testing.assert_close(p.norm(dim=1), torch.ones(5))


def test_unknown_test_net_is_rejected():
    cfg = small_mmt_cfg()  # build_cfg rejects it too (test_bad_input); here the model's own check
    cfg.defrost()
    cfg.MMT.TEST_NET = "student"
    with pytest.raises(ValueError, match="MMT.TEST_NET"):
        build_model(cfg)


def _bn_running_means(net):
    return [m.running_mean.clone() for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]


def test_ims_per_bn_forwards_in_chunks_like_data_parallel():
    """MMT.IMS_PER_BN 8 on a batch of 16: each half is normalised with its own statistics
    (as two GPUs with 8 images each), and the losses see the whole batch."""
    batch = _batch(n=16, ids=4)
    torch.manual_seed(0)
    chunked = build_model(small_mmt_cfg(MMT__IMS_PER_BN=8))
    whole = build_model(small_mmt_cfg(MMT__IMS_PER_BN=0))
    whole.load_state_dict(chunked.state_dict())
    chunked.train(), whole.train()
    x = chunked.preprocess(batch["images"])
    out = chunked._run(chunked.net1, x, batch["targets"])
    halves = [whole._run(whole.net1, h, t) for h, t in zip(x.split(8), batch["targets"].split(8))]
    torch.testing.assert_close(out["features"], torch.cat([h["features"] for h in halves]))
    assert out["features"].shape[0] == 16
    full = whole._run(whole.net1, x, batch["targets"])
    assert not torch.allclose(full["features"], out["features"], atol=1e-4)  # BN statistics differ


def test_ims_per_bn_must_divide_the_per_process_batch():
    from fastreid_mmt.engine.trainer import check_ims_per_bn

    with pytest.raises(ValueError, match=r"MMT.IMS_PER_BN \(16\) must divide .* = 24"):
        check_ims_per_bn(small_mmt_cfg(SOLVER__IMS_PER_BATCH=24), 16, "MMT.IMS_PER_BN")
    check_ims_per_bn(small_mmt_cfg(SOLVER__IMS_PER_BATCH=64), 16, "MMT.IMS_PER_BN")
    check_ims_per_bn(small_mmt_cfg(SOLVER__IMS_PER_BATCH=8), 16, "MMT.IMS_PER_BN")  # smaller: a warning


@pytest.mark.parametrize("train_mode", [True, False])
def test_mean_net_train_mode_decides_whose_bn_statistics_teach(train_mode):
    model = build_model(small_mmt_cfg(MMT__MEAN_NET_TRAIN_MODE=train_mode))
    model.train()
    before = _bn_running_means(model.mean_net1)
    with EventStorage():
        model(_batch())
    after = _bn_running_means(model.mean_net1)
    moved = any(not torch.equal(a, b) for a, b in zip(before, after))
    assert moved == train_mode
    assert model.mean_net1.training  # eval mode was temporary


def test_channels_last_gives_the_same_features():
    torch.manual_seed(0)
    plain = build_model(small_mmt_cfg())
    fast = build_model(small_mmt_cfg(MMT__CHANNELS_LAST=True))
    fast.load_state_dict(plain.state_dict())
    assert fast.net1.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    plain.eval(), fast.eval()
    images = _batch()["images"]
    torch.testing.assert_close(fast(images), plain(images), atol=1e-4, rtol=1e-4)


def test_single_network_trains_net1_alone_on_hard_labels():
    """The paper's baseline: one network, hard pseudo labels, no teacher; net2 / mean_net2
    are neither trained nor forwarded, the clustering features are mean_net1's own."""
    with pytest.raises(ValueError, match="SINGLE_NETWORK .* needs MMT.SOFT_CE_WEIGHT 0"):
        build_model(small_mmt_cfg(MMT__SINGLE_NETWORK=True))
    cfg = small_mmt_cfg(MMT__SINGLE_NETWORK=True, MMT__SOFT_CE_WEIGHT=0.0, MMT__SOFT_TRI_WEIGHT=0.0)
    model = build_model(cfg)
    model.train()
    assert [pair[0] for pair in model.pairs()] == [model.net1]
    assert not any(p.requires_grad for p in model.net2.parameters())
    stats_before = model.mean_net2.backbone.bn1.running_mean.clone()
    mean1_before = model.mean_net1.backbone.bn1.running_mean.clone()
    with EventStorage():
        losses = model(_batch())
    assert set(losses) == {"loss_ce", "loss_tri"}
    sum(losses.values()).backward()
    assert model.net1.backbone.conv1.weight.grad is not None and model.net2.backbone.conv1.weight.grad is None
    torch.testing.assert_close(model.mean_net2.backbone.bn1.running_mean, stats_before)  # never forwarded
    assert not torch.equal(model.mean_net1.backbone.bn1.running_mean, mean1_before)  # its own BN statistics
    model.eval()
    images = _batch()["images"]
    (own,) = model.extract_mean_net_features(images.clone())
    expected = torch.nn.functional.normalize(model.mean_net1({"images": images.clone()}), dim=1)
    torch.testing.assert_close(own, expected)
    torch.testing.assert_close(model.extract_mean_features(images.clone()), expected)
