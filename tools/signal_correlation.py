#!/usr/bin/env python
"""How well each label-free signal follows the true target mAP across epochs (Spearman's rank
correlation), over runs that have both (e.g. the demo's or the ablation's runs).

    python tools/signal_correlation.py output/demo/mmt output/demo/baseline output/ablation/pair1-*

For each run, the signal of epoch e (clustered from the mean nets after e epochs) is paired with
the mAP evaluated after e epochs (the same network state), e >= 1. Prints one Markdown table:
per signal, the runs where it varied, the median and range of the per-run correlations, and how
many runs had a positive one. A signal that follows mAP has correlations near 1 in every run.
"""

import argparse
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scipy.stats import spearmanr  # noqa: E402

from plot_run import run_curves  # noqa: E402
from fastreid_mmt.run_metrics import MAP_SUFFIX, SIGNALS, TRUE_ID_SIGNALS  # noqa: E402

# Fewer aligned epochs than this give no correlation.
MIN_EPOCHS = 3


def run_correlations(curves):
    """``{signal: rho}`` of one run (nan where the signal or mAP is constant)."""
    maps = curves.get(MAP_SUFFIX, {})
    out = {}
    for key in SIGNALS + TRUE_ID_SIGNALS:
        epochs = sorted(e for e in curves.get(key, {}) if e in maps and e >= 1)
        if len(epochs) >= MIN_EPOCHS:
            xs, ys = [curves[key][e] for e in epochs], [maps[e] for e in epochs]
            out[key] = float("nan") if len(set(xs)) < 2 or len(set(ys)) < 2 else float(spearmanr(xs, ys)[0])
    return out


def table(per_run):
    lines = ["| signal | runs (varied / all) | median rho | range | rho > 0 |", "| --- | --- | --- | --- | --- |"]
    for key in SIGNALS + TRUE_ID_SIGNALS:
        values = [r[key] for r in per_run.values() if key in r]
        varied = [v for v in values if not math.isnan(v)]
        if not values:
            continue
        if varied:
            lines.append(f"| {key} | {len(varied)} / {len(values)} | {statistics.median(varied):+.2f} | "
                         f"{min(varied):+.2f} .. {max(varied):+.2f} | {sum(v > 0 for v in varied)} |")
        else:
            lines.append(f"| {key} | 0 / {len(values)} | constant | | |")
    return "\n".join(lines)


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
