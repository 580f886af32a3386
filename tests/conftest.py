"""Shared fixtures: small fast-reid configs (CPU, small backbones and inputs)."""

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

# fast-reid reads FASTREID_DATASETS once, when fastreid.data.build is imported: point it at a
# per-session folder before anything imports fastreid. Never at the user's own FASTREID_DATASETS:
# the suite writes synthetic Market-1501 / DukeMTMC-reID folders there and removes the folder at
# the end. Child processes that import this module reuse the session's folder
# (FASTREID_MMT_TEST_DATA, inherited).
# (no random name: fast-reid's id regex ``([-\d]+)_c(\d)`` runs on the full path, and a random
# suffix could contain such a run)
_OWNS_DATA = "FASTREID_MMT_TEST_DATA" not in os.environ  # this process made the folder (not a child)
_DATA = os.environ.get("FASTREID_MMT_TEST_DATA") or os.path.join(tempfile.gettempdir(),
                                                                 f"fastreid-mmt-data-pid{os.getpid()}")
os.makedirs(_DATA, exist_ok=True)
os.environ["FASTREID_MMT_TEST_DATA"] = _DATA
os.environ["FASTREID_DATASETS"] = _DATA

import pytest  # noqa: E402

import fastreid_mmt  # noqa: E402,F401
from fastreid_mmt.engine.setup import build_cfg  # noqa: E402

from fastreid_mmt_lab.recipes import QUICK_COMMON  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_NET = os.path.join(REPO, "tools", "train_net.py")

# The tiny runs' input, batch and arithmetic (32x16, float32): the quick demo's, one definition.
TINY_RUN_OPTS = list(QUICK_COMMON)
SMALL_INPUT = [64, 32]


def load_tool(name):
    """``tools/<name>.py`` as a module, to call its functions (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"tools_{name}", os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


TINY_DATA = dict(num_ids_source=20, num_ids_target=20, images_per_id=8, num_query_ids_source=8,
                 num_query_ids_target=8, height=64, width=32, seed=0)


@contextlib.contextmanager
def scratch_dir(tmp_path_factory, name):
    """A fresh folder for a module- or session-scoped fixture, removed at its teardown.

    pytest keeps ``tmp_path_factory`` folders until the session ends; the checkpoints the
    suite writes (up to ~360 MB each for four ResNet-18 and two Adam states) would otherwise
    pile up to several GB on CI's small disk.
    """
    path = tmp_path_factory.mktemp(name)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_data():
    """A tiny synthetic Duke-layout source / Market-layout target under FASTREID_DATASETS."""
    from fastreid_mmt_lab.synthetic import write_pair

    root = os.environ["FASTREID_DATASETS"]
    write_pair(root, overwrite=True, **TINY_DATA)
    return root


# Peak size of the whole suite's files in pytest's temp folder (measured: 3.4 GB on a fresh clone).
SUITE_DISK_BYTES = 3.5e9


def pytest_sessionstart(session):
    """Say up front, even under ``-q``, when the temp folder's disk is too small for the whole suite.

    A full disk otherwise shows as dozens of unrelated ``could not create numbered dir`` errors.
    """
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < SUITE_DISK_BYTES:
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"WARNING: {free / 1e9:.1f} GB free in {tempfile.gettempdir()}, the whole suite needs "
            f"~{SUITE_DISK_BYTES / 1e9:.1f} GB: expect 'No space left on device' errors", yellow=True)


def pytest_sessionfinish(session, exitstatus):
    """Remove the session's data folder (made at import, whether or not a test wrote to it)."""
    if _OWNS_DATA:
        shutil.rmtree(_DATA, ignore_errors=True)


def save_source_checkpoints(cfg, folder, seeds=(1, 2)):
    """Two randomly initialised Baseline checkpoints standing in for source pre-training."""
    from fastreid_mmt_lab.random_weights import save_base_networks

    return save_base_networks(cfg, folder, seeds)


@pytest.fixture(scope="module")
def random_init(tmp_path_factory):
    """Two random source checkpoints of :func:`small_mmt_cfg`, once per test module."""
    with scratch_dir(tmp_path_factory, "source") as folder:
        yield save_source_checkpoints(small_mmt_cfg(), folder)


def train_net_command(args):
    """``python tools/train_net.py ARGS`` as an argument list."""
    return [sys.executable, TRAIN_NET, *args]


def train_net_env(data_root):
    """Environment of a ``tools/train_net.py`` child reading data sets from ``data_root``."""
    return dict(os.environ, FASTREID_DATASETS=str(data_root), PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")


def run_train_net(args, data_root, timeout=600, expect_ok=True):
    """Run ``tools/train_net.py ARGS`` through the real command line from the repository root.

    With ``expect_ok`` assert a zero exit status (showing the log tail otherwise). Returns the
    finished process (``stdout``, ``stderr``, ``returncode``).
    """
    proc = subprocess.run(train_net_command(args), cwd=REPO, env=train_net_env(data_root), capture_output=True,
                          text=True, timeout=timeout)
    if expect_ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc
