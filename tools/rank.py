#!/usr/bin/env python
"""See what a model retrieves: rank a gallery for each query, save features and rankings, and
draw a contact sheet (optionally "before" and "after" adaptation, one row above the other).

    python tools/rank.py --config-file configs/MMT/market.yml \
        --weights logs/mmt/duke2market/model_final.pth \
        --query Market1501 --gallery Market1501 --output output/rank [--topk 10] \
        [--weights-before logs/pretrain/duke-seed1/model_final.pth] [KEY VALUE ...]

--weights: an MMT checkpoint (evaluated with MMT.TEST_NET), or a single-network checkpoint
(tools/export_model.py's model_final.pth with its config.yaml, or a pre-training checkpoint).
--query: image files, a folder, or a registered fast-reid data set (its query split);
--gallery: a folder or a data set (its gallery split), read under FASTREID_DATASETS.
A folder with one subfolder per identity is labelled (--labelled yes/no overrides the
detection). Written into --output: query.txt/.npy, gallery.txt/.npy (float32 L2-normalised
features, rows in the order of the .txt lines), ranks.csv (query,rank,gallery,distance;
distance = 1 - cosine similarity), ap.csv and mAP in summary.json with identities, ranks.png;
with --weights-before the same files of that model under before/. KEY VALUE config overrides
come last, after an option other than --query.
"""

import argparse
import logging
import os
import re
import sys


import fastreid_mmt  # noqa: F401  (applies the compat shims and registers MMT)
from fastreid.data.transforms import build_transforms

from fastreid_mmt.data import dataset_root
from fastreid_mmt.engine.setup import build_cfg
from fastreid_mmt.retrieval.image_sets import (GALLERY, LABELLED_CHOICES, QUERY, first_per_camera,
                                               read_image_set)
from fastreid_mmt.retrieval.retrieve import check_topk, rank_gallery, save_ranking
from fastreid_mmt.retrieval.sheet import (DEFAULT_MAX_ROWS, draw_before_after_sheet, draw_sheet,
                                          rows_from_ranking)
from fastreid_mmt.retrieval.weights import load_feature_model

DEFAULT_TOPK = 10
SHEET = "ranks.png"
BEFORE_FOLDER = "before"
# The checkpoints replace every weight: never load ImageNet weights for them.
NO_IMAGENET = ["MODEL.BACKBONE.PRETRAIN", "False"]
# A fast-reid config key (``MODEL.DEVICE``): overrides swallowed by --query's file list.
CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")

logger = logging.getLogger("fastreid_mmt.rank")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="the config the checkpoint(s) were trained with")
    parser.add_argument("--weights", required=True, help="MMT or single-network checkpoint")
    parser.add_argument("--weights-before", default=None, help="a second checkpoint shown as the 'before' rows")
    parser.add_argument("--query", nargs="+", required=True, help="image files, a folder, or a data set name")
    parser.add_argument("--gallery", required=True, help="a folder or a data set name")
    parser.add_argument("--output", required=True, help="folder for the features, rankings and sheet")
    parser.add_argument("--topk", type=int, default=DEFAULT_TOPK, help="gallery images kept per query")
    parser.add_argument("--batch-size", type=int, default=None, help="images per forward (TEST.IMS_PER_BATCH)")
    parser.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS, help="queries drawn on the sheet")
    parser.add_argument("--labelled", nargs="?", const="yes", default="auto", choices=LABELLED_CHOICES,
                        help="folders hold one subfolder per identity (default: detected)")
    parser.add_argument("--cameras", default="none",
                        help="camera rule of folders: none, subfolder, or a regex with one group")
    parser.add_argument("--query-per-camera", type=int, default=None,
                        help="keep only the first N queries (by path) of each camera")
    parser.add_argument("--drop-same-camera", action="store_true",
                        help="leave out gallery images of the query's identity and camera (benchmark protocol)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides (last)")
    return parser


def check_args(parser, args):
    """Argument errors argparse cannot see: exit 2 with the message."""
    swallowed = [s for s in args.query if CONFIG_KEY.match(s) and not os.path.exists(s)]
    if swallowed:
        parser.error(f"--query: {swallowed[0]!r} looks like a config key: put KEY VALUE overrides last, after an "
                     f"option other than --query (e.g. after --gallery)")
    for name in ("batch_size", "max_rows", "query_per_camera"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def rank_one(model, cfg, args, query, gallery, folder, label):
    """Rank with one model, write its files into ``folder``; returns its sheet rows."""
    ranking = rank_gallery(model, query, gallery, build_transforms(cfg, is_train=False), args.topk,
                           args.batch_size or cfg.TEST.IMS_PER_BATCH, cfg.MODEL.DEVICE,
                           cfg.DATALOADER.NUM_WORKERS, args.drop_same_camera)
    for path in save_ranking(folder, query, gallery, ranking):
        logger.info("wrote %s", path)
    summary = ranking.summary
    if "mAP" in summary:
        logger.info("%s: mAP %.4f, rank-1 %.4f over %d query(ies) with a match in the gallery", label,
                    summary["mAP"], summary["rank1"], summary["evaluated_queries"])
    return rows_from_ranking(query.paths, gallery.paths, ranking.distances, ranking.indices, ranking.correct,
                             ranking.ap, max_rows=args.max_rows)


def run(args):
    cfg = build_cfg(args.config_file, [*args.opts, *NO_IMAGENET])
    query = read_image_set(args.query, QUERY, args.labelled, args.cameras, dataset_root(), "--query")
    if args.query_per_camera is not None:
        query = first_per_camera(query, args.query_per_camera)
    gallery = read_image_set([args.gallery], GALLERY, args.labelled, args.cameras, dataset_root(), "--gallery")
    check_topk(args.topk, len(gallery))
    logger.info("%d queries (%s), gallery of %d (%s)", len(query), query.origin, len(gallery), gallery.origin)
    model = load_feature_model(cfg, args.weights, "--weights")
    before = load_feature_model(cfg, args.weights_before, "--weights-before") if args.weights_before else None
    os.makedirs(args.output, exist_ok=True)
    rows = rank_one(model, cfg, args, query, gallery, args.output, "--weights")
    sheet = os.path.join(args.output, SHEET)
    if before is None:
        draw_sheet(rows, sheet)
    else:
        before_rows = rank_one(before, cfg, args, query, gallery, os.path.join(args.output, BEFORE_FOLDER),
                               "--weights-before")
        draw_before_after_sheet(before_rows, rows, sheet)
    logger.info("wrote %s", sheet)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    try:
        run(args)
    except (ValueError, OSError) as err:  # bad input: one line naming it, no traceback
        sys.exit(f"rank.py: error: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
