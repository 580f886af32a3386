"""The two steps of a blind review, as ``tools/review.py`` runs them.

:func:`build_review`: rank the images with each checkpoint, pool the rankings and write
``review.html`` (with its ``images`` folder) and ``pool.json`` into the output folder;
optionally ``judgments-simulated.json`` from the true identities of labelled images.
:func:`score_review`: score the pool's models (and checkpoints ranked later on the same queries
and gallery) on a judgments file. Every input is checked before anything is written.
"""

import json
import logging
import os
import shutil

from fastreid.data.transforms import build_transforms

from ..data import dataset_root
from ..data.folders import NO_CAMERAS
from ..engine.setup import build_cfg
from .image_sets import AUTO, GALLERY, QUERY, ImageSet, is_dataset_name, read_image_set
from .review_judgments import judgments_from_ids, load_judgments, save_judgments
from .review_page import IMAGE_FOLDER, write_review_page
from .review_pool import ReviewModel, build_pool, load_pool, save_pool
from .review_rankings import EXCLUDE_CAMERA, EXCLUDE_SELF, file_sha256, rank_for_review, sample_queries, subset
from .review_score import (DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, check_score_options, format_report,
                           score_pool)
from .weights import load_feature_model

logger = logging.getLogger(__name__)

POOL_FILE = "pool.json"
SIMULATED_JUDGMENTS = "judgments-simulated.json"
# The checkpoints replace every weight: never load ImageNet weights for them.
NO_IMAGENET = ["MODEL.BACKBONE.PRETRAIN", "False"]
# Queries drawn and candidates each model contributes per query, by default.
DEFAULT_QUERIES = 50
DEFAULT_TOPK = 10
# Name of the n-th checkpoint scored later (1-based).
NEW_MODEL_NAME = "new-{}"


def hashed_model(name, path, key):
    """:class:`ReviewModel` of the checkpoint file ``path`` (named by option ``key``), with its hash."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{key}: checkpoint not found: {path}")
    return ReviewModel(name, os.path.abspath(path), file_sha256(path))


def checkpoint_models(checkpoints):
    """:class:`ReviewModel` of each ``(name, path, key)``, hashed; named errors for a missing
    file, fewer than two checkpoints, or the same checkpoint twice."""
    if len(checkpoints) < 2:
        given = ", ".join(f"{key} {path}" for _, path, key in checkpoints) or "none"
        raise ValueError(f"--weights-before: a review compares at least two checkpoints (e.g. before and after "
                         f"adaptation), got one only ({given}); give the other with --weights-before")
    models, seen = [], {}
    for name, path, key in checkpoints:
        model = hashed_model(name, path, key)
        if model.sha256 in seen:
            raise ValueError(f"{key} {path} is the same checkpoint as {seen[model.sha256]} (same bytes): compare "
                             f"two different checkpoints")
        seen[model.sha256] = f"{key} {path}"
        models.append(model)
    return models


def check_output(output, overwrite):
    """ValueError when ``output`` holds a review already (its judgments would no longer fit)."""
    pool_file = os.path.join(output, POOL_FILE)
    if os.path.exists(pool_file) and not overwrite:
        raise ValueError(f"--output: {output} already holds a review ({pool_file}); judgments saved on it fit only "
                         f"that pool: choose another --output, or pass --overwrite to replace it")
    if os.path.exists(output) and not os.path.isdir(output):
        raise ValueError(f"--output: {output} is a file, not a folder")


def read_review_images(spec, labelled, cameras):
    """The query candidates and the gallery: a folder's images (both), or a registered data
    set's query and gallery splits."""
    if is_dataset_name(spec):
        return (read_image_set([spec], QUERY, labelled, cameras, dataset_root(), "--images"),
                read_image_set([spec], GALLERY, labelled, cameras, dataset_root(), "--images"))
    if not os.path.isdir(spec):
        raise FileNotFoundError(f"--images: {spec!r} is neither a folder nor a registered fast-reid data set")
    images = read_image_set([spec], GALLERY, labelled, cameras, dataset_root(), "--images")
    return images, images


