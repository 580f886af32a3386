"""tools/review.py through its real command line on the tiny synthetic target: the blind page
and its pool from two checkpoints and a folder, simulated judgments and the score step (a
third checkpoint scored on the same judgments), and every bad input named, nothing overwritten."""

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest

from fastreid_mmt.retrieval.review_judgments import judgments_from_ids, load_judgments, save_judgments
from fastreid_mmt.retrieval.review_pool import ReviewModel, build_pool, load_pool, save_pool
from fastreid_mmt.retrieval.review_score import score_pool
from fastreid_mmt.retrieval.review_workflow import build_review, score_review

from .conftest import REPO, save_source_checkpoints, scratch_dir, small_mmt_cfg, train_net_env

REVIEW_PY = os.path.join(REPO, "tools", "review.py")
MARKET = "Market-1501-v15.09.15"
MARKET_SPLITS = ("query", "bounding_box_test")
CAMERA_RULE = r"c(\d)"
# fast-reid's Market-1501 file names: <pid>_c<camera>...
NAME = re.compile(r"([-\d]+)_c(\d)")
QUERIES, TOPK = 12, 5
NO_WORKERS = ["DATALOADER.NUM_WORKERS", "0"]
TIMEOUT = 600


def review(args, env_root, expect_ok=True):
    proc = subprocess.run([sys.executable, REVIEW_PY, *args], cwd=REPO, env=train_net_env(env_root),
                          capture_output=True, text=True, timeout=TIMEOUT)
    if expect_ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def snapshot(folder):
    """Every file under ``folder`` with its bytes' hash (to show nothing was overwritten)."""
    return {path: sha256(path) for path in glob.glob(os.path.join(folder, "**"), recursive=True)
            if os.path.isfile(path)}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_data):
    """A config, three random checkpoints, and an unlabelled folder of the tiny Market test images."""
    with scratch_dir(tmp_path_factory, "review") as folder:
        cfg = small_mmt_cfg()
        (folder / "cfg.yaml").write_text(cfg.dump())
        before, after, third = save_source_checkpoints(cfg, folder / "ckpt", seeds=(1, 2, 3))
        images = folder / "images"
        images.mkdir()
        for split in MARKET_SPLITS:
            for path in glob.glob(os.path.join(tiny_data, MARKET, split, "*.jpg")):
                shutil.copy(path, images)
        yield SimpleNamespace(folder=folder, cfg=str(folder / "cfg.yaml"), before=before, after=after, third=third,
                              images=str(images), data=tiny_data)


@pytest.fixture(scope="module")
def built(setup):
    out = setup.folder / "page"
    proc = review(["--config-file", setup.cfg, "--weights", setup.after, "--weights-before", setup.before,
                   "--images", setup.images, "--output", str(out), "--queries", str(QUERIES), "--topk", str(TOPK),
                   "--cameras", CAMERA_RULE, "--cross-camera", *NO_WORKERS], setup.folder)
    return SimpleNamespace(out=out, stdout=proc.stdout, pool=load_pool(str(out / "pool.json")))


def camera(path):
    return NAME.search(os.path.basename(path)).group(2)


@pytest.mark.slow
def test_pool_records_the_models_and_pools_their_cross_camera_top_k(setup, built):
    pool = built.pool
    assert [(m.name, m.weights, m.sha256) for m in pool.models] == [
        ("before", setup.before, sha256(setup.before)), ("after", setup.after, sha256(setup.after))]
    assert f"pool {pool.pool_id}" in built.stdout and len(pool.queries) == QUERIES
    for query in pool.queries:
        ranked = [query.ranked["before"], query.ranked["after"]]
        assert all(len(lists) == TOPK for lists in ranked)
        assert sorted(query.candidates) == sorted(set(ranked[0] + ranked[1]))
        assert all(camera(pool.gallery[g]) != camera(query.path) for g in query.candidates)
    shown = [camera(q.path) for q in pool.queries]
    available = [camera(p) for p in pool.gallery]
    drawn = {c: shown.count(c) for c in set(available)}
    for a in drawn:  # spread over the cameras: one more than another only when that one has no image left
        assert all(drawn[a] <= drawn[b] + 1 or drawn[b] == available.count(b) for b in drawn)


@pytest.mark.slow
def test_page_does_not_tell_which_model_found_what(setup, built):
    html = (built.out / "review.html").read_text()
    data = json.loads(re.search(r'<script id="review-data" type="application/json">(.*?)</script>', html,
                                re.S).group(1))
    assert set(data) == {"pool_id", "models", "queries"} and data["models"] == sorted(data["models"])
    assert [[c["g"] for c in q["candidates"]] for q in data["queries"]] == [q.candidates for q in built.pool.queries]
    assert all(set(c) == {"g", "image"} for q in data["queries"] for c in q["candidates"])
    for secret in ("before", "after", setup.before, setup.after, "ckpt", "distance"):
        assert secret not in html
    names = sorted(os.listdir(built.out / "images"))
    assert all(re.fullmatch(r"\d{5}\.jpg", name) for name in names)
    assert len(names) == QUERIES + len({g for q in built.pool.queries for g in q.candidates})
    assert not any(os.path.basename(p) in html for p in built.pool.gallery)


