"""tools/rank.py and fastreid_mmt.retrieval: rankings, AP against fast-reid's evaluator, the
contact sheets, and every bad-input message."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastreid.evaluation.rank import evaluate_rank
from fastreid.modeling import build_model

from fastreid_mmt.retrieval.ranking import (average_precision, blocked_topk, cosine_distance, encode_labels,
                                            same_identity_camera)

from .conftest import REPO, load_tool, save_source_checkpoints, scratch_dir, small_mmt_cfg, train_net_env

rank_main = load_tool("rank").main

RANK_PY = os.path.join(REPO, "tools", "rank.py")
MARKET = "Market-1501-v15.09.15"
# fast-reid's Market-1501 file names: <pid>_c<camera>...
NAME = re.compile(r"([-\d]+)_c(\d)")
TOPK = 5
# Tolerance on distances: ranks.csv writes 6 decimals; float32 products differ in the last bits.
DIST_TOL = 2e-6
NO_WORKERS = ["DATALOADER.NUM_WORKERS", "0"]


def labelled_copy(src, dst):
    """Copy a Market-layout split folder into ``<dst>/<pid>/<image>`` (a labelled folder)."""
    for name in sorted(os.listdir(src)):
        folder = os.path.join(dst, NAME.search(name).group(1))
        os.makedirs(folder, exist_ok=True)
        shutil.copy(os.path.join(src, name), folder)
    return str(dst)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_data):
    """A random-init MMT checkpoint and config, two plain checkpoints, labelled query / gallery
    folders copied from the tiny synthetic Market test split."""
    with scratch_dir(tmp_path_factory, "rank") as folder:
        cfg = small_mmt_cfg()
        plain1, plain2 = save_source_checkpoints(cfg, folder / "source")
        model = build_model(cfg)
        model.load_init_weights([plain1, plain2])
        model.reset_classifiers(torch.randn(7, cfg.MODEL.BACKBONE.FEAT_DIM))
        torch.save({"model": model.state_dict()}, folder / "mmt.pth")
        (folder / "mmt.yaml").write_text(cfg.dump())
        market = os.path.join(tiny_data, MARKET)
        yield SimpleNamespace(
            folder=folder, cfg=str(folder / "mmt.yaml"), mmt=str(folder / "mmt.pth"), plain1=plain1, plain2=plain2,
            query=labelled_copy(os.path.join(market, "query"), folder / "labelled" / "query"),
            gallery=labelled_copy(os.path.join(market, "bounding_box_test"), folder / "labelled" / "gallery"))


@pytest.fixture(scope="module")
def cli_run(setup):
    """tools/rank.py through its real command line: MMT after, a plain checkpoint before."""
    out = setup.folder / "out"
    args = ["--config-file", setup.cfg, "--weights", setup.mmt, "--weights-before", setup.plain2, "--query",
            setup.query, "--gallery", setup.gallery, "--topk", str(TOPK), "--output", str(out), "--max-rows", "4",
            *NO_WORKERS]
    proc = subprocess.run([sys.executable, RANK_PY, *args], cwd=REPO, env=train_net_env(setup.folder),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def read_outputs(folder):
    lines = {split: (folder / f"{split}.txt").read_text().splitlines() for split in ("query", "gallery")}
    feats = {split: np.load(folder / f"{split}.npy") for split in ("query", "gallery")}
    with open(folder / "ranks.csv", newline="") as f:
        ranks = list(csv.DictReader(f))
    return lines, feats, ranks, json.loads((folder / "summary.json").read_text())


def identity(path):
    return os.path.basename(os.path.dirname(path))


@pytest.mark.slow
@pytest.mark.parametrize("sub", ["", "before"])
def test_ranks_csv_is_the_brute_force_top_k_of_the_saved_features(cli_run, sub):
    lines, feats, ranks, _ = read_outputs(cli_run / sub)
    for split in ("query", "gallery"):
        assert feats[split].dtype == np.float32 and feats[split].shape[0] == len(lines[split])
        np.testing.assert_allclose(np.linalg.norm(feats[split], axis=1), 1.0, atol=1e-5)
    dist = 1.0 - feats["query"].astype(np.float64) @ feats["gallery"].astype(np.float64).T
    assert list(ranks[0]) == ["query", "rank", "gallery", "distance"] and len(ranks) == TOPK * len(lines["query"])
    for q, query in enumerate(lines["query"]):
        rows = [r for r in ranks if r["query"] == query]
        assert [int(r["rank"]) for r in rows] == list(range(1, TOPK + 1))
        order = np.argsort(dist[q], kind="stable")
        got = [lines["gallery"].index(r["gallery"]) for r in rows]
        np.testing.assert_allclose([float(r["distance"]) for r in rows], dist[q, order[:TOPK]], atol=DIST_TOL)
        np.testing.assert_allclose(dist[q, got], dist[q, order[:TOPK]], atol=DIST_TOL)  # same items up to ties
        distinct = np.diff(dist[q, order[:TOPK + 1]]) > DIST_TOL
        assert all(g == o for g, o, d in zip(got, order, distinct) if d)


def test_tool_map_equals_fastreid_evaluator_on_a_labelled_set(cli_run):
    """Without --drop-same-camera every gallery image is ranked; fast-reid's evaluator drops
    nothing either when queries and gallery have different cameras (0 / 1)."""
    for sub in ("", "before"):
        lines, feats, _, summary = read_outputs(cli_run / sub)
        q_ids = np.array([int(identity(p)) for p in lines["query"]])
        g_ids = np.array([int(identity(p)) for p in lines["gallery"]])
        distmat = cosine_distance(torch.from_numpy(feats["query"]), torch.from_numpy(feats["gallery"])).numpy()
        cmc, aps, _ = evaluate_rank(distmat, q_ids, g_ids, np.zeros_like(q_ids), np.ones_like(g_ids),
                                    use_cython=False)
        assert summary["evaluated_queries"] == len(aps) > 0
        assert summary["mAP"] == pytest.approx(float(np.mean(aps)), abs=1e-9)
        assert summary["rank1"] == pytest.approx(float(cmc[0]), abs=1e-6)  # fast-reid: float32


def test_contact_sheets_are_written(cli_run):
    from PIL import Image

    with Image.open(cli_run / "ranks.png") as sheet:
        width, height = sheet.size
    with open(cli_run / "ap.csv") as f:
        assert f.readline().strip() == "query,ap"
    assert width > (TOPK + 1) * 64 and height > 2 * 4 * 128  # 4 queries x (before, after)


def test_dataset_names_with_drop_same_camera_match_the_benchmark_protocol(setup, tmp_path, capsys):
    out = tmp_path / "market"
    assert rank_main(["--config-file", setup.cfg, "--weights", setup.plain1, "--query", "Market1501", "--gallery",
                      "Market1501", "--topk", "3", "--drop-same-camera", "--output", str(out), *NO_WORKERS]) == 0
    lines, feats, ranks, summary = read_outputs(out)
    (q_ids, q_cams), (g_ids, g_cams) = ([np.array([int(NAME.search(os.path.basename(p)).group(i)) for p in lines[s]])
                                         for i in (1, 2)] for s in ("query", "gallery"))
    for r in ranks:  # no same-identity same-camera gallery image is ranked
        q, g = lines["query"].index(r["query"]), lines["gallery"].index(r["gallery"])
        assert not (q_ids[q] == g_ids[g] and q_cams[q] == g_cams[g])
    distmat = cosine_distance(torch.from_numpy(feats["query"]), torch.from_numpy(feats["gallery"])).numpy()
    cmc, aps, _ = evaluate_rank(distmat, q_ids, g_ids, q_cams, g_cams, use_cython=False)
    assert summary["mAP"] == pytest.approx(float(np.mean(aps)), abs=1e-9)
    assert summary["rank1"] == pytest.approx(float(cmc[0]), abs=1e-6)  # fast-reid: float32


def test_exported_baseline_with_its_config_ranks_as_the_mmt_checkpoint(setup, cli_run, tmp_path):
    """tools/export_model.py's plain checkpoint + config.yaml: the same features as MMT.TEST_NET."""
    export_main = load_tool("export_model").main

    export_main(["--config-file", setup.cfg, "--weights", setup.mmt, "--output", str(tmp_path / "plain")])
    out = tmp_path / "ranked"
    assert rank_main(["--config-file", str(tmp_path / "plain" / "config.yaml"), "--weights",
                      str(tmp_path / "plain" / "model_final.pth"), "--query", setup.query, "--gallery", setup.gallery,
                      "--topk", str(TOPK), "--output", str(out), *NO_WORKERS]) == 0
    for split in ("query", "gallery"):
        assert (out / f"{split}.txt").read_text() == (cli_run / f"{split}.txt").read_text()
        np.testing.assert_allclose(np.load(out / f"{split}.npy"), np.load(cli_run / f"{split}.npy"), atol=1e-6)


