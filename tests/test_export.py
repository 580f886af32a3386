"""tools/export_model.py: a mean net becomes a plain fast-reid Baseline with identical features."""

import os
import subprocess
import sys

import pytest
import torch

from fastreid.modeling import build_model

from .conftest import REPO, SMALL_INPUT, save_source_checkpoints, small_mmt_cfg

sys.path.insert(0, os.path.join(REPO, "tools"))
from export_model import export  # noqa: E402

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
