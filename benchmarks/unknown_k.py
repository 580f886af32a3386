#!/usr/bin/env python
"""Adaptation without knowing the number of identities: final target mAP of each clustering
on synthetic targets of several shapes, from one stage-I pair (reads the true ids to score).

    python benchmarks/unknown_k.py --pair output/demo --shapes 100x10 250x4 100x2-10 --seeds 1 2 \\
        --output output/unknown_k

Each shape (``IDSxCROPS`` or ``IDSxLO-HI``, ``fastreid_mmt_lab/target_shapes.py``) is drawn in
the ``--target`` layout (Duke, the demo's direction, or Market for a pair trained the other way;
new people, not the demo's) under ``--output/<shape>/data``; from the pair's two checkpoints
(``tools/demo.py``'s ``output/demo``), stage II runs ``configs/Demo/mmt.yml`` with each method per
stage-II seed, ``--jobs`` at a time:

* ``direct``: the pair's seed-1 model evaluated on the shape's test set (no adaptation);
* ``bn-only``: its BN statistics re-estimated on the shape's training images (lr 0, one epoch);
* ``kmeans-true-k``: the paper's k-means with the true number of identities (the reference);
* ``dbscan-reference``: the reference's DBSCAN rule (``configs/MMT/*-dbscan.yml``);
* ``kmeans-estimated-k``: k-means with K estimated from the features (``NUM_CLUSTERS 0``), always;
* ``estimated-k-structure``: the same estimate, but the DBSCAN rule where the features' cluster
  structure is below 0.17 (``MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE``) and it fills a batch: what
  ``configs/MMT/folder.yml`` runs;
* ``true-ids``: the target's true ids in place of clustering (``MMT.CLUSTER.METHOD ground_truth``),
  not adaptation but the ceiling of any pseudo labels under this stage-II recipe (opt-in).

A finished run is not rerun; a run that a clustering stops is reported as stopped. Prints one
Markdown table: per shape and method, the final mAP of each seed and the mean of the finished
ones (no epoch selection). Synthetic data only.
"""

import argparse
import os
import re
import statistics

from fastreid_mmt_lab.demo import final_metrics
from fastreid_mmt_lab.jobs import Run, run_env, run_group
from fastreid_mmt_lab.recipes import BN_ONLY_OPTS, MMT_CFG, PRETRAIN_CFG, PRETRAIN_SEEDS
from fastreid_mmt_lab.target_shapes import FASTREID_CLASS, parse_shape, write_target

HEIGHT, WIDTH = 128, 64  # the demo's input size
# configs/MMT/folder.yml's MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE.
FOLDER_MIN_SILHOUETTE = "0.17"
METHODS = {
    "kmeans-true-k": lambda shape: ["MMT.CLUSTER.NUM_CLUSTERS", str(shape.num_ids)],
    "dbscan-reference": lambda shape: ["MMT.CLUSTER.METHOD", "dbscan", "MMT.CLUSTER.EPS", "0.0"],
    "kmeans-estimated-k": lambda shape: ["MMT.CLUSTER.NUM_CLUSTERS", "0", "MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE", "0.0"],
    "estimated-k-structure": lambda shape: ["MMT.CLUSTER.NUM_CLUSTERS", "0",
                                            "MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE", FOLDER_MIN_SILHOUETTE],
    "true-ids": lambda shape: ["MMT.CLUSTER.METHOD", "ground_truth"],
}
DEFAULT_METHODS = [m for m in METHODS if m != "true-ids"]
SINGLE_RUN = ("direct", "bn-only")  # no stage-II seed: one run per shape
# fast-reid's result row of a data set in a log: Rank-1, Rank-5, Rank-10, mAP.
RESULT_ROW = r"\| {} +\| [\d.]+ +\| [\d.]+ +\| [\d.]+ +\| ([\d.]+)"


def test_opts(dataset):
    """The override that evaluates a run on ``dataset``'s test set."""
    return ["DATASETS.TESTS", f"('{dataset}',)"]


def target_opts(dataset):
    """The overrides that point a stage-II run's training target and test set at ``dataset``."""
    return ["DATASETS.NAMES", f"('{dataset}',)", *test_opts(dataset)]


