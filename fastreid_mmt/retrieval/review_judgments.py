"""Judgments of a review pool: which pooled candidates are the query's person.

The review page saves them as a JSON file; :func:`judgments_from_ids` makes the same file from
true identities (simulated judgments, for labelled data). A judged query is one the person
moved past (or finished); its marked candidates are the same person, the others are not.
Queries not judged are left out of the scores. The file::

    {"format": "fastreid-mmt-review-judgments", "version": 1, "pool_id": "...",
     "models": ["<sha256>", ...], "queries": {"<query index>": {"same": [<gallery index>, ...]}}}
"""

import json
import os

JUDGMENTS_FORMAT = "fastreid-mmt-review-judgments"
JUDGMENTS_VERSION = 1
# Hex digits of a checkpoint hash shown in messages.
_SHORT_HASH = 12


class JudgmentsError(ValueError):
    """A judgments file that does not belong to the pool or cannot be read; names the file."""


def _short(hashes):
    return ", ".join(h[:_SHORT_HASH] for h in hashes)


def judgments_from_ids(pool, query_ids, gallery_ids):
    """Simulated judgments: a candidate is the same person when its identity is the query's.

    Args:
        pool (ReviewPool): the pool.
        query_ids (Sequence): identity of each pool query (None: unknown, matches nothing).
        gallery_ids (Sequence): identity of each gallery image (None: matches nothing).

    Returns:
        dict: the judgments file's content, every query judged (matches in ascending order, as the
        page saves them).
    """
    if len(query_ids) != len(pool.queries) or len(gallery_ids) != len(pool.gallery):
        raise ValueError(f"identities for {len(query_ids)} queries / {len(gallery_ids)} gallery images, the pool "
                         f"has {len(pool.queries)} / {len(pool.gallery)}")
    queries = {str(q): {"same": sorted(g for g in query.candidates
                                       if query_ids[q] is not None and gallery_ids[g] == query_ids[q])}
               for q, query in enumerate(pool.queries)}
    return {"format": JUDGMENTS_FORMAT, "version": JUDGMENTS_VERSION, "pool_id": pool.pool_id,
            "models": pool.model_hashes(), "queries": queries}


def save_judgments(judgments, path):
    """Write a judgments file; returns ``path``."""
    with open(path, "w") as f:
        json.dump(judgments, f, indent=1)
    return path


def _read_json(path, key):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{key}: judgments file not found: {path}")
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise JudgmentsError(f"{key}: {path} is not a JSON judgments file ({err})") from err


def check_belongs(data, pool, path, pool_path, key):
    """JudgmentsError unless ``data`` was judged on ``pool`` (same models, same pool id)."""
    if set(data.get("models", [])) != set(pool.model_hashes()):
        raise JudgmentsError(
            f"{key}: {path} judges the rankings of other models (checkpoints {_short(sorted(data.get('models', [])))})"
            f" than --pool {pool_path} (checkpoints {_short(pool.model_hashes())}): judgments count only on the "
            f"pool they were made on; to score another checkpoint on them, give it to the score step with --weights")
    if data.get("pool_id") != pool.pool_id:
        raise JudgmentsError(f"{key}: {path} was made on pool {data.get('pool_id')}, but --pool {pool_path} is pool "
                             f"{pool.pool_id} (other queries, gallery or candidates): score it with the pool.json "
                             f"written next to the review.html it was judged on")


def load_judgments(path, pool, pool_path="pool.json", key="--judgments"):
    """The judged queries of a judgments file, checked against ``pool``.

    Args:
        path (str): the judgments file.
        pool (ReviewPool): the pool it must belong to.
        pool_path (str): the pool's file (for messages).
        key (str): the option that named ``path`` (for messages).

    Returns:
        dict[int, set[int]]: for each judged query index, the gallery indices marked the same
        person (a subset of its pooled candidates).

    Raises:
        FileNotFoundError: no such file.
        JudgmentsError: not a judgments file, another pool or other models, or a query / candidate
            the pool does not have.
    """
    data = _read_json(path, key)
    if not isinstance(data, dict) or data.get("format") != JUDGMENTS_FORMAT:
        raise JudgmentsError(f"{key}: {path} is not a review judgments file (no format {JUDGMENTS_FORMAT!r}; the "
                             f"review page saves one with its Save button)")
    if data.get("version") != JUDGMENTS_VERSION:
        raise JudgmentsError(f"{key}: {path} has version {data.get('version')!r}, this code reads "
                             f"{JUDGMENTS_VERSION}")
    check_belongs(data, pool, path, pool_path, key)
    judged = {}
    for q_text, entry in data.get("queries", {}).items():
        q = int(q_text) if str(q_text).isdigit() else -1
        if not 0 <= q < len(pool.queries) or not isinstance(entry, dict):
            raise JudgmentsError(f"{key}: {path} judges query {q_text!r}, which pool {pool.pool_id} does not have")
        same = {int(g) for g in entry.get("same", [])}
        stray = sorted(same - set(pool.queries[q].candidates))
        if stray:
            raise JudgmentsError(f"{key}: {path} marks gallery image(s) {stray} for query {q}, which are not among "
                                 f"its pooled candidates")
        judged[q] = same
    return judged
