"""Ranking a gallery for each query: blocked top-k and average precision.

Distance: ``1 - cosine similarity`` of L2-normalised features (fast-reid's ``TEST.METRIC
cosine``), in ``[0, 2]``; for unit vectors it is half the squared Euclidean distance, so both
rank alike. Memory stays bounded whatever the gallery size ``N``: the top-k never holds more
than ``query_block x (k + gallery_block)`` distances; average precision sorts whole rows, its
``query_block x N`` at a time (a few such arrays; one of 8-byte values is 25.6 MB for its
default 32 queries and N = 100,000).

Optionally some query-gallery pairs are *excluded* (left out of the ranking altogether), e.g.
gallery images of the query's identity taken by the query's camera, as the Market-1501 /
DukeMTMC-reID protocol and fast-reid's evaluator drop them.
"""

import math

import torch

# Queries per top-k block, gallery items per chunk of its distances, queries per AP block.
DEFAULT_QUERY_BLOCK = 256
DEFAULT_GALLERY_BLOCK = 8192
DEFAULT_AP_BLOCK = 32
# Index of a top-k slot left empty (every remaining gallery item excluded).
NOT_RANKED = -1
# Code of a query label that no gallery item has.
UNMATCHED = -1


def cosine_distance(query, gallery):
    """``[q, C]`` x ``[g, C]`` unit-norm features -> ``[q, g]`` distances ``1 - q . g``."""
    return 1.0 - query @ gallery.T


def encode_labels(query_labels, gallery_labels):
    """Integer codes of hashable labels, equal exactly where the labels are.

    Returns:
        tuple: ``[Q]`` and ``[G]`` int64 tensors; gallery codes are ``>= 0``, a query label
        absent from the gallery is ``UNMATCHED``.
    """
    codes = {label: i for i, label in enumerate(dict.fromkeys(gallery_labels))}
    return (torch.tensor([codes.get(label, UNMATCHED) for label in query_labels], dtype=torch.long),
            torch.tensor([codes[label] for label in gallery_labels], dtype=torch.long))


def same_identity_camera(query_ids, query_cameras, gallery_ids, gallery_cameras):
    """Exclusion codes (see :func:`excluded_pairs`) of the benchmark protocol: a gallery image of
    the query's identity *and* camera is left out. Arguments are per-image sequences."""
    return encode_labels(list(zip(query_ids, query_cameras)), list(zip(gallery_ids, gallery_cameras)))


def excluded_pairs(exclude, query_slice, gallery_slice):
    """``[q, g]`` bool mask of the excluded pairs of a block, or None without exclusion.

    Args:
        exclude (tuple | None): ``([Q], [G])`` int64 codes; pair ``(i, j)`` is excluded when
            ``query_codes[i] == gallery_codes[j]`` (a query code of ``UNMATCHED`` excludes nothing).
        query_slice (slice): the block's queries.
        gallery_slice (slice): the block's gallery items.
    """
    if exclude is None:
        return None
    query_codes, gallery_codes = exclude
    return query_codes[query_slice, None] == gallery_codes[None, gallery_slice]


def blocked_topk(query, gallery, k, query_block=DEFAULT_QUERY_BLOCK, gallery_block=DEFAULT_GALLERY_BLOCK,
                 exclude=None):
    """The ``k`` nearest gallery items of every query, without a full distance matrix.

    For each block of queries, the distances to one gallery chunk at a time are merged into a
    running top-k (``torch.topk``). Equal distances are ordered arbitrarily.

    Args:
        query (Tensor): ``[Q, C]`` unit-norm features.
        gallery (Tensor): ``[G, C]`` unit-norm features, ``G >= k``.
        k (int): how many neighbours.
        query_block (int): queries per block.
        gallery_block (int): gallery items per chunk.
        exclude (tuple | None): exclusion codes (see :func:`excluded_pairs`).

    Returns:
        tuple: ``[Q, k]`` float32 distances (ascending) and ``[Q, k]`` int64 gallery indices; a
        slot with no gallery item left (all excluded) has distance ``inf`` and index ``NOT_RANKED``.
    """
    num_gallery = gallery.shape[0]
    if not 0 < k <= num_gallery:
        raise ValueError(f"k must be in [1, {num_gallery}] (the gallery size), got {k}")
    all_dist, all_index = [], []
    for q0 in range(0, query.shape[0], query_block):
        queries = slice(q0, q0 + query_block)
        block = query[queries]
        best_dist = block.new_empty((block.shape[0], 0))
        best_index = torch.empty((block.shape[0], 0), dtype=torch.long, device=block.device)
        for g0 in range(0, num_gallery, gallery_block):
            items = slice(g0, min(g0 + gallery_block, num_gallery))
            dist = cosine_distance(block, gallery[items])
            mask = excluded_pairs(exclude, queries, items)
            if mask is not None:
                dist = dist.masked_fill(mask.to(dist.device), math.inf)
            index = torch.arange(items.start, items.stop, device=block.device).expand(block.shape[0], -1)
            cand_dist, cand_index = torch.cat([best_dist, dist], 1), torch.cat([best_index, index], 1)
            best_dist, pos = torch.topk(cand_dist, min(k, cand_dist.shape[1]), dim=1, largest=False, sorted=True)
            best_index = cand_index.gather(1, pos)
        all_dist.append(best_dist)
        all_index.append(best_index.masked_fill(torch.isinf(best_dist), NOT_RANKED))
    return torch.cat(all_dist), torch.cat(all_index)