def evaluate_direct(pair, dataset, run_dir, log, env):
    """The seed-1 source model on the shape's test set (fast-reid's --eval-only)."""
    os.makedirs(run_dir, exist_ok=True)
    weights = os.path.join(pair, "pretrain-seed1", "model_final.pth")
    Run("direct", ["--config-file", PRETRAIN_CFG, "--eval-only", "MODEL.WEIGHTS", weights,
                   *test_opts(dataset), "OUTPUT_DIR", run_dir], log, env).wait_ok()


def final_map(method, dataset, run_dir, log):
    """A run's final target mAP: its metrics.json, or the evaluation log of ``direct``; None
    for a run that stopped (e.g. a clustering with too few clusters to fill a batch)."""
    if method != "direct":
        finished = os.path.isfile(os.path.join(run_dir, "model_final.pth"))
        return final_metrics(run_dir)["mAP"] if finished else None
    with open(log) as f:
        return float(re.findall(RESULT_ROW.format(dataset), f.read())[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", required=True, help="a stage-I pair folder (tools/demo.py's output)")
    parser.add_argument("--shapes", nargs="+", required=True, help="IDSxCROPS or IDSxLO-HI")
    parser.add_argument("--target", choices=sorted(FASTREID_CLASS), default="duke",
                        help="the layout of the targets: duke for a pair trained Market -> Duke (the demo's)")
    parser.add_argument("--methods", nargs="+", default=[*SINGLE_RUN, *DEFAULT_METHODS], choices=[*SINGLE_RUN, *METHODS])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--output", default="output/unknown_k")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--opts", default="", help="extra 'KEY VALUE ...' for every stage-II run")
    args = parser.parse_args()
    pair, output = os.path.abspath(args.pair), os.path.abspath(args.output)
    dataset = FASTREID_CLASS[args.target]
    init = ["MMT.INIT_WEIGHTS", str([os.path.join(pair, f"pretrain-seed{s}", "model_final.pth")
                                     for s in PRETRAIN_SEEDS])]
    rows = []
    for shape in map(parse_shape, args.shapes):
        folder = os.path.join(output, shape.name)
        data_root = os.path.join(folder, "data")
        write_target(data_root, shape, HEIGHT, WIDTH, domain=args.target)
        env = run_env(data_root, args.jobs)
        os.makedirs(os.path.join(folder, "logs"), exist_ok=True)
        specs = []
        for method in args.methods:
            seeds = [None] if method in SINGLE_RUN else args.seeds
            for seed in seeds:
                name = method if seed is None else f"{method}-seed{seed}"
                run_dir = os.path.join(folder, name)
                log = os.path.join(folder, "logs", name + ".log")
                rows.append((shape.name, method, run_dir, log))
                done = "config.yaml" if method == "direct" else "model_final.pth"
                if os.path.isfile(os.path.join(run_dir, done)):
                    continue
                if method == "direct":
                    evaluate_direct(pair, dataset, run_dir, log, env)
                    continue
                extra = (BN_ONLY_OPTS + METHODS["kmeans-true-k"](shape) if method == "bn-only"
                         else METHODS[method](shape) + args.opts.split() + ["SEED", str(seed)])
                specs.append((f"{shape.name}/{name}", ["--config-file", MMT_CFG, *init, *target_opts(dataset),
                                                        *extra, "OUTPUT_DIR", run_dir], log))
        run_group(specs, max(1, args.jobs), env, keep_going=True)  # a clustering may stop a run
    print("| shape | method | final mAP per run | mean |\n| --- | --- | --- | --- |")
    for shape_name in dict.fromkeys(r[0] for r in rows):
        for method in args.methods:
            maps = [final_map(m, dataset, d, log) for s, m, d, log in rows if s == shape_name and m == method]
            done = [v for v in maps if v is not None]
            print(f"| {shape_name} | {method} | {' / '.join('stopped' if v is None else f'{v:.1f}' for v in maps)} "
                  f"| {statistics.mean(done) if done else float('nan'):.1f} |")


if __name__ == "__main__":
    main()