def random_features(num, dim, seed):
    return F.normalize(torch.randn(num, dim, generator=torch.Generator().manual_seed(seed)), dim=1)


@pytest.mark.parametrize("query_block,gallery_block", [(4, 10), (7, 33), (29, 103), (1, 1)])
def test_blocked_top_k_equals_full_matrix_top_k(query_block, gallery_block):
    query, gallery, k = random_features(29, 16, 0), random_features(103, 16, 1), 7
    q_ids, g_ids = torch.randint(0, 9, (29,)).tolist(), torch.randint(0, 9, (103,)).tolist()
    q_cams, g_cams = torch.randint(0, 3, (29,)).tolist(), torch.randint(0, 3, (103,)).tolist()
    full = cosine_distance(query, gallery)
    for exclude in (None, same_identity_camera(q_ids, q_cams, g_ids, g_cams)):
        expected = full if exclude is None else full.masked_fill(exclude[0][:, None] == exclude[1][None], np.inf)
        want_dist, want_index = torch.sort(expected, dim=1)
        dist, index = blocked_topk(query, gallery, k, query_block, gallery_block, exclude)
        assert torch.equal(index, want_index[:, :k])
        torch.testing.assert_close(dist, want_dist[:, :k], atol=1e-6, rtol=0)


@pytest.mark.parametrize("drop", [False, True])
def test_average_precision_equals_fastreid_on_random_features(drop):
    query, gallery = random_features(31, 8, 2), random_features(120, 8, 3)
    gen = torch.Generator().manual_seed(4)
    q_ids, g_ids = torch.randint(0, 12, (31,), generator=gen), torch.randint(0, 10, (120,), generator=gen)
    q_cams, g_cams = torch.randint(0, 3, (31,), generator=gen), torch.randint(0, 3, (120,), generator=gen)
    q_codes, g_codes = encode_labels(q_ids.tolist(), g_ids.tolist())
    exclude = same_identity_camera(q_ids.tolist(), q_cams.tolist(), g_ids.tolist(), g_cams.tolist()) if drop else None
    ap = average_precision(query, gallery, q_codes, g_codes, query_block=5, exclude=exclude)
    cams = (q_cams.numpy(), g_cams.numpy()) if drop else (np.zeros(31, int), np.ones(120, int))
    _, aps, _ = evaluate_rank(cosine_distance(query, gallery).numpy(), q_ids.numpy(), g_ids.numpy(), *cams,
                              use_cython=False)
    np.testing.assert_allclose(ap[~torch.isnan(ap)].numpy(), aps, atol=1e-12)
    assert torch.isnan(ap).sum() == 31 - len(aps)  # queries whose id is not in the gallery