def average_precision(query, gallery, query_labels, gallery_labels, query_block=DEFAULT_AP_BLOCK, exclude=None):
    """Average precision of each query's ranking of the whole gallery (excluded pairs left out).

    A gallery item is relevant when its label equals the query's. AP is the mean, over the
    relevant items, of the precision at each one's rank; equal distances keep gallery order.

    Args:
        query (Tensor): ``[Q, C]`` unit-norm features.
        gallery (Tensor): ``[G, C]`` unit-norm features.
        query_labels (Tensor): ``[Q]`` int64 codes (:func:`encode_labels`).
        gallery_labels (Tensor): ``[G]`` int64 codes.
        query_block (int): queries per block (a block holds ``query_block x G`` distances).
        exclude (tuple | None): exclusion codes (see :func:`excluded_pairs`).

    Returns:
        Tensor: ``[Q]`` float64 AP, NaN for a query without relevant gallery item.
    """
    num_gallery = gallery.shape[0]
    ranks = torch.arange(1, num_gallery + 1, dtype=torch.float64)
    out = []
    for q0 in range(0, query.shape[0], query_block):
        queries = slice(q0, q0 + query_block)
        dist = cosine_distance(query[queries], gallery).cpu()
        relevant = query_labels[queries, None] == gallery_labels[None, :]
        mask = excluded_pairs(exclude, queries, slice(0, num_gallery))
        if mask is not None:
            dist = dist.masked_fill(mask, math.inf)
            relevant &= ~mask
        order = torch.sort(dist, dim=1, stable=True).indices
        hits = relevant.gather(1, order).double()
        precision_sum = (hits.cumsum(1) / ranks * hits).sum(1)
        num_relevant = hits.sum(1)
        out.append(torch.where(num_relevant > 0, precision_sum / num_relevant.clamp(min=1), math.nan))
    return torch.cat(out)


def top_matches(top_indices, query_labels, gallery_labels):
    """``[Q, k]`` bool: whether each top-k gallery item has the query's label (an empty slot,
    ``NOT_RANKED``, does not)."""
    matches = gallery_labels[top_indices.clamp(min=0)] == query_labels[:, None]
    return matches & (top_indices != NOT_RANKED)


def summarize(ap, top_indices, query_labels, gallery_labels):
    """mAP and rank-1 accuracy over the queries with at least one relevant gallery item (the
    others are not counted, as in fast-reid's evaluator).

    Args:
        ap (Tensor): ``[Q]`` from :func:`average_precision`.
        top_indices (Tensor): ``[Q, k]`` from :func:`blocked_topk` (same exclusion).
        query_labels (Tensor): ``[Q]`` int64 codes.
        gallery_labels (Tensor): ``[G]`` int64 codes.

    Returns:
        dict: ``mAP``, ``rank1`` (fractions in [0, 1], NaN when no query counts) and
        ``evaluated_queries``.
    """
    valid = ~torch.isnan(ap)
    count = int(valid.sum())
    if not count:
        return {"mAP": math.nan, "rank1": math.nan, "evaluated_queries": 0}
    correct = top_matches(top_indices[:, :1], query_labels, gallery_labels)[:, 0]
    return {"mAP": float(ap[valid].mean()), "rank1": float(correct[valid].double().mean()),
            "evaluated_queries": count}
