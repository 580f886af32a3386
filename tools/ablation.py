#!/usr/bin/env python
"""The paper's ablations of MMT, with seeds, on the demo's synthetic data (issue 22).

    python tools/ablation.py --pairs output/demo --seeds 1 2 3 --output output/ablation
    python tools/ablation.py --pairs output/demo /path/to/second/demo --variants baseline-1net mmt

Each ``--pairs`` folder holds a stage-I pair (``pretrain-seed1/model_final.pth``,
``pretrain-seed2/model_final.pth`` and the synthetic ``data/``), as ``tools/demo.py`` writes it.
From each pair, every variant runs ``configs/Demo/mmt.yml`` once per stage-II seed (``SEED``:
sampling, augmentation, clustering) and regime, ``--jobs`` at a time with ``cores / jobs`` threads
each. A regime puts back the reference's stage-II setting where the demo departs from it
(``docs/FIDELITY.md`` "Demo-only departures"): all of them (``reference``) or one
(``reference-lr``, ``-erasing``, ``-momentum``); ``demo`` changes nothing; ``former-demo`` is
the demo's stage II before session 9 (Adam's moments kept across epochs).
On the command line a run gets the regime's keys, then ``--opts``, then the variant's, so a
variant's own keys win (the one-network baseline keeps momentum 0 in every regime).
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
    # The two soft-loss rows again, with the hard twin held at its weight in MMT (1 - the
    # paper's soft weight) instead of raised to 1: what dropping the soft loss does alone.
    "mmt-no-soft-ce-hard-kept": ["MMT.SOFT_CE_WEIGHT", "0.0", "MMT.HARD_CE_WEIGHT", "0.5"],
    "mmt-no-soft-tri-hard-kept": ["MMT.SOFT_TRI_WEIGHT", "0.0", "MMT.HARD_TRI_WEIGHT", "0.2"],
}
# The paper's six rows (its ablation table): what runs unless --variants says otherwise.
PAPER_ROWS = ["baseline-1net", "baseline-2net", "mmt-no-soft-ce", "mmt-no-soft-tri", "mmt-student-teacher", "mmt"]
# The reference's stage-II settings where configs/Demo/mmt.yml departs from them.
REFERENCE = {
    "lr": ["SOLVER.BASE_LR", "0.00035"],  # demo 1e-4
    "erasing": ["INPUT.REA.ENABLED", "True"],  # demo off
    "momentum": ["MMT.EMA_ALPHA", "0.999"],  # demo 0.96
}
# The demo's stage II before session 9 (Adam's moments kept across epochs): the regime of the
# first three stage-I pairs' rows in BENCHMARKS.md. Its one-setting rows of session 8 rerun as
# ``--regimes former-demo --opts "MMT.EMA_ALPHA 0.999"`` and so on.
FORMER_DEMO = ["MMT.EMA_ALPHA", "0.96", "MMT.RESET_OPTIMIZER_EACH_EPOCH", "False"]
REGIMES = {"demo": [], "reference": [opt for opts in REFERENCE.values() for opt in opts],
           **{f"reference-{name}": opts for name, opts in REFERENCE.items()},
           "former-demo": FORMER_DEMO}


def group_name(regime, variant):
    """A row of the table: the variant, prefixed by its regime unless it is the demo's."""
    return variant if regime == "demo" else f"{regime}/{variant}"


def run_specs(pairs, variants, seeds, output, extra, regimes=("demo",)):
    """``(name, pair, group, seed, run_dir, args)`` of every run, regime by regime."""
    specs = []
    for p, pair in enumerate(pairs):
        init = [os.path.join(pair, f"pretrain-seed{s}", "model_final.pth") for s in demo.SEEDS]
        for regime, variant, seed in itertools.product(regimes, variants, seeds):
            group = group_name(regime, variant)
            name = f"pair{p + 1}-{group.replace('/', '-')}-seed{seed}"
            run_dir = os.path.join(output, name)
            args = ["--config-file", demo.MMT_CFG, *REGIMES[regime], *extra, *VARIANTS[variant],
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", required=True, help="demo output folders holding a stage-I pair")
    parser.add_argument("--variants", nargs="+", default=PAPER_ROWS, choices=list(VARIANTS),
                        help="rows to run (default: the paper's six)")
    parser.add_argument("--regimes", nargs="+", default=["demo"], choices=list(REGIMES),
                        help="stage-II settings: the demo's, the reference's, or the demo with one reference setting")
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
                      args.opts.split(), args.regimes)
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
    for name, pair, group, seed, run_dir, _ in specs:
        if not os.path.isfile(os.path.join(run_dir, "model_final.pth")):
            continue
        results.append(dict(name=name, pair=args.pairs.index(next(p for p in args.pairs
                                                                   if os.path.abspath(p) == pair)) + 1,
                            variant=group, seed=seed, **run_result(run_dir)))
    groups = [group_name(regime, variant) for regime in args.regimes for variant in args.variants]
    summary, separated = summarise(results, groups)
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
