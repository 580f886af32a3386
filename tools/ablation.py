#!/usr/bin/env python
"""The paper's ablations of MMT, with seeds, on the demo's synthetic data (issue 22).

    python tools/ablation.py --pairs output/demo --seeds 1 2 3 --output output/ablation
    python tools/ablation.py --pairs output/demo /path/to/second/demo --variants baseline-1net mmt

Each ``--pairs`` folder holds a stage-I pair (``pretrain-seed1/model_final.pth``,
``pretrain-seed2/model_final.pth`` and the synthetic ``data/``), as ``tools/demo.py`` writes it.
From each pair, every variant runs ``configs/Demo/mmt.yml`` once per stage-II seed (``SEED``:
sampling, augmentation, clustering), ``--jobs`` at a time with ``cores / jobs`` threads each.
A run whose ``model_final.pth`` exists is not rerun (an interrupted ablation continues);
``--summarise-only`` runs nothing and summarises the finished runs.

Prints and writes (``<output>/ablation.md``, ``ablation.json``) the final target mAP of each
run, each variant's mean, standard deviation and range over its runs, and which pairs of
variants differ by more than the spread: their ranges over the seeds do not overlap.
Synthetic data only: never a Market-1501 / DukeMTMC-reID result.
"""

import argparse
import itertools
import json
import os
import statistics
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tools"))

import demo  # noqa: E402  (its subprocess runner and config paths)

from fastreid_mmt.run_metrics import MAP_SUFFIX, config_value, metric_key, per_epoch, read_metrics  # noqa: E402

# A variant with fewer runs has no spread: it is listed, never called separated.
MIN_RUNS_TO_JUDGE = 2
HARD_ONLY = ["MMT.SOFT_CE_WEIGHT", "0.0", "MMT.SOFT_TRI_WEIGHT", "0.0"]
# The rows of the paper's ablation table that the plugin can run, by name.
VARIANTS = {
    # One network, hard pseudo labels from its own features (the paper's "baseline").
    "baseline-1net": ["MMT.SINGLE_NETWORK", "True", *HARD_ONLY, "MMT.EMA_ALPHA", "0.0"],
    # Two networks on hard labels clustered from their averaged features (the former demo row).
    "baseline-2net": [*HARD_ONLY, "MMT.EMA_ALPHA", "0.0"],
    "mmt-no-soft-ce": ["MMT.SOFT_CE_WEIGHT", "0.0"],
    "mmt-no-soft-tri": ["MMT.SOFT_TRI_WEIGHT", "0.0"],
    # Momentum 0: each mean net is its student, so each student is taught by the other student.
    "mmt-student-teacher": ["MMT.EMA_ALPHA", "0.0"],
    "mmt": [],
}


def run_specs(pairs, variants, seeds, output, extra):
    """``(name, pair, variant, seed, run_dir, args)`` of every run."""
    specs = []
    for p, pair in enumerate(pairs):
        init = [os.path.join(pair, f"pretrain-seed{s}", "model_final.pth") for s in demo.SEEDS]
        for variant, seed in itertools.product(variants, seeds):
            name = f"pair{p + 1}-{variant}-seed{seed}"
            run_dir = os.path.join(output, name)
            args = ["--config-file", demo.MMT_CFG, *VARIANTS[variant], *extra, "MMT.INIT_WEIGHTS", str(init),
                    "SEED", str(seed), "OUTPUT_DIR", run_dir]
            specs.append((name, pair, variant, seed, run_dir, args))
    return specs


def run_result(run_dir):
    """Final mAP and the per-epoch mAP of one finished run."""
    rows = read_metrics(run_dir)
    key = metric_key(rows, MAP_SUFFIX)
    ipe = int(config_value(run_dir, "MMT.ITERS_PER_EPOCH"))
    curve = per_epoch(rows, ipe, [key])[key]
    return {"final_mAP": curve[max(curve)], "mAP_per_epoch": curve}


def summarise(results, variants):
    """Per variant: runs, mean, sd, min, max of the final mAP; and the separated pairs."""
    summary = {}
    for variant in variants:
        values = [r["final_mAP"] for r in results if r["variant"] == variant]
        if values:
            summary[variant] = dict(n=len(values), mean=statistics.mean(values),
                                    sd=statistics.stdev(values) if len(values) > 1 else 0.0,
                                    min=min(values), max=max(values))
    separated = []
    judged = [v for v in summary if summary[v]["n"] >= MIN_RUNS_TO_JUDGE]
    for a, b in itertools.combinations(judged, 2):
        lo, hi = sorted((summary[a], summary[b]), key=lambda s: s["mean"])
        if lo["max"] < hi["min"]:
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
                 f"{MIN_RUNS_TO_JUDGE} runs): "
                 + ("; ".join(f"{a} vs {b}" for a, b in separated) or "none"))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", required=True, help="demo output folders holding a stage-I pair")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--output", default="output/ablation")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--opts", default="", help="extra 'KEY VALUE ...' for every run")
    parser.add_argument("--summarise-only", action="store_true",
                        help="run nothing: summarise the finished runs (missing ones are listed, not run)")
    args = parser.parse_args(argv)
    output = os.path.abspath(args.output)
    os.makedirs(os.path.join(output, "logs"), exist_ok=True)
    specs = run_specs([os.path.abspath(p) for p in args.pairs], args.variants, args.seeds, output,
                      args.opts.split())
    threads = str(max(1, (os.cpu_count() or 1) // max(1, args.jobs)))
    results = []
    for pair in sorted({s[1] for s in specs}):
        env = dict(os.environ, FASTREID_DATASETS=os.path.join(pair, "data"), PYTHONWARNINGS="ignore",
                   OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        todo = [(name, run_args, os.path.join(output, "logs", name + ".log"))
                for name, p, _, _, run_dir, run_args in specs
                if p == pair and not os.path.isfile(os.path.join(run_dir, "model_final.pth"))]
        if args.summarise_only:
            for name, _, _ in todo:
                print(f"  not finished, left out: {name}")
        else:
            demo.run_group(todo, max(1, args.jobs), env)
    for name, pair, variant, seed, run_dir, _ in specs:
        if not os.path.isfile(os.path.join(run_dir, "model_final.pth")):
            continue
        results.append(dict(name=name, pair=args.pairs.index(next(p for p in args.pairs
                                                                   if os.path.abspath(p) == pair)) + 1,
                            variant=variant, seed=seed, **run_result(run_dir)))
    summary, separated = summarise(results, args.variants)
    table = markdown(results, summary, separated)
    print(table)
    with open(os.path.join(output, "ablation.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(output, "ablation.json"), "w") as f:
        json.dump({"runs": results, "summary": summary, "separated": separated, "pairs": args.pairs,
                   "note": "synthetic data (tools/demo.py), not Market-1501 / DukeMTMC-reID"}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
