"""The rankings a blind review compares: queries drawn from the images without looking at any
result, and each model's top-k of the gallery for them.

Queries are drawn with a seed, in turns over the cameras when the cameras are known (so every
camera contributes about equally), else uniformly. The gallery never offers a query itself;
with ``exclude="camera"`` it offers no image of the query's camera either (only cross-camera
candidates, the matches re-identification is for).
"""

import hashlib
import logging

import numpy as np
import torch

from .features import extract_features
from .image_sets import ImageSet
from .ranking import NOT_RANKED, UNMATCHED, blocked_topk, encode_labels
from .retrieve import check_topk

logger = logging.getLogger(__name__)

# Gallery images left out of a query's ranking: the query image itself, or its whole camera.
EXCLUDE_SELF, EXCLUDE_CAMERA = "self", "camera"
EXCLUDE_CHOICES = (EXCLUDE_SELF, EXCLUDE_CAMERA)
# Bytes read at a time when hashing a checkpoint.
_HASH_CHUNK = 1 << 20


def file_sha256(path):
    """The SHA-256 hex digest of a file's bytes (a checkpoint's fingerprint)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sample_queries(images, count, seed):
    """Indices of ``count`` images drawn as queries, in the order they will be shown.

    With cameras, each camera's images are shuffled and the cameras (in a shuffled order) give
    one query each in turn until ``count`` are drawn; without cameras a seeded uniform draw.

    Args:
        images (ImageSet): the candidates.
        count (int): queries wanted (>= 1); all images when there are fewer.
        seed (int): the draw's seed.

    Returns:
        list[int]: distinct indices into ``images``.
    """
    if count < 1:
        raise ValueError(f"--queries must be at least 1, got {count}")
    if count > len(images):
        logger.info("--queries %d: only %d image(s), all are queries", count, len(images))
        count = len(images)
    rng = np.random.default_rng(seed)
    cameras = images.cameras or [""] * len(images)
    groups = {}
    for index, camera in enumerate(cameras):
        groups.setdefault(camera, []).append(index)
    turns = [[members[i] for i in rng.permutation(len(members))] for _, members in sorted(groups.items())]
    turns = [turns[i] for i in rng.permutation(len(turns))]
    picked, depth = [], 0
    while len(picked) < count:
        picked += [members[depth] for members in turns if depth < len(members)][:count - len(picked)]
        depth += 1
    return picked


def subset(images, indices, origin):
    """The images at ``indices`` (in that order) as an :class:`ImageSet`."""
    def pick(values):
        return None if values is None else [values[i] for i in indices]

    return ImageSet(pick(images.paths), pick(images.identities), pick(images.cameras), origin)


def exclusion_codes(query, gallery, exclude):
    """Exclusion codes for :func:`~fastreid_mmt.retrieval.ranking.blocked_topk`: a pair is left
    out where the codes are equal.

    Args:
        query (ImageSet): the queries.
        gallery (ImageSet): the gallery.
        exclude (str): ``self`` (the query image, found by its path) or ``camera`` (every image
            of the query's camera; needs the cameras of both sets).
    """
    if exclude not in EXCLUDE_CHOICES:
        raise ValueError(f"exclude must be one of {EXCLUDE_CHOICES}, got {exclude!r}")
    if exclude == EXCLUDE_CAMERA:
        if query.cameras is None or gallery.cameras is None:
            raise ValueError("--cross-camera needs the images' cameras: give a camera rule with --cameras "
                             "(subfolder or a regex), or a data set name")
        return encode_labels(query.cameras, gallery.cameras)
    position = {path: i for i, path in enumerate(gallery.paths)}
    return (torch.tensor([position.get(path, UNMATCHED) for path in query.paths], dtype=torch.long),
            torch.arange(len(gallery), dtype=torch.long))


def rank_for_review(model, query, gallery, transform, topk, batch_size, device, num_workers=0,
                    exclude=EXCLUDE_SELF, key="--images"):
    """One model's top-k gallery indices for each query.

    A query that is also a gallery image (same path) reuses that image's features.

    Args:
        model (nn.Module): images -> features (``load_feature_model``), eval mode.
        query (ImageSet): the queries.
        gallery (ImageSet): the gallery.
        transform (callable): fast-reid's test transforms.
        topk (int): candidates kept per query.
        batch_size (int): images per forward.
        device (str): the model's device.
        num_workers (int): image decoding processes.
        exclude (str): see :func:`exclusion_codes`.
        key (str): the option that named the images (for messages).

    Returns:
        list[list[int]]: for each query, up to ``topk`` gallery indices, nearest first (fewer
        only when the exclusion leaves fewer).
    """
    check_topk(topk, len(gallery))
    codes = exclusion_codes(query, gallery, exclude)
    g_feats = extract_features(model, gallery.paths, transform, batch_size, device, num_workers, key)
    position = {path: i for i, path in enumerate(gallery.paths)}
    if all(path in position for path in query.paths):
        q_feats = g_feats[[position[path] for path in query.paths]]
    else:
        q_feats = extract_features(model, query.paths, transform, batch_size, device, num_workers, key)
    _, indices = blocked_topk(q_feats, g_feats, topk, exclude=codes)
    return [[index for index in row if index != NOT_RANKED] for row in indices.tolist()]