# ---- bad input: a non-zero exit and a message naming the thing ----

def fails(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        rank_main(argv)
    assert exc.value.code not in (0, None)
    return str(exc.value.code) + capsys.readouterr().err


def base_args(setup, tmp_path, weights=None, query=None, gallery=None, topk=TOPK):
    return ["--config-file", setup.cfg, "--weights", weights or setup.plain1, "--query", *(query or [setup.query]),
            "--gallery", gallery or setup.gallery, "--topk", str(topk), "--output", str(tmp_path / "out"), *NO_WORKERS]


@pytest.mark.slow
def test_missing_weights_file_exits_through_the_command_line(setup, tmp_path):
    missing = str(tmp_path / "nope.pth")
    proc = subprocess.run([sys.executable, RANK_PY, *base_args(setup, tmp_path, weights=missing)], cwd=REPO,
                          env=train_net_env(setup.folder), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert f"--weights: checkpoint not found: {missing}" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_unreadable_query_image_is_named(setup, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    good = os.path.join(setup.query, sorted(os.listdir(setup.query))[0])
    good = os.path.join(good, os.listdir(good)[0])
    message = fails(capsys, base_args(setup, tmp_path, query=[good, str(bad)]))
    assert f"--query: cannot read image {bad}" in message


def test_empty_gallery_is_refused(setup, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    message = fails(capsys, base_args(setup, tmp_path, gallery=str(tmp_path / "empty")))
    assert "--gallery" in message and "holds no image" in message


def test_unknown_gallery_is_refused(setup, tmp_path, capsys):
    message = fails(capsys, base_args(setup, tmp_path, gallery="NoSuchSet"))
    assert "--gallery: 'NoSuchSet' is neither an image file, a folder nor a registered fast-reid data set" in message


def test_topk_larger_than_the_gallery_is_refused(setup, tmp_path, capsys):
    small = tmp_path / "small" / "0001"
    small.mkdir(parents=True)
    first = os.path.join(setup.gallery, sorted(os.listdir(setup.gallery))[0])
    for name in sorted(os.listdir(first))[:2]:
        shutil.copy(os.path.join(first, name), small)
    message = fails(capsys, base_args(setup, tmp_path, gallery=str(small.parent), topk=3))
    assert "--topk 3 exceeds the gallery's 2 image(s)" in message


def test_weights_of_another_backbone_name_the_keys(setup, tmp_path, capsys):
    message = fails(capsys, base_args(setup, tmp_path) + ["MODEL.BACKBONE.DEPTH", "34x"])
    assert f"--weights: {setup.plain1} does not match the configured architecture" in message
    assert "missing: backbone.layer1.2." in message


def test_mmt_checkpoint_with_missing_and_misshapen_keys_names_them(setup, tmp_path, capsys):
    state = torch.load(setup.plain1, weights_only=True)["model"]
    del state["backbone.conv1.weight"]
    state["heads.bottleneck.0.weight"] = torch.ones(3)
    broken = tmp_path / "broken-mmt.pth"
    torch.save({"model": {f"mean_net1.{k}": v for k, v in state.items()}}, broken)
    message = fails(capsys, base_args(setup, tmp_path, weights=str(broken)))
    assert "missing: backbone.conv1.weight" in message and "wrong shape: heads.bottleneck.0.weight" in message


def test_config_keys_swallowed_by_the_query_list_are_pointed_out(setup, tmp_path, capsys):
    argv = ["--config-file", setup.cfg, "--weights", setup.plain1, "--gallery", setup.gallery, "--output",
            str(tmp_path), "--query", setup.query, "MODEL.DEVICE", "cpu"]
    assert "looks like a config key" in fails(capsys, argv)


def test_mmt_checkpoint_without_the_evaluated_network_names_it(setup, tmp_path, capsys):
    state = torch.load(setup.plain1, weights_only=True)["model"]
    students_only = tmp_path / "students.pth"
    torch.save({"model": {f"net1.{k}": v for k, v in state.items()}}, students_only)
    message = fails(capsys, base_args(setup, tmp_path, weights=str(students_only)))
    assert "holds no 'mean_net1.*' weights, which MMT.TEST_NET 'mean_net1' evaluates" in message


def test_missing_query_file_is_named(setup, tmp_path, capsys):
    missing = str(tmp_path / "nobody.jpg")
    good = os.path.join(setup.query, sorted(os.listdir(setup.query))[0])
    good = os.path.join(good, os.listdir(good)[0])
    assert f"--query: image not found: {missing}" in fails(capsys, base_args(setup, tmp_path, query=[good, missing]))


def test_drop_same_camera_needs_cameras(setup, tmp_path, capsys):
    message = fails(capsys, ["--drop-same-camera", *base_args(setup, tmp_path)])
    assert "--drop-same-camera needs the identities and cameras of both query and gallery" in message


def test_first_queries_per_camera_are_chosen_by_path_alone():
    from fastreid_mmt.retrieval.image_sets import ImageSet, first_per_camera

    images = ImageSet(["d.jpg", "a.jpg", "c.jpg", "b.jpg", "e.jpg"], ["1", "2", "3", "4", "5"],
                      ["c2", "c1", "c2", "c1", "c3"], "five")
    chosen = first_per_camera(images, 1)
    assert chosen.paths == ["a.jpg", "c.jpg", "e.jpg"] and chosen.identities == ["2", "3", "5"]
    assert first_per_camera(images, 2).paths == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]
    assert first_per_camera(ImageSet(["b.jpg", "a.jpg"]), 1).paths == ["a.jpg"]  # no cameras: the first
    with pytest.raises(ValueError, match="at least 1"):
        first_per_camera(images, 0)
