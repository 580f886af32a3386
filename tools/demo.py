#!/usr/bin/env python
"""End-to-end MMT demo on the embedded synthetic Market-layout -> Duke-layout pair (CPU).

    python tools/demo.py --output-dir output/demo          # what `make demo` runs
    python tools/demo.py --output-dir /tmp/smoke --quick   # tiny smoke run (about a minute)

Stages, each a subprocess of ``tools/train_net.py`` logging to ``<output-dir>/logs/``:

1. write the synthetic pair into ``<output-dir>/data`` (skipped when a complete copy with the
   same parameters is already there);
2. pre-train on the labelled source with SEED 1 and SEED 2 (``configs/Demo/pretrain.yml``);
   seed 1's final evaluation on the target test set is the "direct transfer" row;
3. from the same two checkpoints, (a) the paper's clustering baseline: ``configs/Demo/mmt.yml``
   with ``MMT.SINGLE_NETWORK True`` and no soft losses or mean net (one network, seed 1's, on
   hard pseudo labels clustered from its own features), (b) MMT (``configs/Demo/mmt.yml`` as
   is), and (c) a control: the MMT run with learning rate 0 for one epoch, i.e. the source
   model with its BN statistics re-estimated on the target and no training (what BN
   adaptation alone gives);
4. before / after: ``tools/rank.py`` ranks the target gallery for the first query (by path)
   of each camera, chosen without looking at any result, with the direct-transfer model and
   with MMT, and draws both rankings on one contact sheet (``ranks/ranks.png``).

It prints one table (mAP, Rank-1 of the final epoch on the target test set, wall time of each
stage), writes ``demo.png`` (target mAP per evaluated epoch and pseudo-label NMI per epoch),
``ranks/ranks.png`` and ``results.json``. Numbers describe the synthetic data only (see docs/SYNTHETIC.md), never
Market-1501 or DukeMTMC-reID. Ground-truth target ids are used for the NMI diagnostic only.

With ``--jobs 2`` (default on a machine with 2 or more cores) the two pre-training seeds run
concurrently, then the baseline, MMT and the short control run concurrently, each with
``cores // 2`` threads: on 2 small CPU cores this is faster than running them one after the other
with 2 threads each.
A stage's wall time is then that of its concurrent runs; each run's own time is in results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from typing import List, Optional

from fastreid_mmt_lab.demo import DIRECTION, curves, final_metrics, format_table, plot, prepare_data
from fastreid_mmt_lab.jobs import REPO_ROOT, Run, StageFailed, run_env, run_group, threads_per_job
from fastreid_mmt_lab.recipes import (BASELINE, BN_ONLY_OPTS, DATA, DEMO_TARGET, MMT_CFG, PRETRAIN_CFG,
                                      PRETRAIN_SEEDS, QUICK_COMMON, QUICK_DATA, QUICK_MMT, QUICK_PRETRAIN,
                                      VARIANTS)

RANK = os.path.join(REPO_ROOT, "tools", "rank.py")
# Before / after sheet: the first query (by path) of each camera, its top RANK_TOPK matches.
RANK_TOPK = 8
RANK_QUERIES_PER_CAMERA = 1
EXIT_FAILED = 1
# Stage-I run files that would make a rerun resume or report a previous run's numbers.
STALE_FILES = ("metrics.json", "last_checkpoint")


def remove_stale(run_dir: str):
    """Forget a previous run in ``run_dir``: it is trained again from the start."""
    for stale in STALE_FILES:
        if os.path.exists(os.path.join(run_dir, stale)):
            os.remove(os.path.join(run_dir, stale))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="output/demo")
    parser.add_argument("--quick", action="store_true",
                        help="tiny data and a few iterations: checks the pipeline, numbers meaningless")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="training runs at a time (threads per run: cores // jobs)")
    for key, value in DATA.items():
        parser.add_argument("--" + key.replace("_", "-"), type=int, default=None,
                            help=f"synthetic data: {key} (default {value}; --quick: {QUICK_DATA[key]})")
    parser.add_argument("--pretrain-opts", default="", help="extra 'KEY VALUE ...' for pre-training")
    parser.add_argument("--mmt-opts", default="", help="extra 'KEY VALUE ...' for baseline and MMT")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    out = os.path.abspath(args.output_dir)
    logs = os.path.join(out, "logs")
    os.makedirs(logs, exist_ok=True)
    params = dict(QUICK_DATA if args.quick else DATA)
    for key in params:
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    data_root = os.path.join(out, "data")

    jobs = max(1, args.jobs)
    threads = threads_per_job(jobs)
    env = run_env(data_root, jobs)
    common = QUICK_COMMON if args.quick else []
    pre_opts = common + (QUICK_PRETRAIN if args.quick else []) + shlex.split(args.pretrain_opts)
    mmt_opts = common + (QUICK_MMT if args.quick else []) + shlex.split(args.mmt_opts)

    stages = {}
    try:
        print(f"[1/4] synthetic data -> {data_root} {params}", flush=True)
        start = time.perf_counter()
        written = prepare_data(data_root, params)
        stages["data"] = time.perf_counter() - start
        print(f"  {'written' if written else 'already complete, skipped'} ({stages['data']:.0f} s)", flush=True)

        print(f"[2/4] source pre-training, seeds {PRETRAIN_SEEDS} ({jobs} at a time, {threads} thread(s) each)",
              flush=True)
        ckpts, specs = [], []
        for seed in PRETRAIN_SEEDS:
            run_dir = os.path.join(out, f"pretrain-seed{seed}")
            ckpts.append(os.path.join(run_dir, "model_final.pth"))
            specs.append((f"pretrain-seed{seed}",
                          ["--config-file", PRETRAIN_CFG, *pre_opts, "SEED", str(seed), "OUTPUT_DIR", run_dir],
                          os.path.join(logs, f"pretrain-seed{seed}.log")))
            remove_stale(run_dir)
        start = time.perf_counter()
        run_walls = run_group(specs, jobs, env)
        stages["pretrain"] = time.perf_counter() - start
        direct = final_metrics(os.path.join(out, "pretrain-seed1"))

        print("[3/4] adaptation on the unlabelled target: clustering baseline, MMT, BN-only control",
              flush=True)
        init = ["MMT.INIT_WEIGHTS", str(ckpts)]
        adapt = {"baseline": VARIANTS[BASELINE], "mmt": VARIANTS["mmt"], "bn-only": BN_ONLY_OPTS}
        specs = []
        for name, extra in adapt.items():
            run_dir = os.path.join(out, name)
            remove_stale(run_dir)
            specs.append((name, ["--config-file", MMT_CFG, *mmt_opts, *extra, *init, "OUTPUT_DIR", run_dir],
                          os.path.join(logs, f"{name}.log")))
        start = time.perf_counter()
        # The short control runs beside the pair rather than after it (one core is otherwise idle
        # while the longer of the pair finishes).
        run_walls.update(run_group(specs, jobs + 1 if jobs > 1 else 1, env))
        stages["adaptation"] = time.perf_counter() - start
        finals, plots = {}, {}
        for name in adapt:
            run_dir = os.path.join(out, name)
            finals[name] = final_metrics(run_dir)
            plots[name] = curves(run_dir)
        print("[4/4] before / after: the first target query of each camera, direct transfer and MMT", flush=True)
        start = time.perf_counter()
        ranks_dir = os.path.join(out, "ranks")
        rank_args = ["--config-file", MMT_CFG, "--weights", os.path.join(out, "mmt", "model_final.pth"),
                     "--weights-before", ckpts[0], "--query", DEMO_TARGET, "--gallery", DEMO_TARGET,
                     "--query-per-camera", str(RANK_QUERIES_PER_CAMERA), "--drop-same-camera",
                     "--topk", str(RANK_TOPK), "--output", ranks_dir, *common]
        run = Run("ranks", rank_args, os.path.join(logs, "ranks.log"), env, script=RANK)
        run.wait_ok()
        stages["ranks"] = time.perf_counter() - start
        print(f"  wrote {os.path.join(ranks_dir, 'ranks.png')} ({stages['ranks']:.0f} s)", flush=True)
    except StageFailed as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return EXIT_FAILED

    total = time.perf_counter() - t0
    concurrent = " (concurrent pair)" if jobs > 1 else ""
    rows = [
        dict(method="direct transfer (pre-trained seed 1)", **direct,
             stage=f"pre-training x2{concurrent}", wall_s=stages["pretrain"]),
        dict(method="clustering baseline (1 net, hard labels)", **finals["baseline"],
             stage="baseline run" + (" (beside MMT)" if jobs > 1 else ""), wall_s=run_walls["baseline"]),
        dict(method="MMT", **finals["mmt"],
             stage="MMT run" + (" (beside baseline)" if jobs > 1 else ""), wall_s=run_walls["mmt"]),
        dict(method="control: target BN statistics only", **finals["bn-only"],
             stage="lr 0, 1 epoch (beside the pair)" if jobs > 1 else "lr 0, 1 epoch",
             wall_s=run_walls["bn-only"]),
    ]
    table = format_table(rows, total)
    print(f"\nTarget test set of the synthetic {DIRECTION} pair, final epoch; data generation "
          f"{stages['data']:.0f} s, adaptation stage {stages['adaptation']:.0f} s:")
    print(table, flush=True)
    plot_path = os.path.join(out, "demo.png")
    plot(plot_path, {"clustering baseline (1 net)": plots["baseline"], "MMT": plots["mmt"]}, direct["mAP"],
         finals["bn-only"]["mAP"])
    results = {
        "rows": rows,
        "curves": plots,
        "stage_wall_s": stages,
        "run_wall_s": run_walls,
        "total_wall_s": total,
        "data": params,
        "quick": args.quick,
        "jobs": jobs,
        "threads_per_run": threads,
        "pretrain_opts": pre_opts,
        "mmt_opts": mmt_opts,
        "note": "synthetic data (tools/make_synthetic_data.py), not Market-1501 / DukeMTMC-reID",
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {plot_path}, {os.path.join(out, 'ranks', 'ranks.png')} and {os.path.join(out, 'results.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
