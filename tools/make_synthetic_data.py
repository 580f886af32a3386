#!/usr/bin/env python
"""Writes a synthetic source/target re-ID pair in the Market-1501 / DukeMTMC-reID layouts.

The data is procedurally drawn and is NOT Market-1501 or DukeMTMC-reID; see
docs/SYNTHETIC.md. Example::

    python tools/make_synthetic_data.py --root datasets
    python tools/make_synthetic_data.py --root datasets --num-ids-source 50 --force
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List, Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from fastreid_mmt_lab import synthetic

EXIT_ERROR = 2
COUNT_KEYS = ("train", "query", "gallery")


def build_parser() -> argparse.ArgumentParser:
    """Builds the command-line parser.

    Returns:
        The argument parser.
    """
    parser = argparse.ArgumentParser(
        description="Write synthetic cross-domain re-ID data (NOT the real data sets) "
                    "in the Market-1501 / DukeMTMC-reID folder layouts.")
    parser.add_argument("--root", default="datasets", help="data-set root (fast-reid's DATASETS root)")
    parser.add_argument("--source", default=synthetic.DEFAULT_SOURCE, choices=synthetic.DOMAINS)
    parser.add_argument("--target", default=synthetic.DEFAULT_TARGET, choices=synthetic.DOMAINS)
    parser.add_argument("--num-ids-source", type=int, default=synthetic.DEFAULT_NUM_IDS,
                        help="training identities of the source domain")
    parser.add_argument("--num-ids-target", type=int, default=synthetic.DEFAULT_NUM_IDS,
                        help="training identities of the target domain")
    parser.add_argument("--num-query-ids-source", type=int, default=synthetic.DEFAULT_NUM_QUERY_IDS,
                        help="test (query + gallery) identities of the source domain")
    parser.add_argument("--num-query-ids-target", type=int, default=synthetic.DEFAULT_NUM_QUERY_IDS,
                        help="test (query + gallery) identities of the target domain")
    parser.add_argument("--images-per-id", type=int, default=synthetic.DEFAULT_IMAGES_PER_ID)
    parser.add_argument("--height", type=int, default=synthetic.DEFAULT_HEIGHT)
    parser.add_argument("--width", type=int, default=synthetic.DEFAULT_WIDTH)
    parser.add_argument("--seed", type=int, default=synthetic.DEFAULT_SEED)
    parser.add_argument("--workers", type=int, default=1,
                        help="processes drawing the images (the files do not depend on it)")
    parser.add_argument("--folders", default=None,
                        help="also re-lay the pair as a user's own data under this folder: source/ (labelled), "
                             "target/ (unlabelled crops), target_test/ (query/gallery); README 'Your own data'")
    parser.add_argument("--force", action="store_true",
                        help="delete and rewrite existing non-empty domain folders")
    return parser


def format_counts(role: str, counts: dict) -> str:
    """Formats one domain's counts as a short line.

    Args:
        role: ``"source"`` or ``"target"``.
        counts: Counts returned by :func:`synthetic.write_domain`.

    Returns:
        A human-readable summary line.
    """
    parts = [f"{key}: {counts[key + '_ids']} ids / {counts[key + '_images']} images / "
             f"{counts[key + '_cams']} cams" for key in COUNT_KEYS]
    return (f"{role} {counts['domain']} -> {counts['dataset_dir']}\n  " + "\n  ".join(parts)
            + f"\n  background (pid 0) images: {counts['background_images']}")


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the CLI.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The process exit status (0 on success, 2 on a refusal or invalid arguments).
    """
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        counts = synthetic.write_pair(
            args.root, source=args.source, target=args.target,
            num_ids_source=args.num_ids_source, num_ids_target=args.num_ids_target,
            images_per_id=args.images_per_id,
            num_query_ids_source=args.num_query_ids_source, num_query_ids_target=args.num_query_ids_target,
            height=args.height, width=args.width, seed=args.seed, overwrite=args.force,
            workers=args.workers)
    except FileExistsError as err:
        print(f"error: {err}\nPass --force to delete and rewrite it.", file=sys.stderr)
        return EXIT_ERROR
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    for role in ("source", "target"):
        print(format_counts(role, counts[role]))
    if args.folders:
        paths = synthetic.write_folder_layouts(args.root, args.folders, args.source, args.target, args.seed)
        print("folder layouts: " + ", ".join(f"{name} -> {path}" for name, path in paths.items()))
    print(f"done in {time.perf_counter() - start:.1f}s (synthetic data, not the real data sets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