@pytest.mark.slow
def test_simulated_judgments_score_and_a_third_checkpoint(setup, tmp_path):
    out = tmp_path / "simulated"
    review(["--config-file", setup.cfg, "--weights", setup.after, "--weights-before", setup.before, "--images",
            "Market1501", "--output", str(out), "--queries", str(QUERIES), "--topk", str(TOPK), "--simulate-from-ids",
            *NO_WORKERS], setup.data)
    pool = load_pool(str(out / "pool.json"))
    judgments = out / "judgments-simulated.json"
    ids = [NAME.search(os.path.basename(p)).group(1) for p in pool.gallery]
    query_ids = [NAME.search(os.path.basename(q.path)).group(1) for q in pool.queries]
    assert json.loads(judgments.read_text()) == judgments_from_ids(pool, query_ids, ids)
    report_file = tmp_path / "scores.json"
    proc = review(["score", "--pool", str(out / "pool.json"), "--judgments", str(judgments), "--config-file",
                   setup.cfg, "--weights", setup.third, "--name", "third", "--output", str(report_file),
                   *NO_WORKERS], setup.data)
    report = json.loads(report_file.read_text())
    assert [m["name"] for m in report["models"]] == ["before", "after", "third"]
    third = report["models"][2]
    assert third["ranked"] == TOPK * report["judged"] and f"{third['unjudged']} of {third['ranked']}" in proc.stdout
    assert "after - before, precision@5" in proc.stdout and "third - after, AP" in proc.stdout
    expected = score_pool(pool, load_judgments(str(judgments), pool))  # the pool's models: same numbers
    assert report["models"][:2] == expected["models"]


@pytest.mark.slow
def test_one_checkpoint_only_is_a_named_error(setup, tmp_path):
    out = tmp_path / "out"
    proc = review(["--config-file", setup.cfg, "--weights", setup.after, "--images", setup.images, "--output",
                   str(out)], setup.folder, expect_ok=False)
    assert proc.returncode != 0 and "--weights-before: a review compares at least two checkpoints" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def small_pool(query_paths, gallery):
    """A hand-made pool: two fake models ranking the gallery in opposite orders."""
    models = [ReviewModel("before", "b.pth", "b" * 64), ReviewModel("after", "a.pth", "a" * 64)]
    rankings = {"before": [list(range(TOPK))] * len(query_paths),
                "after": [list(range(len(gallery) - 1, len(gallery) - 1 - TOPK, -1))] * len(query_paths)}
    return build_pool(models, query_paths, None, gallery, None, rankings, TOPK, "self", 0)


def test_bad_inputs_are_named_and_overwrite_nothing(setup, tmp_path):
    checkpoints = [("before", setup.before, "--weights-before"), ("after", setup.after, "--weights")]
    empty = tmp_path / "no_images"
    empty.mkdir()
    (empty / "notes.txt").write_text("no image here")
    with pytest.raises(ValueError, match=rf"--images: '{re.escape(str(empty))}' holds no image"):
        build_review(setup.cfg, checkpoints, str(empty), str(tmp_path / "out"))
    with pytest.raises(ValueError, match="--weights .* is the same checkpoint as --weights-before"):
        build_review(setup.cfg, [checkpoints[0], ("after", setup.before, "--weights")], setup.images,
                     str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="--weights: checkpoint not found: .*missing.pth"):
        build_review(setup.cfg, [checkpoints[0], ("after", str(tmp_path / "missing.pth"), "--weights")],
                     setup.images, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    # A review already in --output stays as it is.
    existing = tmp_path / "existing"
    existing.mkdir()
    gallery = sorted(glob.glob(os.path.join(setup.images, "*.jpg")))
    pool = small_pool(gallery[:3], gallery)
    save_pool(pool, str(existing / "pool.json"))
    (existing / "review.html").write_text("judged here")
    before = snapshot(existing)
    with pytest.raises(ValueError, match=rf"--output: {re.escape(str(existing))} already holds a review"):
        build_review(setup.cfg, checkpoints, setup.images, str(existing))
    # Judgments of another pool (other queries): named, and the report file is not written.
    other = small_pool(gallery[3:6], gallery)
    foreign = save_judgments(judgments_from_ids(other, [None] * 3, [None] * len(gallery)),
                             str(tmp_path / "foreign.json"))
    report = tmp_path / "scores.json"
    with pytest.raises(ValueError, match=rf"foreign\.json was made on pool {other.pool_id}, but --pool "
                                         rf".*pool\.json is pool {pool.pool_id}"):
        score_review(str(existing / "pool.json"), foreign, output=str(report))
    assert not report.exists() and snapshot(existing) == before
