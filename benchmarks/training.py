#!/usr/bin/env python
"""Time MMT training through ``tools/train_net.py`` with 1, 2, ... processes.

    python benchmarks/training.py --data-root output/demo/data --procs 1 2 --iters 40 \
        --config-file configs/Demo/mmt.yml [KEY VALUE ...]

Each process count runs one MMT epoch of ``--iters`` iterations (plus its clustering and the
final evaluation) from the same two randomly initialised source checkpoints (``--random-init``,
the default) or ``MMT.INIT_WEIGHTS`` given as an override. Prints one Markdown table: training
speed (fast-reid's own "Overall training speed" line), target images per second (each image
pair = 4 network passes), feature extraction and clustering time of epoch 0, peak GPU memory
(CUDA only) and whether the epoch-0 pseudo labels equal those of the first process count.
"""

import argparse
import os
import sys

import numpy as np

from fastreid_mmt.engine.setup import build_cfg
from fastreid_mmt_lab.recipes import MMT_CFG
from fastreid_mmt_lab.training_bench import random_source_checkpoints, run_training, table


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default=MMT_CFG)
    parser.add_argument("--data-root", required=True, help="FASTREID_DATASETS holding the target set")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--iters", type=int, default=40, help="MMT iterations timed per run")
    parser.add_argument("--output-dir", default="output/benchmark_training")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    args = parser.parse_args()
    opts = list(args.opts)
    if "MMT.INIT_WEIGHTS" not in opts:
        paths = random_source_checkpoints(args.config_file, opts, os.path.join(args.output_dir, "init"))
        opts += ["MMT.INIT_WEIGHTS", str(paths)]
    rows, first = {}, None
    for procs in args.procs:
        out = os.path.join(args.output_dir, f"procs{procs}")
        rows[procs] = run_training(args.config_file, procs, args.iters, opts, out, args.data_root)
        labels = np.load(os.path.join(out, "pseudo_labels", "epoch_000.npy"))
        first = labels if first is None else first
        rows[procs]["same_labels"] = "yes" if np.array_equal(labels, first) else "no"
    batch = build_cfg(args.config_file, opts).SOLVER.IMS_PER_BATCH
    print(f"Command: {' '.join(sys.argv)}")
    print(f"Batch {batch} images (x2 views) per iteration; {args.iters} iterations per run.\n")
    print(table(rows, batch))


if __name__ == "__main__":
    main()
