"""Blind review scoring on hand-made pools: per-query metrics, the pooled union, the judgments
file's checks, bootstrap intervals and verdicts, and scoring a model that is not in the pool.
No network, no model, no browser: these run wherever the suite runs."""

import json

import numpy as np
import pytest

from fastreid_mmt.retrieval.review_judgments import (JudgmentsError, judgments_from_ids, load_judgments,
                                                     save_judgments)
from fastreid_mmt.retrieval.review_pool import PoolError, ReviewModel, build_pool, load_pool, save_pool
from fastreid_mmt.retrieval.review_score import (AP, PRECISION, RANK1, format_report, ranked_scores,
                                                 score_pool)

TOPK = 4
GALLERY_SIZE = 40
SEED = 0
# Identities of the synthetic gallery: image g shows person g // IMAGES_PER_ID.
IMAGES_PER_ID = 4


def models(*names):
    return [ReviewModel(name, f"/ckpt/{name}.pth", f"{i:064x}") for i, name in enumerate(names, 1)]


def identities():
    return [g // IMAGES_PER_ID for g in range(GALLERY_SIZE)]


def good_ranking(query_id, rng):
    """Top-k starting with most of the query's person's images (plus noise)."""
    same = [query_id * IMAGES_PER_ID + i for i in range(IMAGES_PER_ID)]
    others = [g for g in rng.permutation(GALLERY_SIZE).tolist() if g not in same]
    return (same[:TOPK - 1] + others)[:TOPK]


def bad_ranking(query_id, rng):
    """Top-k with the query's person at rank 3 only (when it fits)."""
    same = query_id * IMAGES_PER_ID
    others = [g for g in rng.permutation(GALLERY_SIZE).tolist() if g // IMAGES_PER_ID != query_id]
    return (others[:2] + [same] + others[2:])[:TOPK]


def make_pool(query_ids, rankers=(bad_ranking, good_ranking), names=("before", "after"), seed=SEED):
    rng = np.random.default_rng(seed)
    rankings = {name: [ranker(q, rng) for q in query_ids] for name, ranker in zip(names, rankers)}
    return build_pool(models(*names), [f"/q/{i}.jpg" for i in range(len(query_ids))], None,
                      [f"/g/{g}.jpg" for g in range(GALLERY_SIZE)], None, rankings, TOPK, "self", seed)


def test_ranked_scores_by_hand():
    precision, rank1, ap = ranked_scores([5, 3, 7, 9], {3, 9, 11}, k=4)
    assert precision == pytest.approx(2 / 4) and rank1 == 0.0
    assert ap == pytest.approx((1 / 2 + 2 / 4) / 3)  # 11 is a known match no model ranked
    assert ranked_scores([3], {3}, k=1) == (1.0, 1.0, 1.0)
    assert ranked_scores([], {3}, k=2) == (0.0, 0.0, 0.0)


def test_pool_is_the_shuffled_union_and_its_id_follows_the_models():
    pool = make_pool([0, 1, 2])
    for query in pool.queries:
        union = list(dict.fromkeys(query.ranked["before"] + query.ranked["after"]))
        assert sorted(query.candidates) == sorted(union) and len(query.candidates) == len(union)
    assert make_pool([0, 1, 2]).pool_id == pool.pool_id  # seeded
    assert any(a.candidates != b.candidates for a, b in zip(pool.queries, make_pool([0, 1, 2], seed=1).queries))
    retrained = models("before", "after")
    retrained[1].sha256 = "e" * 64  # another checkpoint, the same rankings
    other = build_pool(retrained, [q.path for q in pool.queries], None, pool.gallery, None,
                       {name: [q.ranked[name] for q in pool.queries] for name in ("before", "after")}, TOPK,
                       "self", SEED)
    assert other.pool_id != pool.pool_id


def test_pool_file_round_trip_and_tampering(tmp_path):
    pool = make_pool([0, 1, 2])
    path = save_pool(pool, tmp_path / "pool.json")
    assert load_pool(str(path)) == pool
    data = json.loads(path.read_text())
    data["queries"][0]["ranked"]["after"].reverse()
    path.write_text(json.dumps(data))
    with pytest.raises(PoolError, match="edited after it was written"):
        load_pool(str(path))
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(PoolError, match="not a review pool file"):
        load_pool(str(tmp_path / "other.json"))


def test_simulated_judgments_score_like_the_ranked_true_ids(tmp_path):
    query_ids = list(range(GALLERY_SIZE // IMAGES_PER_ID))
    pool = make_pool(query_ids)
    path = save_judgments(judgments_from_ids(pool, query_ids, identities()), tmp_path / "j.json")
    judged = load_judgments(str(path), pool)
    report = score_pool(pool, judged, resamples=200)
    before, after = (m["metrics"] for m in report["models"])
    assert after[RANK1]["mean"] == 1.0 and before[RANK1]["mean"] == 0.0
    assert before[PRECISION]["mean"] == pytest.approx(1 / TOPK)
    # Pooled AP: the judged matches of a query are the union of both lists' true matches.
    assert after[AP]["mean"] == pytest.approx(1.0) and before[AP]["mean"] == pytest.approx(1 / 3 / (TOPK - 1))
    assert report["scored"] == report["judged"] == len(query_ids)
    assert all(m["unjudged"] == 0 for m in report["models"])


def test_interval_excludes_zero_for_a_clear_winner_and_includes_it_for_a_tie(tmp_path):
    rng = np.random.default_rng(SEED)
    query_ids = rng.integers(0, GALLERY_SIZE // IMAGES_PER_ID, size=50).tolist()
    pool = make_pool(query_ids)
    judged = {q: set(s["same"]) for q, s in
              ((int(k), v) for k, v in judgments_from_ids(pool, query_ids, identities())["queries"].items())}
    report = score_pool(pool, judged, resamples=500)
    for diff in report["differences"]:
        assert diff["low"] > 0 and "after is better than before" in diff["verdict"]
    tie = score_pool(make_pool(query_ids, rankers=(good_ranking, good_ranking)), judged, resamples=500)
    assert all("too few judgments to tell" in d["verdict"] for d in tie["differences"])
    assert score_pool(pool, judged, resamples=500) == report  # seeded bootstrap
    few = score_pool(pool, {q: judged[q] for q in range(3)}, resamples=500)
    assert all("fewer than" in d["verdict"] for d in few["differences"])
    assert "after - before, precision@4" in format_report(report)


def test_a_third_model_reports_its_unjudged_candidates(tmp_path):
    query_ids = [0, 1, 2, 3]
    pool = make_pool(query_ids)
    judged = {q: {g for g in query.candidates if identities()[g] == query_ids[q]} for q, query in
              enumerate(pool.queries)}
    outside = [[g for g in range(GALLERY_SIZE) if g not in query.candidates][:TOPK] for query in pool.queries]
    third = ReviewModel("new-1", "/ckpt/new.pth", "f" * 64)
    report = score_pool(pool, judged, extra=[(third, outside)], resamples=100)
    new = report["models"][2]
    assert not new["in_pool"] and new["unjudged"] == new["ranked"] == TOPK * len(query_ids)
    assert new["metrics"][PRECISION]["mean"] == 0.0
    assert "lower bounds" in format_report(report)
    assert {(d["first"], d["second"]) for d in report["differences"]} == {
        ("before", "after"), ("before", "new-1"), ("after", "new-1")}


def test_judgments_of_another_pool_or_other_models_are_refused(tmp_path):
    query_ids = [0, 1, 2]
    pool = make_pool(query_ids)
    path = str(save_judgments(judgments_from_ids(pool, query_ids, identities()), tmp_path / "j.json"))
    other_queries = make_pool([3, 4, 5])
    with pytest.raises(JudgmentsError, match=r"j\.json was made on pool .* but --pool .* is pool"):
        load_judgments(path, other_queries, "other/pool.json")
    other_models = make_pool(query_ids, names=("before", "later"))
    other_models.models[1].sha256 = "e" * 64
    with pytest.raises(JudgmentsError, match=r"j\.json judges the rankings of other models"):
        load_judgments(path, other_models, "other/pool.json")
    data = json.loads(open(path).read())
    data["queries"]["0"]["same"].append(next(g for g in range(GALLERY_SIZE) if g not in pool.queries[0].candidates))
    (tmp_path / "stray.json").write_text(json.dumps(data))
    with pytest.raises(JudgmentsError, match="not among its pooled candidates"):
        load_judgments(str(tmp_path / "stray.json"), pool)
    with pytest.raises(FileNotFoundError, match="--judgments: judgments file not found"):
        load_judgments(str(tmp_path / "missing.json"), pool)


def test_nothing_to_score_is_a_named_error():
    pool = make_pool([0, 1])
    with pytest.raises(ValueError, match="no query is judged yet"):
        score_pool(pool, {})
    with pytest.raises(ValueError, match="has a candidate marked the same person"):
        score_pool(pool, {0: set(), 1: set()})
    judged = {0: {pool.queries[0].candidates[0]}}
    with pytest.raises(ValueError, match=f"--k {pool.topk + 1} exceeds the pool's --topk {pool.topk}"):
        score_pool(pool, judged, k=pool.topk + 1)
    assert score_pool(pool, judged, k=pool.topk, resamples=10)["k"] == pool.topk
