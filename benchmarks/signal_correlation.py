#!/usr/bin/env python
"""How well each label-free signal follows the true target mAP across epochs (Spearman's rank
correlation), over runs that have both (e.g. the demo's or the ablation's runs).

    python benchmarks/signal_correlation.py output/demo/mmt output/demo/baseline output/ablation/pair1-*

For each run, the signal of epoch e (clustered from the mean nets after e epochs) is paired with
the mAP evaluated after e epochs (the same network state), e >= 1. Prints one Markdown table:
per signal, the runs where it varied, the median and range of the per-run correlations, and how
many runs had a positive one. A signal that follows mAP has correlations near 1 in every run.
"""

import argparse
import sys

from fastreid_mmt.run_metrics import MAP_SUFFIX, run_curves
from fastreid_mmt_lab.signal_study import run_correlations, table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="MMT runs' OUTPUT_DIRs with a per-epoch target mAP")
    args = parser.parse_args(argv)
    per_run = {}
    for run in args.runs:
        curves = run_curves(run)
        if MAP_SUFFIX not in curves:
            sys.exit(f"signal_correlation.py: error: {run} has no target mAP (TEST.EVAL_PERIOD 1 and a test set)")
        per_run[run] = run_correlations(curves)
    print(table(per_run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
