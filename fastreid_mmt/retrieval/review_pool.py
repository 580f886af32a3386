"""A review pool: the queries, the union of every model's top-k for each (de-duplicated and
shuffled, as a person judges them), and which model ranked what (kept here, never on the page).

The pool file (JSON) records the pool id, a hash of everything judged and of the models that
ranked it, so that judgments made on one pool cannot be scored against another; the models,
each with its checkpoint path and the SHA-256 of the file; the gallery (so that a later model
can be ranked against the same images); and for each query its candidates in the shown order
and each model's ranked list (gallery indices).
"""

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np

POOL_FORMAT = "fastreid-mmt-review-pool"
POOL_VERSION = 1
# Hex digits of the pool id (64 bits of SHA-256).
POOL_ID_LENGTH = 16


class PoolError(ValueError):
    """A pool file that cannot be used; the message names it."""


@dataclass
class ReviewModel:
    """One compared model.

    Attributes:
        name (str): its label in the pool file and the scores (e.g. ``before``, ``after``).
        weights (str): the checkpoint path.
        sha256 (str): the SHA-256 of the checkpoint file.
    """

    name: str
    weights: str
    sha256: str


@dataclass
class ReviewQuery:
    """One query of a pool.

    Attributes:
        path (str): the query image.
        camera (str | None): its camera, when known.
        candidates (list[int]): gallery indices shown for it, in the shown (shuffled) order.
        ranked (dict[str, list[int]]): each model's ranked gallery indices, nearest first.
    """

    path: str
    camera: str = None
    candidates: list = field(default_factory=list)
    ranked: dict = field(default_factory=dict)


@dataclass
class ReviewPool:
    """Everything a review page shows and its scoring needs.

    Attributes:
        pool_id (str): hash of the models' checkpoints, the queries, the gallery and the rankings.
        models (list[ReviewModel]): the compared models, in pool order.
        gallery (list[str]): the gallery images (candidates are indices into it).
        gallery_cameras (list[str] | None): their cameras, when known.
        queries (list[ReviewQuery]): the queries, in the shown order.
        topk (int): candidates each model contributed per query.
        exclude (str): what a query's ranking left out (``self`` or ``camera``).
        settings (dict): how it was made (config, overrides, images, seed), for the record.
    """

    pool_id: str
    models: list
    gallery: list
    gallery_cameras: list
    queries: list
    topk: int
    exclude: str
    settings: dict = field(default_factory=dict)

    def model_hashes(self):
        """The models' checkpoint hashes, sorted (no order that would tell which is which)."""
        return sorted(model.sha256 for model in self.models)


def pooled_candidates(rankings, rng):
    """The union of the ranked lists (first seen first), then shuffled with ``rng``."""
    union = list(dict.fromkeys(index for ranked in rankings for index in ranked))
    return [union[i] for i in rng.permutation(len(union))]


def compute_pool_id(models, gallery, queries):
    """The first ``POOL_ID_LENGTH`` hex digits of a SHA-256 over the judged content."""
    content = {"models": [model.sha256 for model in models], "gallery": list(gallery),
               "queries": [[q.path, q.candidates, [q.ranked[model.name] for model in models]] for q in queries]}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:POOL_ID_LENGTH]


def build_pool(models, query_paths, query_cameras, gallery, gallery_cameras, rankings, topk, exclude, seed,
               settings=None):
    """Pool the models' rankings of the queries.

    Args:
        models (list[ReviewModel]): at least two, with distinct names and checkpoints.
        query_paths (list[str]): the query images.
        query_cameras (list[str] | None): their cameras.
        gallery (list[str]): the gallery images.
        gallery_cameras (list[str] | None): their cameras.
        rankings (dict[str, list[list[int]]]): each model's ranked gallery indices per query.
        topk (int): candidates each model contributed per query.
        exclude (str): what the rankings left out.
        seed (int): seed of the candidates' shuffle.
        settings (dict | None): recorded as is.

    Returns:
        ReviewPool
    """
    if len(models) < 2:
        raise ValueError("a review compares at least two models")
    if len({m.name for m in models}) != len(models):
        raise ValueError(f"model names must differ: {[m.name for m in models]}")
    rng = np.random.default_rng(seed)
    queries = []
    for q, path in enumerate(query_paths):
        ranked = {m.name: [int(i) for i in rankings[m.name][q]] for m in models}
        queries.append(ReviewQuery(path, None if query_cameras is None else query_cameras[q],
                                   [int(i) for i in pooled_candidates(list(ranked.values()), rng)], ranked))
    return ReviewPool(compute_pool_id(models, gallery, queries), list(models), list(gallery),
                      None if gallery_cameras is None else list(gallery_cameras), queries, int(topk), exclude,
                      dict(settings or {}))


def pool_to_dict(pool):
    """The pool as the JSON object of its file."""
    return {"format": POOL_FORMAT, "version": POOL_VERSION, **asdict(pool)}


def save_pool(pool, path):
    """Write the pool file; returns ``path``."""
    with open(path, "w") as f:
        json.dump(pool_to_dict(pool), f, indent=1)
    return path


def load_pool(path, key="--pool"):
    """Read a pool file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        PoolError: not JSON, not a pool file, or a pool whose id does not match its content.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{key}: pool file not found: {path}")
    try:
        with open(path) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PoolError(f"{key}: {path} is not a JSON pool file ({err})") from err
    if not isinstance(data, dict) or data.get("format") != POOL_FORMAT:
        raise PoolError(f"{key}: {path} is not a review pool file (no format {POOL_FORMAT!r}; tools/review.py "
                        f"writes pool.json next to review.html)")
    if data.get("version") != POOL_VERSION:
        raise PoolError(f"{key}: {path} has pool version {data.get('version')!r}, this code reads {POOL_VERSION}")
    try:
        pool = ReviewPool(data["pool_id"], [ReviewModel(**m) for m in data["models"]], data["gallery"],
                          data["gallery_cameras"], [ReviewQuery(**q) for q in data["queries"]], data["topk"],
                          data["exclude"], data.get("settings", {}))
    except (KeyError, TypeError) as err:
        raise PoolError(f"{key}: {path} lacks a pool field or has a malformed one ({err!r})") from err
    if compute_pool_id(pool.models, pool.gallery, pool.queries) != pool.pool_id:
        raise PoolError(f"{key}: {path} was edited after it was written (its content no longer hashes to its pool "
                        f"id {pool.pool_id}); rebuild it with tools/review.py")
    return pool
