"""Files of a retrieval run: image lists, features, the ranking, per-query AP and a summary.

Every writer takes the folder and returns the path it wrote. Rows of ``query.npy`` /
``gallery.npy`` follow the lines of ``query.txt`` / ``gallery.txt``; ``ranks.csv`` names images
by those paths.
"""

import csv
import json
import math
import os

import numpy as np

from .ranking import NOT_RANKED

FEATURES = "{split}.npy"
PATHS = "{split}.txt"
RANKS = "ranks.csv"
AVERAGE_PRECISION = "ap.csv"
SUMMARY = "summary.json"
RANK_COLUMNS = ("query", "rank", "gallery", "distance")
AP_COLUMNS = ("query", "ap")
# Decimal places of the distances and APs written as text.
DECIMALS = 6


def write_split(folder, split, paths, features):
    """``<split>.txt`` (one image path a line) and ``<split>.npy`` (``[N, C]`` float32).

    Args:
        folder (str): the output folder (created).
        split (str): ``query`` or ``gallery``.
        paths (Sequence[str]): the images, in the order of the feature rows.
        features (Tensor): ``[N, C]`` features.

    Returns:
        tuple: the two paths written.
    """
    if len(paths) != features.shape[0]:
        raise ValueError(f"{split}: {len(paths)} paths but {features.shape[0]} feature rows")
    os.makedirs(folder, exist_ok=True)
    txt, npy = os.path.join(folder, PATHS.format(split=split)), os.path.join(folder, FEATURES.format(split=split))
    with open(txt, "w") as f:
        f.writelines(f"{p}\n" for p in paths)
    np.save(npy, features.detach().cpu().numpy().astype(np.float32))
    return txt, npy


def write_ranks(folder, query_paths, gallery_paths, distances, indices):
    """``ranks.csv``: columns ``query,rank,gallery,distance``, rank 1-based, distance
    ``1 - cosine`` (empty top-k slots, see ``NOT_RANKED``, are left out).

    Args:
        distances (Tensor): ``[Q, k]`` ascending distances.
        indices (Tensor): ``[Q, k]`` gallery indices.
    """
    path = os.path.join(folder, RANKS)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(RANK_COLUMNS)
        for q, (dist_row, index_row) in enumerate(zip(distances.tolist(), indices.tolist())):
            for rank, (dist, index) in enumerate(zip(dist_row, index_row), start=1):
                if index != NOT_RANKED:
                    writer.writerow((query_paths[q], rank, gallery_paths[index], f"{dist:.{DECIMALS}f}"))
    return path


def write_average_precision(folder, query_paths, ap):
    """``ap.csv``: columns ``query,ap``; empty AP for a query without relevant gallery item."""
    path = os.path.join(folder, AVERAGE_PRECISION)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(AP_COLUMNS)
        for query, value in zip(query_paths, ap.tolist()):
            writer.writerow((query, "" if math.isnan(value) else f"{value:.{DECIMALS}f}"))
    return path


def write_summary(folder, summary):
    """``summary.json`` (NaN written as null)."""
    path = os.path.join(folder, SUMMARY)
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}
    with open(path, "w") as f:
        json.dump(clean, f, indent=2)
        f.write("\n")
    return path
