"""Scores of ranked lists on pooled judgments, with bootstrap intervals over the queries.

For each judged query with at least one candidate marked the same person (the *scored*
queries; as in fast-reid's evaluator a query without any match counts for no model):

* precision@k: the share of the model's first ``k`` candidates marked the same person;
* rank-1: whether its first candidate is;
* AP: average precision of its ranked list, over the matches the judgments know for the query
  (pooled AP: a match no model ranked is unknown; one ranked by another model and missed by
  this one lowers its AP).

A candidate no one judged (a model not in the pool, ranked later against the same gallery)
counts as not the same person; how many there are is reported, since the scores of that model
are then lower bounds. Intervals are percentile bootstrap intervals: the scored queries are
resampled with replacement (seeded), the same resamples for every model, so the difference of
two models is a paired one.
"""

import itertools

import numpy as np

PRECISION, RANK1, AP = "precision@k", "rank-1", "AP"
METRICS = (PRECISION, RANK1, AP)
DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0
# Fewer scored queries than this: no verdict, whatever the interval says.
MIN_QUERIES_FOR_VERDICT = 5
# Hex digits of a checkpoint hash shown in the report.
_SHORT_HASH = 12


def ranked_scores(ranked, relevant, k):
    """``(precision@k, rank-1, AP)`` of one ranked list.

    Args:
        ranked (Sequence[int]): gallery indices, nearest first.
        relevant (set[int]): the judged matches of the query (not empty).
        k (int): precision cutoff.
    """
    hits = np.array([g in relevant for g in ranked], dtype=np.float64)
    precision = hits[:k].sum() / k
    rank1 = hits[0] if len(hits) else 0.0
    precision_at_hits = np.cumsum(hits) / np.arange(1, len(hits) + 1) * hits
    return float(precision), float(rank1), float(precision_at_hits.sum() / len(relevant))


def per_query_scores(rankings, judged, k):
    """Scores of every model on the scored queries.

    Args:
        rankings (dict[str, list[list[int]]]): each model's ranked list per pool query.
        judged (dict[int, set[int]]): judged query -> its matches.
        k (int): precision cutoff.

    Returns:
        tuple: the scored query indices (sorted) and a ``[queries, models, metrics]`` array
        (models in the order of ``rankings``).
    """
    scored = sorted(q for q, same in judged.items() if same)
    values = np.array([[ranked_scores(lists[q], judged[q], k) for lists in rankings.values()] for q in scored],
                      dtype=np.float64).reshape(len(scored), len(rankings), len(METRICS))
    return scored, values


def unjudged_count(lists, judged, candidates):
    """How many entries of a model's lists, over the judged queries, no one judged."""
    return sum(1 for q in judged for g in lists[q] if g not in candidates[q])


