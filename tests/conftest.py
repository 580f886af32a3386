"""Shared fixtures: small fast-reid configs (CPU, small backbones and inputs)."""

import os
import tempfile

# fast-reid reads FASTREID_DATASETS once, when fastreid.data.build is imported: point it at a
# per-session folder before anything imports fastreid.
os.environ.setdefault("FASTREID_DATASETS", tempfile.mkdtemp(prefix="fastreid-mmt-data-"))

import pytest  # noqa: E402

import fastreid_mmt  # noqa: E402,F401
from fastreid_mmt.engine.setup import build_cfg  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_INPUT = [64, 32]


def small_mmt_cfg(backbone="build_resnet_backbone", depth="18x", feat_dim=512, **overrides):
    """The MMT base config shrunk to a small CPU network."""
    opts = [
        "MODEL.BACKBONE.NAME", backbone, "MODEL.BACKBONE.DEPTH", depth, "MODEL.BACKBONE.FEAT_DIM", feat_dim,
        "MODEL.BACKBONE.PRETRAIN", False, "MODEL.HEADS.NUM_CLASSES", 8,
        "INPUT.SIZE_TRAIN", SMALL_INPUT, "INPUT.SIZE_TEST", SMALL_INPUT,
        "SOLVER.IMS_PER_BATCH", 16, "DATALOADER.NUM_WORKERS", 0, "TEST.IMS_PER_BATCH", 32,
    ]
    for key, value in overrides.items():
        opts += [key.replace("__", "."), value]
    return build_cfg(os.path.join(REPO, "configs", "MMT", "Base-MMT.yml"), opts)


@pytest.fixture
def mmt_cfg():
    return small_mmt_cfg()
