"""Tests for the synthetic Market-1501 / DukeMTMC-reID style data generator."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fastreid_mmt_lab import synthetic  # importing fastreid_mmt applies the fast-reid compat shims

from fastreid.data.datasets import DukeMTMC, Market1501  # noqa: E402  (after the shims)

from .conftest import load_tool, scratch_dir

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(REPO_ROOT, "tools", "make_synthetic_data.py")

HEIGHT = 64
WIDTH = 32
SEED = 3
IMAGES_PER_ID = 4
NUM_IDS = {"duke": 5, "market": 4}
NUM_QUERY_IDS = {"duke": 3, "market": 3}
CLI_TIMEOUT_S = 60
EXIT_ERROR = 2

MARKET_NAME = re.compile(r"^(\d{4})_c([1-6])s[1-6]_\d{6}_\d{2}\.jpg$")
DUKE_NAME = re.compile(r"^(\d{4})_c([1-8])_f\d{7}\.jpg$")
NAME_PATTERNS = {"market": MARKET_NAME, "duke": DUKE_NAME}


def _write(root: str, seed: int = SEED, workers: int = 1) -> dict:
    """Writes the tiny test pair (duke source, market target) under ``root``."""
    return synthetic.write_pair(
        root, source="duke", target="market",
        num_ids_source=NUM_IDS["duke"], num_ids_target=NUM_IDS["market"], images_per_id=IMAGES_PER_ID,
        num_query_ids_source=NUM_QUERY_IDS["duke"], num_query_ids_target=NUM_QUERY_IDS["market"],
        height=HEIGHT, width=WIDTH, seed=seed, workers=workers)


def _records(root: str, domain: str, split: str) -> list:
    """Returns (file name, pid, cam) for every image of a split, parsed from the names."""
    folder = os.path.join(synthetic.domain_dir(root, domain), split)
    out = []
    for name in sorted(os.listdir(folder)):
        match = NAME_PATTERNS[domain].match(name)
        assert match, f"unexpected file name {name}"
        out.append((name, int(match.group(1)), int(match.group(2))))
    return out


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Writes the tiny pair once for the module; yields (root, counts by domain)."""
    with scratch_dir(tmp_path_factory, "synthetic") as folder:
        root = str(folder)
        counts = _write(root)
        yield root, {counts[role]["domain"]: counts[role] for role in ("source", "target")}


def test_layout_and_file_names(pair):
    root, counts = pair
    assert os.path.isdir(os.path.join(root, "Market-1501-v15.09.15"))
    assert os.path.isdir(os.path.join(root, "DukeMTMC-reID"))
    for domain in synthetic.DOMAINS:
        for split, key in zip(synthetic.SPLIT_DIRS, ("train", "query", "gallery")):
            records = _records(root, domain, split)
            assert len(records) == counts[domain][f"{key}_images"] > 0
    assert counts["duke"]["train_images"] == NUM_IDS["duke"] * IMAGES_PER_ID
    assert counts["market"]["train_images"] == NUM_IDS["market"] * IMAGES_PER_ID


def test_fastreid_reads_both_layouts(pair):
    root, counts = pair
    for cls, domain in ((Market1501, "market"), (DukeMTMC, "duke")):
        ds = cls(root=root)
        expected = counts[domain]
        for key, data in (("train", ds.train), ("query", ds.query), ("gallery", ds.gallery)):
            num_pids, num_cams = ds.parse_data(data)
            background = expected["background_images"] if key == "gallery" else 0
            assert len(data) == expected[f"{key}_images"]
            assert num_pids == expected[f"{key}_ids"] + (1 if background else 0)
            assert num_cams == expected[f"{key}_cams"]
        assert expected["train_ids"] == NUM_IDS[domain]
        assert expected["query_ids"] == NUM_QUERY_IDS[domain]
        assert all(0 <= camid < expected["num_cams"] for _, _, camid in ds.query + ds.gallery)


def test_images_are_jpegs_of_requested_size(pair):
    root, _ = pair
    for domain in synthetic.DOMAINS:
        for split in synthetic.SPLIT_DIRS:
            for name, _, _ in _records(root, domain, split):
                with Image.open(os.path.join(synthetic.domain_dir(root, domain), split, name)) as img:
                    assert img.format == "JPEG"
                    assert img.mode == "RGB"
                    assert img.size == (WIDTH, HEIGHT)
                    assert np.asarray(img).std() > 0


