"""One model's retrieval of a gallery for a set of queries: features, top-k, AP, and its files.

Identities (where both query and gallery have them) give correct / wrong matches and AP. With
``drop_same_camera`` the benchmark protocol is followed: a gallery image of the query's
identity taken by the query's camera is left out of that query's ranking, as fast-reid's
evaluator does; by default every gallery image is ranked.
"""

from dataclasses import dataclass

import torch

from .features import extract_features
from .outputs import write_average_precision, write_ranks, write_split, write_summary
from .ranking import (DEFAULT_GALLERY_BLOCK, DEFAULT_QUERY_BLOCK, average_precision, blocked_topk, encode_labels,
                      same_identity_camera, summarize, top_matches)

# Name of the distance in the summary.
DISTANCE_NAME = "1 - cosine"


@dataclass
class Ranking:
    """The result of :func:`rank_gallery`.

    Attributes:
        query_features (Tensor): ``[Q, C]`` unit-norm features.
        gallery_features (Tensor): ``[G, C]`` unit-norm features.
        distances (Tensor): ``[Q, k]`` ascending ``1 - cosine`` distances.
        indices (Tensor): ``[Q, k]`` gallery indices (``NOT_RANKED`` for an empty slot).
        correct (Tensor | None): ``[Q, k]`` bool, None without identities.
        ap (Tensor | None): ``[Q]`` average precision (NaN: no relevant gallery item), None
            without identities.
        summary (dict): counts, distance, and ``mAP`` / ``rank1`` with identities.
    """

    query_features: torch.Tensor
    gallery_features: torch.Tensor
    distances: torch.Tensor
    indices: torch.Tensor
    correct: torch.Tensor = None
    ap: torch.Tensor = None
    summary: dict = None


def check_topk(topk, gallery_size, key="--topk"):
    """Raise ValueError unless ``1 <= topk <= gallery_size``."""
    if topk < 1:
        raise ValueError(f"{key} must be at least 1, got {topk}")
    if topk > gallery_size:
        raise ValueError(f"{key} {topk} exceeds the gallery's {gallery_size} image(s): lower it or give a "
                         f"larger gallery")


def exclusion(query, gallery, drop_same_camera):
    """Exclusion codes of the same-identity same-camera pairs, or None (see module docstring).

    Raises:
        ValueError: ``drop_same_camera`` without identities and cameras on both sides.
    """
    if not drop_same_camera:
        return None
    if None in (query.identities, query.cameras, gallery.identities, gallery.cameras):
        raise ValueError("--drop-same-camera needs the identities and cameras of both query and gallery: a data "
                         "set name, or labelled folders with a camera rule (--cameras)")
    return same_identity_camera(query.identities, query.cameras, gallery.identities, gallery.cameras)


def rank_gallery(model, query, gallery, transform, topk, batch_size, device, num_workers=0,
                 drop_same_camera=False, query_block=DEFAULT_QUERY_BLOCK, gallery_block=DEFAULT_GALLERY_BLOCK):
    """Extract both sets' features with ``model`` and rank the gallery for every query.

    Args:
        model (nn.Module): images -> BN features (``load_feature_model``), eval mode.
        query (ImageSet): the queries.
        gallery (ImageSet): the gallery.
        transform (callable): fast-reid's test transforms.
        topk (int): neighbours kept per query.
        batch_size (int): images per forward.
        device (str): the model's device.
        num_workers (int): image decoding processes.
        drop_same_camera (bool): the benchmark protocol's exclusion (module docstring).
        query_block (int): queries per top-k block (average precision: ``DEFAULT_AP_BLOCK``).
        gallery_block (int): gallery items per chunk of the top-k.

    Returns:
        Ranking
    """
    check_topk(topk, len(gallery))
    exclude = exclusion(query, gallery, drop_same_camera)
    q_feats = extract_features(model, query.paths, transform, batch_size, device, num_workers, "--query")
    g_feats = extract_features(model, gallery.paths, transform, batch_size, device, num_workers, "--gallery")
    distances, indices = blocked_topk(q_feats, g_feats, topk, query_block, gallery_block, exclude)
    summary = {"queries": len(query), "gallery": len(gallery), "topk": topk, "distance": DISTANCE_NAME,
               "drop_same_camera": bool(drop_same_camera)}
    if query.identities is None or gallery.identities is None:
        return Ranking(q_feats, g_feats, distances, indices, summary=summary)
    q_labels, g_labels = encode_labels(query.identities, gallery.identities)
    ap = average_precision(q_feats, g_feats, q_labels, g_labels, exclude=exclude)
    summary.update(summarize(ap, indices, q_labels, g_labels))
    return Ranking(q_feats, g_feats, distances, indices, top_matches(indices, q_labels, g_labels), ap, summary)


def save_ranking(folder, query, gallery, ranking):
    """Write ``query.txt/.npy``, ``gallery.txt/.npy``, ``ranks.csv``, ``summary.json`` and, with
    identities, ``ap.csv`` into ``folder``. Returns the paths written."""
    written = [*write_split(folder, "query", query.paths, ranking.query_features),
               *write_split(folder, "gallery", gallery.paths, ranking.gallery_features),
               write_ranks(folder, query.paths, gallery.paths, ranking.distances, ranking.indices)]
    if ranking.ap is not None:
        written.append(write_average_precision(folder, query.paths, ranking.ap))
    written.append(write_summary(folder, ranking.summary))
    return written