def feature_settings(config_file, opts, batch_size):
    """The config, test transforms, batch size and loader workers of feature extraction."""
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
    cfg = build_cfg(config_file, [*opts, *NO_IMAGENET])
    return cfg, build_transforms(cfg, is_train=False), batch_size or cfg.TEST.IMS_PER_BATCH


def rank_with(cfg, transform, batch_size, path, key, query, gallery, topk, exclude):
    """Load one checkpoint and rank ``gallery`` for ``query`` (see :func:`rank_for_review`)."""
    model = load_feature_model(cfg, path, key)
    lists = rank_for_review(model, query, gallery, transform, topk, batch_size, cfg.MODEL.DEVICE,
                            cfg.DATALOADER.NUM_WORKERS, exclude)
    logger.info("%s %s: ranked %d queries", key, path, len(lists))
    return lists


def build_review(config_file, checkpoints, images, output, opts=(), queries=DEFAULT_QUERIES, topk=DEFAULT_TOPK,
                 seed=DEFAULT_SEED, labelled=AUTO, cameras=NO_CAMERAS, cross_camera=False, batch_size=None,
                 overwrite=False, simulate=False):
    """Rank, pool and write a review page (see the module docstring).

    Args:
        config_file (str): the config the checkpoints were trained with.
        checkpoints (list[tuple[str, str, str]]): ``(name, path, option)`` of each model.
        images (str): a folder (queries and gallery) or a registered data set name.
        output (str): the output folder.
        opts (Sequence[str]): KEY VALUE config overrides.
        queries (int): queries drawn.
        topk (int): candidates each model contributes per query.
        seed (int): seed of the query draw and of the candidates' shuffle.
        labelled (str): ``auto``, ``yes`` or ``no`` (a folder with one subfolder per identity).
        cameras (str): camera rule of a folder.
        cross_camera (bool): offer only candidates from other cameras than the query's.
        batch_size (int | None): images per forward (default ``TEST.IMS_PER_BATCH``).
        overwrite (bool): replace a review already in ``output``.
        simulate (bool): also write judgments made from the true identities.

    Returns:
        dict: ``pool`` (ReviewPool), ``page``, ``pool_file`` and (with ``simulate``) ``judgments``.
    """
    for option, value in (("--queries", queries), ("--topk", topk)):
        if value < 1:
            raise ValueError(f"{option} must be at least 1, got {value}")
    check_output(output, overwrite)
    models = checkpoint_models(checkpoints)
    query_images, gallery = read_review_images(images, labelled, cameras)
    if simulate and (query_images.identities is None or gallery.identities is None):
        raise ValueError(f"--simulate-from-ids: {images} has no identities; give a labelled folder (one subfolder "
                         f"per identity) or a registered data set name")
    query = subset(query_images, sample_queries(query_images, queries, seed), f"{queries} drawn queries")
    exclude = EXCLUDE_CAMERA if cross_camera else EXCLUDE_SELF
    cfg, transform, batch_size = feature_settings(config_file, opts, batch_size)
    rankings = {model.name: rank_with(cfg, transform, batch_size, model.weights, key, query, gallery, topk, exclude)
                for model, (_, _, key) in zip(models, checkpoints)}
    settings = {"config_file": os.path.abspath(config_file), "opts": list(opts), "images": images,
                "queries": queries, "seed": seed, "labelled": labelled, "cameras": cameras}
    pool = build_pool(models, query.paths, query.cameras, gallery.paths, gallery.cameras, rankings, topk, exclude,
                      seed, settings)
    os.makedirs(output, exist_ok=True)
    old_images = os.path.join(output, IMAGE_FOLDER)
    if os.path.isfile(os.path.join(output, POOL_FILE)) and os.path.isdir(old_images):
        shutil.rmtree(old_images)  # the replaced review's images (--overwrite)
    written = {"pool": pool, "page": write_review_page(pool, output),
               "pool_file": save_pool(pool, os.path.join(output, POOL_FILE))}
    if simulate:
        written["judgments"] = save_judgments(judgments_from_ids(pool, query.identities, gallery.identities),
                                              os.path.join(output, SIMULATED_JUDGMENTS))
    return written


