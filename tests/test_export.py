"""tools/export_model.py: a mean net becomes a plain fast-reid Baseline with identical features;
the evaluated network (MMT.TEST_NET) becomes an ONNX graph with the same features."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from fastreid.data.data_utils import read_image
from fastreid.data.transforms import build_transforms
from fastreid.modeling import build_model

from .conftest import REPO, SMALL_INPUT, load_tool, save_source_checkpoints, small_mmt_cfg

_export_model = load_tool("export_model")
export, export_main = _export_model.export, _export_model.main

# Images fed to the ONNX graph: not the exporter's example batch size (the axis is dynamic).
ONNX_BATCH = 7
ONNX_TOLERANCE = 1e-4

# Runs in a fresh interpreter that never imports fastreid_mmt.
PLAIN_FASTREID = """
import sys, torch
from fastreid.config import get_cfg
from fastreid.modeling import build_model
from fastreid.utils.checkpoint import Checkpointer
cfg = get_cfg(); cfg.merge_from_file(sys.argv[1]); cfg.MODEL.DEVICE = "cpu"
model = build_model(cfg); Checkpointer(model).load(cfg.MODEL.WEIGHTS); model.eval()
images = torch.load(sys.argv[2])
with torch.no_grad():
    torch.save(model(images.clone()), sys.argv[3])
assert "fastreid_mmt" not in sys.modules
"""


@pytest.mark.slow
@pytest.mark.parametrize("net", ["mean_net1", "mean_net2"])
def test_exported_mean_net_gives_identical_features_in_plain_fastreid(tmp_path, net):
    cfg = small_mmt_cfg()
    model = build_model(cfg)
    model.load_init_weights(save_source_checkpoints(cfg, tmp_path))
    model.reset_classifiers(torch.randn(7, 512))
    torch.save({"model": model.state_dict()}, tmp_path / "mmt.pth")
    weights, cfg_path = export(cfg, str(tmp_path / "mmt.pth"), str(tmp_path / "out"), net)
    images = torch.rand(4, 3, *SMALL_INPUT) * 255
    torch.save(images, tmp_path / "images.pth")
    proc = subprocess.run([sys.executable, "-c", PLAIN_FASTREID, cfg_path, str(tmp_path / "images.pth"),
                           str(tmp_path / "feats.pth")], capture_output=True, text=True, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    model.eval()
    model.test_net = net
    expected = model({"images": images.clone()})
    torch.testing.assert_close(torch.load(tmp_path / "feats.pth"), expected)


def test_export_refuses_the_averaged_network(tmp_path):
    with pytest.raises(ValueError, match="--net must be one of"):
        export(small_mmt_cfg(), "x.pth", str(tmp_path), "mean")


def test_export_writes_the_checkpoints_network_and_refuses_one_that_does_not_fit(tmp_path):
    cfg = small_mmt_cfg(MMT__TEST_NET="mean")
    model = build_model(cfg)
    stage_one = save_source_checkpoints(cfg, tmp_path)
    model.load_init_weights(stage_one)
    model.reset_classifiers(torch.randn(7, 512))  # 7 pseudo identities, the config says 8
    torch.save({"model": model.state_dict()}, tmp_path / "mmt.pth")
    (tmp_path / "mmt.yaml").write_text(cfg.dump())
    # MMT.TEST_NET mean is two networks: --output without --net exports mean_net1
    export_main(["--config-file", str(tmp_path / "mmt.yaml"), "--weights", str(tmp_path / "mmt.pth"),
                 "--output", str(tmp_path / "out")])
    exported = torch.load(tmp_path / "out" / "model_final.pth")["model"]
    expected = model.mean_net1.state_dict()
    assert exported.keys() == expected.keys()
    for key, value in expected.items():  # the classifier too: 7 rows, and NUM_CLASSES 7
        torch.testing.assert_close(exported[key], value)
    assert "NUM_CLASSES: 7" in (tmp_path / "out" / "config.yaml").read_text()
    # every weight comes from the checkpoint: the ImageNet file the training config names need not exist here
    imagenet = small_mmt_cfg(MODEL__BACKBONE__PRETRAIN=True,
                             MODEL__BACKBONE__PRETRAIN_PATH=str(tmp_path / "absent.pth"))
    export(imagenet, str(tmp_path / "mmt.pth"), str(tmp_path / "out2"), "mean_net2")

    with pytest.raises(ValueError, match="--weights: .*seed1.* is not an MMT checkpoint"):
        export(cfg, stage_one[0], str(tmp_path / "stage1"), "mean_net1")
    osnet = small_mmt_cfg("build_osnet_backbone", "x0_25", 128)
    with pytest.raises(ValueError, match="--weights: .*mmt.pth does not match the configured architecture"):
        export(osnet, str(tmp_path / "mmt.pth"), str(tmp_path / "osnet"), "mean_net1")
    assert not (tmp_path / "stage1").exists() and not (tmp_path / "osnet").exists()
    with pytest.raises(SystemExit, match="export_model.py: error: --weights: checkpoint not found: .*nope.pth"):
        export_main(["--config-file", str(tmp_path / "mmt.yaml"), "--weights", str(tmp_path / "nope.pth"),
                     "--output", str(tmp_path / "nope")])


@pytest.mark.slow
@pytest.mark.parametrize("net", ["mean_net1", "mean"])
def test_onnx_features_equal_pytorch_on_real_images(tmp_path, tiny_data, net):
    ort = pytest.importorskip("onnxruntime", reason="the onnx install extra is not installed")
    cfg = small_mmt_cfg(MMT__TEST_NET=net)
    model = build_model(cfg)
    model.load_init_weights(save_source_checkpoints(cfg, tmp_path))
    model.reset_classifiers(torch.randn(7, 512))
    torch.save({"model": model.state_dict()}, tmp_path / "mmt.pth")
    (tmp_path / "mmt.yaml").write_text(cfg.dump())
    onnx_path = tmp_path / "out" / "mmt.onnx"
    export_main(["--config-file", str(tmp_path / "mmt.yaml"), "--weights", str(tmp_path / "mmt.pth"), "--onnx",
                 str(onnx_path)])
    query = os.path.join(tiny_data, "Market-1501-v15.09.15", "query")
    transform = build_transforms(cfg, is_train=False)
    images = torch.stack([transform(read_image(os.path.join(query, name)))
                          for name in sorted(os.listdir(query))[:ONNX_BATCH]])
    model.eval()
    expected = model.inference(images.clone()).numpy()  # MMT's own evaluation (MMT.TEST_NET)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"images": images.numpy()})
    assert got.shape == expected.shape == (ONNX_BATCH, 512)
    assert np.abs(got - expected).max() < ONNX_TOLERANCE


def test_export_needs_an_output(tmp_path):
    with pytest.raises(SystemExit):
        export_main(["--config-file", os.path.join(REPO, "configs", "MMT", "Base-MMT.yml"), "--weights", "x.pth"])


def test_onnx_export_without_the_extra_names_it(monkeypatch):
    from fastreid_mmt.modeling.onnx_export import check_onnx_available

    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript now raises ImportError
    with pytest.raises(ImportError, match=r"ONNX export needs the 'onnxscript' package: pip install -e \".\[onnx\]\""):
        check_onnx_available()
