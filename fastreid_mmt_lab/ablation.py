"""The paper's ablations of MMT on the demo's synthetic data: each run's command line, and the
summary over stage-II seeds (``benchmarks/ablation.py`` runs them).

A run gets the regime's keys, then the extra options, then the variant's, so a variant's own
keys win (the one-network baseline keeps momentum 0 in every regime).
"""

import itertools
import os
import statistics

from fastreid_mmt.run_metrics import MAP_SUFFIX, config_value, metric_key, per_epoch, read_metrics

from .recipes import MMT_CFG, PRETRAIN_SEEDS, REGIMES, VARIANTS

# A variant with fewer runs has no spread: it is listed, never called separated.
MIN_RUNS_TO_JUDGE = 2


def group_name(regime, variant):
    """A row of the table: the variant, prefixed by its regime unless it is the demo's."""
    return variant if regime == "demo" else f"{regime}/{variant}"


def run_specs(pairs, variants, seeds, output, extra, regimes=("demo",)):
    """``(name, pair, group, seed, run_dir, args)`` of every run, regime by regime."""
    specs = []
    for p, pair in enumerate(pairs):
        init = [os.path.join(pair, f"pretrain-seed{s}", "model_final.pth") for s in PRETRAIN_SEEDS]
        for regime, variant, seed in itertools.product(regimes, variants, seeds):
            group = group_name(regime, variant)
            name = f"pair{p + 1}-{group.replace('/', '-')}-seed{seed}"
            run_dir = os.path.join(output, name)
            args = ["--config-file", MMT_CFG, *REGIMES[regime], *extra, *VARIANTS[variant],
                    "MMT.INIT_WEIGHTS", str(init), "SEED", str(seed), "OUTPUT_DIR", run_dir]
            specs.append((name, pair, group, seed, run_dir, args))
    return specs


def run_result(run_dir):
    """Final mAP and the per-epoch mAP of one finished run."""
    rows = read_metrics(run_dir)
    key = metric_key(rows, MAP_SUFFIX)
    ipe = int(config_value(run_dir, "MMT.ITERS_PER_EPOCH"))
    curve = per_epoch(rows, ipe, [key])[key]
    return {"final_mAP": curve[max(curve)], "mAP_per_epoch": curve}


def split_group(group):
    """``(regime, variant)`` of a table row."""
    regime, _, variant = group.rpartition("/")
    return regime or "demo", variant


def comparable(a, b):
    """Two rows are compared when one thing differs: the variant or the regime."""
    (regime_a, variant_a), (regime_b, variant_b) = split_group(a), split_group(b)
    return regime_a == regime_b or variant_a == variant_b


def summarise(results, groups):
    """Per row (regime/variant): runs, mean, sd, min, max of the final mAP; and the separated
    pairs of rows that differ in one thing (variant or regime)."""
    summary = {}
    for group in groups:
        values = [r["final_mAP"] for r in results if r["variant"] == group]
        if values:
            summary[group] = dict(n=len(values), mean=statistics.mean(values),
                                  sd=statistics.stdev(values) if len(values) > 1 else 0.0,
                                  min=min(values), max=max(values))
    separated = []
    judged = [g for g in summary if summary[g]["n"] >= MIN_RUNS_TO_JUDGE]
    for a, b in itertools.combinations(judged, 2):
        lo, hi = sorted((summary[a], summary[b]), key=lambda s: s["mean"])
        if comparable(a, b) and lo["max"] < hi["min"]:
            separated.append((a, b))
    return summary, separated


def markdown(results, summary, separated):
    lines = ["| variant | runs | mean mAP | sd | range | final mAP per run (pair/seed) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for variant, s in summary.items():
        runs = ", ".join(f"{r['final_mAP']:.1f} (p{r['pair']}/s{r['seed']})" for r in results
                         if r["variant"] == variant)
        lines.append(f"| {variant} | {s['n']} | {s['mean']:.1f} | {s['sd']:.1f} | {s['min']:.1f}-{s['max']:.1f} "
                     f"| {runs} |")
    lines.append("")
    lines.append(f"Differences beyond the spread (ranges over the runs do not overlap; variants with at least "
                 f"{MIN_RUNS_TO_JUDGE} runs; rows differing in the variant or in the regime): "
                 + ("; ".join(f"{a} vs {b}" for a, b in separated) or "none"))
    return "\n".join(lines)