def rank_new_checkpoints(pool, config_file, weights, names, opts=(), batch_size=None):
    """Rank the pool's queries against its gallery with checkpoints not in the pool.

    Returns:
        list[tuple[ReviewModel, list[list[int]]]]
    """
    if not weights:
        return []
    if config_file is None:
        raise ValueError("--weights: ranking a checkpoint needs --config-file (the config it was trained with)")
    names = list(names or [NEW_MODEL_NAME.format(i + 1) for i in range(len(weights))])
    if len(names) != len(weights):
        raise ValueError(f"--name: {len(names)} name(s) for {len(weights)} checkpoint(s) given with --weights")
    taken = [m.name for m in pool.models]
    for i, name in enumerate(names):
        if name in taken or name in names[:i]:
            raise ValueError(f"--name: {name!r} is taken (pool models: {taken}; names must differ)")
    in_pool = {m.sha256: m.name for m in pool.models}
    models = []
    for name, path in zip(names, weights):
        model = hashed_model(name, path, "--weights")
        if model.sha256 in in_pool:
            raise ValueError(f"--weights: {path} is the pool's model {in_pool[model.sha256]!r} (same bytes): it is "
                             f"scored already")
        models.append(model)
    cfg, transform, batch_size = feature_settings(config_file, opts, batch_size)
    query = ImageSet([q.path for q in pool.queries], None, None if pool.gallery_cameras is None else
                     [q.camera for q in pool.queries], "pool queries")
    gallery = ImageSet(pool.gallery, None, pool.gallery_cameras, "pool gallery")
    return [(model, rank_with(cfg, transform, batch_size, model.weights, "--weights", query, gallery, pool.topk,
                              pool.exclude)) for model in models]


def score_review(pool_file, judgments_file, config_file=None, weights=(), names=None, opts=(), batch_size=None,
                 output=None, k=None, resamples=DEFAULT_RESAMPLES, seed=DEFAULT_SEED, confidence=DEFAULT_CONFIDENCE):
    """Score a judged pool; returns the report (:func:`score_pool`) and prints nothing.

    Args:
        pool_file (str): the pool's ``pool.json``.
        judgments_file (str): the judgments saved from its page (or simulated).
        config_file (str | None): config of ``weights``.
        weights (Sequence[str]): checkpoints not in the pool, ranked on its queries and scored too.
        names (Sequence[str] | None): their names (default ``new-1``, ``new-2``, ...).
        opts (Sequence[str]): KEY VALUE config overrides.
        batch_size (int | None): images per forward.
        output (str | None): where to write the report as JSON.
        k (int | None): precision cutoff (default: the pool's top-k).
        resamples (int): bootstrap resamples.
        seed (int): the bootstrap's seed.
        confidence (float): the intervals' level.
    """
    check_score_options(k, resamples, confidence)
    pool = load_pool(pool_file)
    judged = load_judgments(judgments_file, pool, pool_file)
    if output is not None and not os.path.isdir(os.path.dirname(os.path.abspath(output))):
        raise FileNotFoundError(f"--output: the folder of {output} does not exist")
    extra = rank_new_checkpoints(pool, config_file, list(weights), names, opts, batch_size)
    report = score_pool(pool, judged, extra, k, resamples, seed, confidence)
    report["text"] = format_report(report)
    if output is not None:
        with open(output, "w") as f:
            json.dump(report, f, indent=1)
    return report
