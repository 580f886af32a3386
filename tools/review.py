#!/usr/bin/env python
"""Did adaptation help on your cameras? A blind review measures it without labels.

Step 1, the page: rank your unlabelled images with two (or more) checkpoints, pool each one's
top-k for a seeded draw of queries (spread over the cameras when they are known), and write a
page that shows each query with the pooled candidates, shuffled, without saying which model
found which:

    python tools/review.py --config-file configs/MMT/folder.yml \\
        --weights logs/mmt/model_final.pth --weights-before logs/pretrain/model_final.pth \\
        --images /data/my_crops --output output/review [--queries 50] [--topk 10] \\
        [--cameras subfolder] [--cross-camera] [KEY VALUE ...]

Open output/review/review.html in a browser (from disk, or `python -m http.server` in that
folder), mark the candidates that are the same person as the query (mouse, or keyboard only:
arrows or digits move, Space marks, Enter goes to the next query), and save the judgments
(S or the Save button). pool.json next to the page records which model ranked what.

Step 2, the scores: precision@k, rank-1 and AP of each model over the judged queries, with
bootstrap intervals, and each pair's paired difference with a plain verdict:

    python tools/review.py score --pool output/review/pool.json \\
        --judgments ~/Downloads/judgments-<pool id>.json [--output scores.json] \\
        [--config-file CFG --weights another.pth [--name NAME]] [KEY VALUE ...]

--weights in the score step ranks a checkpoint not in the pool on the same queries and gallery
and scores it on the same judgments, reporting how many of its candidates no one judged.
--simulate-from-ids (step 1, labelled folder or data set name) writes judgments-simulated.json
from the true identities. KEY VALUE config overrides come last.
"""

import argparse
import logging
import shlex
import sys

import fastreid_mmt  # noqa: F401  (applies the compat shims and registers MMT)

from fastreid_mmt.retrieval.image_sets import LABELLED_CHOICES
from fastreid_mmt.retrieval.review_score import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED
from fastreid_mmt.retrieval.review_workflow import (DEFAULT_QUERIES, DEFAULT_TOPK, build_review,
                                                    score_review)

SCORE = "score"
BEFORE, AFTER, EXTRA = "before", "after", "extra-{}"

logger = logging.getLogger("fastreid_mmt.review")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     usage="%(prog)s [score] ... (see below)")
    parser.add_argument("--config-file", required=True, help="the config the checkpoints were trained with")
    parser.add_argument("--weights", required=True, help="checkpoint after adaptation (MMT or single network)")
    parser.add_argument("--weights-before", default=None, help="checkpoint before adaptation (e.g. direct transfer)")
    parser.add_argument("--weights-extra", action="append", default=[], metavar="PATH",
                        help="a further checkpoint to pool (repeatable)")
    parser.add_argument("--images", required=True, help="a folder of images (queries and gallery) or a data set name")
    parser.add_argument("--output", required=True, help="folder for review.html, its images and pool.json")
    parser.add_argument("--queries", type=int, default=DEFAULT_QUERIES, help="queries drawn")
    parser.add_argument("--topk", type=int, default=DEFAULT_TOPK, help="candidates each model pools per query")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the query draw and the shuffle")
    parser.add_argument("--batch-size", type=int, default=None, help="images per forward (TEST.IMS_PER_BATCH)")
    parser.add_argument("--labelled", nargs="?", const="yes", default="auto", choices=LABELLED_CHOICES,
                        help="the folder holds one subfolder per identity (default: detected)")
    parser.add_argument("--cameras", default="none", help="camera rule: none, subfolder, or a regex with one group")
    parser.add_argument("--cross-camera", action="store_true",
                        help="offer only candidates from other cameras than the query's (needs --cameras)")
    parser.add_argument("--simulate-from-ids", action="store_true",
                        help="also write judgments-simulated.json from the true identities (labelled images)")
    parser.add_argument("--overwrite", action="store_true", help="replace a review already in --output")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides (last)")
    return parser


def build_score_parser():
    parser = argparse.ArgumentParser(prog="review.py score", description="Score a judged review pool.")
    parser.add_argument("--pool", required=True, help="the pool.json written next to review.html")
    parser.add_argument("--judgments", required=True, help="the judgments file saved from the page")
    parser.add_argument("--config-file", default=None, help="config of the --weights checkpoints")
    parser.add_argument("--weights", action="append", default=[], metavar="PATH",
                        help="a checkpoint not in the pool, ranked on its queries and scored (repeatable)")
    parser.add_argument("--name", action="append", default=None, help="name of each --weights (repeatable)")
    parser.add_argument("--k", type=int, default=None, help="precision cutoff (default: the pool's --topk)")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the bootstrap's seed")
    parser.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE, help="the intervals' level")
    parser.add_argument("--batch-size", type=int, default=None, help="images per forward (TEST.IMS_PER_BATCH)")
    parser.add_argument("--output", default=None, help="also write the report as JSON to this file")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides (last)")
    return parser


def run_build(args):
    checkpoints = [(AFTER, args.weights, "--weights")]
    if args.weights_before:
        checkpoints.insert(0, (BEFORE, args.weights_before, "--weights-before"))
    checkpoints += [(EXTRA.format(i + 1), path, "--weights-extra") for i, path in enumerate(args.weights_extra)]
    written = build_review(args.config_file, checkpoints, args.images, args.output, args.opts, args.queries,
                           args.topk, args.seed, args.labelled, args.cameras, args.cross_camera, args.batch_size,
                           args.overwrite, args.simulate_from_ids)
    pool = written["pool"]
    print(f"pool {pool.pool_id}: {len(pool.queries)} queries, "
          f"{sum(len(q.candidates) for q in pool.queries)} candidates to judge")
    print(f"page: {written['page']}\npool: {written['pool_file']}")
    if "judgments" in written:
        print(f"simulated judgments: {written['judgments']}")
    print(f"score: python tools/review.py score --pool {shlex.quote(written['pool_file'])} --judgments JUDGMENTS.json")


def run_score(args):
    report = score_review(args.pool, args.judgments, args.config_file, args.weights, args.name, args.opts,
                          args.batch_size, args.output, k=args.k, resamples=args.resamples, seed=args.seed,
                          confidence=args.confidence)
    print(report["text"])
    if args.output:
        print(f"wrote {args.output}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    scoring = bool(argv) and argv[0] == SCORE
    args = (build_score_parser() if scoring else build_parser()).parse_args(argv[1:] if scoring else argv)
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    try:
        (run_score if scoring else run_build)(args)
    except (ValueError, OSError) as err:  # bad input: one line naming it, no traceback
        sys.exit(f"review.py: error: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