@pytest.mark.slow
def test_deterministic_for_a_seed(pair, tmp_path):
    """Same seed, same bytes, however many worker processes draw them."""
    root, _ = pair
    again = str(tmp_path / "again")
    other = str(tmp_path / "other")
    _write(again, workers=2)
    _write(other, seed=SEED + 1)
    for domain in synthetic.DOMAINS:
        for split in synthetic.SPLIT_DIRS:
            first = os.path.join(synthetic.domain_dir(root, domain), split)
            second = os.path.join(synthetic.domain_dir(again, domain), split)
            names = sorted(os.listdir(first))
            assert names == sorted(os.listdir(second))
            for name in names:
                with open(os.path.join(first, name), "rb") as f1, open(os.path.join(second, name), "rb") as f2:
                    assert f1.read() == f2.read()
    train = synthetic.TRAIN_DIR
    assert sorted(os.listdir(os.path.join(synthetic.domain_dir(root, "market"), train))) != sorted(
        os.listdir(os.path.join(synthetic.domain_dir(other, "market"), train)))


def test_query_ids_have_cross_camera_gallery_matches(pair):
    root, _ = pair
    for domain in synthetic.DOMAINS:
        gallery_cams = collections.defaultdict(set)
        for _, pid, cam in _records(root, domain, synthetic.GALLERY_DIR):
            gallery_cams[pid].add(cam)
        for name, pid, cam in _records(root, domain, synthetic.QUERY_DIR):
            assert gallery_cams[pid] - {cam}, f"{domain} query {name} has no cross-camera gallery match"


def test_train_and_test_ids_disjoint_and_in_range(pair):
    root, _ = pair
    for domain in synthetic.DOMAINS:
        train = {pid for _, pid, _ in _records(root, domain, synthetic.TRAIN_DIR)}
        test = {pid for split in (synthetic.QUERY_DIR, synthetic.GALLERY_DIR)
                for _, pid, _ in _records(root, domain, split)}
        assert not train & test
        assert synthetic.BACKGROUND_PID not in train
        assert max(train | test) <= synthetic.DOMAIN_STYLES[domain].max_pid
    duke_test = {pid for _, pid, _ in _records(root, "duke", synthetic.GALLERY_DIR)}
    assert synthetic.BACKGROUND_PID not in duke_test


def test_library_refuses_non_empty_folder(pair):
    root, _ = pair
    with pytest.raises(FileExistsError, match="DukeMTMC-reID"):
        synthetic.write_domain(root, "duke", num_ids=1, num_query_ids=1, height=HEIGHT, width=WIDTH)


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="_c"):
        synthetic.write_domain(str(tmp_path / "run1_c2"), "market", num_ids=1, num_query_ids=1)
    with pytest.raises(ValueError):
        synthetic.write_domain(str(tmp_path), "viper", num_ids=1, num_query_ids=1)
    with pytest.raises(ValueError):
        synthetic.write_domain(str(tmp_path), "duke", num_ids=1, num_query_ids=1, images_per_id=1)
    with pytest.raises(ValueError, match="market"):
        synthetic.write_domain(str(tmp_path), "duke", num_ids=1, num_query_ids=1, num_background_images=1)
    with pytest.raises(ValueError):
        synthetic.write_pair(str(tmp_path), source="market", target="market")
    with pytest.raises(ValueError, match="1501"):
        synthetic.write_pair(str(tmp_path / "budget"), num_ids_target=synthetic.DOMAIN_STYLES["market"].max_pid)
    assert not (tmp_path / "budget").exists()  # checked before the source domain is written


@pytest.mark.slow
def test_cli_writes_refuses_and_forces(tmp_path, capsys):
    root = tmp_path / "data"
    args = ["--root", str(root), "--num-ids-source", "2", "--num-ids-target", "2",
            "--num-query-ids-source", "1", "--num-query-ids-target", "1", "--images-per-id", "2",
            "--height", str(HEIGHT), "--width", str(WIDTH), "--seed", str(SEED)]
    cli = load_tool("make_synthetic_data")
    assert cli.main(args) == 0
    assert "train: 2 ids / 4 images" in capsys.readouterr().out

    # As a script, from an unrelated working directory and without PYTHONPATH: the CLI must
    # find the package itself, and refuse the now non-empty folder, naming it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    refused = subprocess.run([sys.executable, CLI] + args, cwd=str(tmp_path), env=env, capture_output=True,
                             text=True, timeout=CLI_TIMEOUT_S)
    assert refused.returncode == EXIT_ERROR, refused.stderr
    assert str(root / "DukeMTMC-reID") in refused.stderr
    assert "--force" in refused.stderr

    stale = root / "DukeMTMC-reID" / "bounding_box_train" / "9999_c1_f0000001.jpg"
    stale.write_bytes(b"stale")
    assert cli.main(args + ["--force"]) == 0
    assert not stale.exists()
    assert len(os.listdir(root / "DukeMTMC-reID" / "bounding_box_train")) == 2 * 2