def bootstrap_weights(count, resamples, seed):
    """``[resamples, count]`` how often each query is drawn in each resample (seeded)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(count, np.full(count, 1.0 / count), size=resamples).astype(np.float64)


def interval(values, weights, confidence):
    """Mean of ``values`` (``[queries, ...]``) and its bootstrap percentile interval."""
    samples = np.tensordot(weights, values, axes=1) / values.shape[0]
    low, high = np.quantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
    return values.mean(axis=0), low, high


def verdict(first, second, low, high, count, confidence, unjudged=None):
    """Plain words on ``second - first`` with its interval ``[low, high]``.

    Args:
        first (str): one model's name.
        second (str): the other's.
        low (float): the interval's lower end.
        high (float): its upper end.
        count (int): scored queries.
        confidence (float): the interval's level.
        unjudged (dict[str, int] | None): unjudged candidates of each model (a loser with some
            may only look worse).
    """
    if count < MIN_QUERIES_FOR_VERDICT:
        return (f"too few judgments to tell {first} and {second} apart: {count} scored queries (fewer than "
                f"{MIN_QUERIES_FOR_VERDICT}); judge more queries")
    if low <= 0 <= high:
        return (f"too few judgments to tell {first} and {second} apart (the {confidence:.0%} interval includes 0); "
                f"judge more queries")
    winner, loser = (second, first) if low > 0 else (first, second)
    text = f"{winner} is better than {loser} (the {confidence:.0%} interval excludes 0)"
    missing = (unjudged or {}).get(loser, 0)
    if missing:
        text += f", but {missing} of {loser}'s candidates are unjudged, so its scores are lower bounds"
    return text


def check_score_options(k, resamples, confidence):
    """ValueError naming the option unless ``k`` (or None) and ``resamples`` are >= 1 and
    ``0 < confidence < 1``."""
    for option, value in (("--k", k), ("--resamples", resamples)):
        if value is not None and value < 1:
            raise ValueError(f"{option} must be at least 1, got {value}")
    if not 0 < confidence < 1:
        raise ValueError(f"--confidence must lie strictly between 0 and 1, got {confidence}")


def score_pool(pool, judged, extra=(), k=None, resamples=DEFAULT_RESAMPLES, seed=DEFAULT_SEED,
               confidence=DEFAULT_CONFIDENCE):
    """Score the pool's models (and models ranked later on the same queries) on judgments.

    Args:
        pool (ReviewPool): the pool.
        judged (dict[int, set[int]]): from :func:`~.review_judgments.load_judgments`.
        extra (Sequence[tuple[ReviewModel, list[list[int]]]]): other models with their ranked
            lists of the pool's queries against its gallery.
        k (int | None): precision cutoff (default: the pool's top-k).
        resamples (int): bootstrap resamples.
        seed (int): the bootstrap's seed.
        confidence (float): the intervals' level, in (0, 1).

    Returns:
        dict: the report (see :func:`format_report`); JSON-serialisable.

    Raises:
        ValueError: no judged query, none with a match, ``k`` above the pool's top-k, or bad
            settings.
    """
    check_score_options(k, resamples, confidence)
    k = pool.topk if k is None else int(k)
    if k > pool.topk:
        raise ValueError(f"--k {k} exceeds the pool's --topk {pool.topk}: each model pooled only its first "
                         f"{pool.topk} candidates, so precision@{k} would count the rest as misses")
    if not judged:
        raise ValueError("no query is judged yet: judge some on the review page (Next marks a query judged)")
    models = [*pool.models, *(model for model, _ in extra)]
    rankings = {m.name: [q.ranked[m.name] for q in pool.queries] for m in pool.models}
    rankings.update({model.name: lists for model, lists in extra})
    if len(rankings) != len(models):
        raise ValueError(f"model names must differ: {[m.name for m in models]}")
    scored, values = per_query_scores(rankings, judged, k)
    if not scored:
        raise ValueError(f"none of the {len(judged)} judged queries has a candidate marked the same person: "
                         f"nothing to score")
    weights = bootstrap_weights(len(scored), resamples, seed)
    mean, low, high = interval(values, weights, confidence)
    candidates = [set(q.candidates) for q in pool.queries]
    report = {"pool_id": pool.pool_id, "queries": len(pool.queries), "judged": len(judged), "scored": len(scored),
              "k": k, "resamples": resamples, "seed": seed, "confidence": confidence, "models": [],
              "differences": []}
    for i, model in enumerate(models):
        lists = rankings[model.name]
        report["models"].append({
            "name": model.name, "weights": model.weights, "sha256": model.sha256, "in_pool": i < len(pool.models),
            "ranked": sum(len(lists[q]) for q in judged), "unjudged": unjudged_count(lists, judged, candidates),
            "metrics": {m: {"mean": float(mean[i, j]), "low": float(low[i, j]), "high": float(high[i, j])}
                        for j, m in enumerate(METRICS)}})
    for a, b in itertools.combinations(range(len(models)), 2):
        d_mean, d_low, d_high = interval(values[:, b] - values[:, a], weights, confidence)
        for j, metric in enumerate(METRICS):
            report["differences"].append({
                "first": models[a].name, "second": models[b].name, "metric": metric, "mean": float(d_mean[j]),
                "low": float(d_low[j]), "high": float(d_high[j]),
                "verdict": verdict(models[a].name, models[b].name, d_low[j], d_high[j], len(scored), confidence,
                                   {m["name"]: m["unjudged"] for m in report["models"]})})
    return report


def format_report(report):
    """The report as text: one line per model, then each pair's differences and verdicts."""
    level, k = f"{report['confidence']:.0%}", report["k"]
    lines = [f"pool {report['pool_id']}: {report['judged']} of {report['queries']} queries judged, "
             f"{report['scored']} with a match among the candidates (scored); {level} bootstrap intervals over "
             f"them ({report['resamples']} resamples, seed {report['seed']})",
             f"{'model':<12} {'checkpoint':<13} " + " ".join(f"{m.replace('@k', f'@{k}'):<22}" for m in METRICS)
             + " unjudged"]
    for model in report["models"]:
        cells = " ".join(f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]".ljust(22)
                         for v in model["metrics"].values())
        unjudged = f"{model['unjudged']} of {model['ranked']}"
        lines.append(f"{model['name']:<12} {model['sha256'][:_SHORT_HASH]:<13} {cells} {unjudged}")
    if any(m["unjudged"] for m in report["models"]):
        lines.append("unjudged candidates count as not the same person: that model's scores are lower bounds")
    for diff in report["differences"]:
        metric = diff["metric"].replace("@k", f"@{k}")
        lines.append(f"{diff['second']} - {diff['first']}, {metric}: {diff['mean']:+.3f} "
                     f"[{diff['low']:+.3f}, {diff['high']:+.3f}]: {diff['verdict']}")
    return "\n".join(lines)
