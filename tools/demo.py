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
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from fastreid_mmt.run_metrics import config_value, read_metrics, series  # noqa: E402

TRAIN_NET = os.path.join(REPO_ROOT, "tools", "train_net.py")
RANK = os.path.join(REPO_ROOT, "tools", "rank.py")
PRETRAIN_CFG = os.path.join(REPO_ROOT, "configs", "Demo", "pretrain.yml")
MMT_CFG = os.path.join(REPO_ROOT, "configs", "Demo", "mmt.yml")
SEEDS = (1, 2)
# The paper's ablation "baseline": one network on hard pseudo labels from its own features,
# no soft losses, no mean net (tools/ablation.py also runs the two-network variant).
HARD_ONLY_OPTS = ["MMT.SOFT_CE_WEIGHT", "0.0", "MMT.SOFT_TRI_WEIGHT", "0.0", "MMT.EMA_ALPHA", "0.0"]
BASELINE_OPTS = ["MMT.SINGLE_NETWORK", "True", *HARD_ONLY_OPTS]
# Before / after sheet: the first query (by path) of each camera, its top RANK_TOPK matches.
RANK_TOPK = 8
RANK_QUERIES_PER_CAMERA = 1
# Control: the MMT run with learning rate 0 for one epoch. No weight changes; only the mean
# nets' train-mode forwards re-estimate BN statistics on target batches (AdaBN). It separates
# what BN adaptation alone gives from what training on pseudo labels adds.
BN_ONLY_OPTS = ["SOLVER.BASE_LR", "0.0", "SOLVER.MAX_EPOCH", "1", "TEST.EVAL_PERIOD", "1"]
TARGET = "DukeMTMC"
# fast-reid flattens its results to "mAP" with one test set, "DukeMTMC/mAP" with several.
MAP_KEYS, RANK1_KEYS, NMI_KEY = (f"{TARGET}/mAP", "mAP"), (f"{TARGET}/Rank-1", "Rank-1"), "mmt/nmi"
DATA_MARKER = ".demo_data.json"
LOG_TAIL_LINES = 60
EXIT_FAILED = 1

# Data of the full demo (see the README "Demo" section for why these sizes).
DATA = dict(num_ids=100, images_per_id=10, num_query_ids=50, height=128, width=64)
# --quick: a smoke run of the whole pipeline in about a minute (numbers are meaningless);
# the test gallery must hold at least 50 images (fast-reid ranks up to 50).
QUICK_DATA = dict(num_ids=16, images_per_id=8, num_query_ids=10, height=32, width=16)
# float32 in the quick run: at 32x16, bfloat16 autocast gives NaN losses from the second step on
# an Intel Xeon with AMX (session 8; the full demo's 128x64 trains there). Not explained yet. The
# tests' tiny runs use these options too (tests/conftest.py TINY_RUN_OPTS).
QUICK_COMMON = ["INPUT.SIZE_TRAIN", "[32, 16]", "INPUT.SIZE_TEST", "[32, 16]",
                "SOLVER.IMS_PER_BATCH", "16", "TEST.IMS_PER_BATCH", "64", "MMT.CPU_BF16", "False"]
QUICK_PRETRAIN = ["SOLVER.MAX_EPOCH", "1", "PRETRAIN.ITERS_PER_EPOCH", "4", "PRETRAIN.WARMUP_EPOCHS", "0",
                  "SOLVER.STEPS", "[100]", "SOLVER.CHECKPOINT_PERIOD", "1", "TEST.EVAL_PERIOD", "1"]
QUICK_MMT = ["SOLVER.MAX_EPOCH", "2", "MMT.ITERS_PER_EPOCH", "3", "MMT.CLUSTER.NUM_CLUSTERS", "8",
             "TEST.EVAL_PERIOD", "1"]


class StageFailed(RuntimeError):
    """A subprocess stage exited non-zero."""


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def data_complete(root: str, params: Dict[str, int]) -> bool:
    """True when ``root`` holds a pair written by this script with ``params`` and every file
    the marker lists is still there."""
    marker = os.path.join(root, DATA_MARKER)
    try:
        with open(marker) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return False
    if saved.get("params") != params:
        return False
    from fastreid_mmt.data import synthetic
    for role, counts in saved.get("counts", {}).items():
        folder = counts.get("dataset_dir", "")
        for split, key in ((synthetic.TRAIN_DIR, "train"), (synthetic.QUERY_DIR, "query"),
                           (synthetic.GALLERY_DIR, "gallery")):
            expected = counts[f"{key}_images"]  # the gallery count includes pid-0 junk
            path = os.path.join(folder, split)
            if not os.path.isdir(path) or len(os.listdir(path)) != expected:
                return False
    return bool(saved.get("counts"))


def prepare_data(root: str, params: Dict[str, int]) -> bool:
    """Write the synthetic pair into ``root`` unless a complete copy is there.

    Returns:
        True if it was written, False if skipped.
    """
    if data_complete(root, params):
        return False
    from fastreid_mmt.data import synthetic
    os.makedirs(root, exist_ok=True)
    marker = os.path.join(root, DATA_MARKER)
    if os.path.exists(marker):
        os.remove(marker)
    counts = synthetic.write_pair(
        root, num_ids_source=params["num_ids"], num_ids_target=params["num_ids"],
        images_per_id=params["images_per_id"], num_query_ids_source=params["num_query_ids"],
        num_query_ids_target=params["num_query_ids"], height=params["height"], width=params["width"],
        overwrite=True)
    with open(marker, "w") as f:
        json.dump({"params": params, "counts": counts}, f, indent=1)
    return True


# ---------------------------------------------------------------------------------------------
# Subprocesses
# ---------------------------------------------------------------------------------------------

class Run:
    """One ``train_net.py`` (or ``script``) subprocess with its log file."""

    def __init__(self, name: str, args: List[str], log: str, env: Dict[str, str], script: str = TRAIN_NET):
        self.name, self.log = name, log
        self.cmd = [sys.executable, script] + args
        self.start = time.perf_counter()
        with open(log, "w") as f:
            f.write("$ " + " ".join(shlex.quote(a) for a in self.cmd) + "\n")
        self.handle = open(log, "a")
        self.proc = subprocess.Popen(self.cmd, cwd=REPO_ROOT, env=env, stdout=self.handle,
                                     stderr=subprocess.STDOUT)
        self.wall = None

    def wait(self) -> int:
        code = self.proc.wait()
        self.wall = time.perf_counter() - self.start
        self.handle.close()
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.handle.closed:
            self.handle.close()


def log_tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


def run_group(specs: Sequence[tuple], jobs: int, env: Dict[str, str]) -> Dict[str, float]:
    """Run ``(name, args, log)`` specs, ``jobs`` at a time; raise StageFailed (after stopping the
    others) as soon as one fails. Returns each run's own wall time."""
    pending, running, walls = list(specs), [], {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                name, args, log = pending.pop(0)
                print(f"  started {name} (log: {log})", flush=True)
                running.append(Run(name, args, log, env))
            time.sleep(0.5)
            for run in list(running):
                if run.proc.poll() is None:
                    continue
                running.remove(run)
                if run.wait() != 0:
                    raise StageFailed(f"{run.name} failed (exit {run.proc.returncode}); "
                                      f"last lines of {run.log}:\n{log_tail(run.log)}")
                walls[run.name] = run.wall
                print(f"  finished {run.name} in {run.wall:.0f} s", flush=True)
    finally:
        for run in running:
            run.kill()
    return walls


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

def final_metrics(output_dir: str) -> Dict[str, float]:
    rows = read_metrics(output_dir)
    maps, rank1 = series(rows, MAP_KEYS), series(rows, RANK1_KEYS)
    if not maps or not rank1:
        raise StageFailed(f"no target mAP / Rank-1 in {output_dir}/metrics.json")
    return {"mAP": maps[-1][1], "Rank-1": rank1[-1][1]}


def curves(output_dir: str, iters_per_epoch: int) -> Dict[str, List[list]]:
    """mAP per evaluated epoch (1-based: after that many epochs) and NMI of the pseudo labels
    per epoch (0-based: the clustering before that epoch's training)."""
    rows = read_metrics(output_dir)
    maps = [[round(it / iters_per_epoch), v] for it, v in series(rows, MAP_KEYS)]
    nmi = [[round(it / iters_per_epoch), v] for it, v in series(rows, NMI_KEY)]
    return {"mAP": maps, "nmi": nmi}


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def format_table(rows: List[dict], total_s: float) -> str:
    header = f"| {'method':<41} | {'mAP':>6} | {'Rank-1':>6} | {'stage':<36} | {'wall time':>9} |"
    rule = "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"
    lines = [header, rule]
    for row in rows:
        lines.append(f"| {row['method']:<41} | {row['mAP']:6.1f} | {row['Rank-1']:6.1f} | "
                     f"{row['stage']:<36} | {row['wall_s']:7.0f} s |")
    lines.append(f"total wall time: {total_s:.0f} s ({total_s / 60:.1f} min)")
    return "\n".join(lines)


def plot(path: str, runs: Dict[str, dict], direct_map: float, bn_only_map: float):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_map, ax_nmi) = plt.subplots(1, 2, figsize=(10, 4))
    for name, run in runs.items():
        xs, ys = zip(*run["mAP"]) if run["mAP"] else ((), ())
        ax_map.plot(xs, ys, marker="o", label=name)
        xs, ys = zip(*run["nmi"]) if run["nmi"] else ((), ())
        ax_nmi.plot(xs, ys, marker="o", label=name)
    ax_map.axhline(direct_map, color="grey", linestyle="--", label="direct transfer")
    ax_map.axhline(bn_only_map, color="black", linestyle=":", label="target BN statistics only")
    ax_map.set(xlabel="epoch (evaluated after)", ylabel="target mAP (%)", title="Target test mAP")
    ax_nmi.set(xlabel="epoch (clustering before)", ylabel="NMI", title="Pseudo labels vs true ids (NMI)")
    for ax in (ax_map, ax_nmi):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("MMT demo on synthetic Market-layout -> Duke-layout data (not the real data sets)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

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
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    env = dict(os.environ, FASTREID_DATASETS=data_root, PYTHONWARNINGS="ignore",
               OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
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

        print(f"[2/4] source pre-training, seeds {SEEDS} ({jobs} at a time, {threads} thread(s) each)",
              flush=True)
        ckpts, specs = [], []
        for seed in SEEDS:
            run_dir = os.path.join(out, f"pretrain-seed{seed}")
            ckpts.append(os.path.join(run_dir, "model_final.pth"))
            specs.append((f"pretrain-seed{seed}",
                          ["--config-file", PRETRAIN_CFG, *pre_opts, "SEED", str(seed), "OUTPUT_DIR", run_dir],
                          os.path.join(logs, f"pretrain-seed{seed}.log")))
            for stale in ("metrics.json", "last_checkpoint"):
                if os.path.exists(os.path.join(run_dir, stale)):
                    os.remove(os.path.join(run_dir, stale))
        start = time.perf_counter()
        run_walls = run_group(specs, jobs, env)
        stages["pretrain"] = time.perf_counter() - start
        direct = final_metrics(os.path.join(out, "pretrain-seed1"))

        print("[3/4] adaptation on the unlabelled target: clustering baseline, MMT, BN-only control",
              flush=True)
        init = ["MMT.INIT_WEIGHTS", str(ckpts)]
        adapt = {"baseline": BASELINE_OPTS, "mmt": [], "bn-only": BN_ONLY_OPTS}
        specs = []
        for name, extra in adapt.items():
            run_dir = os.path.join(out, name)
            if os.path.exists(os.path.join(run_dir, "metrics.json")):
                os.remove(os.path.join(run_dir, "metrics.json"))
            if os.path.exists(os.path.join(run_dir, "last_checkpoint")):
                os.remove(os.path.join(run_dir, "last_checkpoint"))
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
            ipe = int(config_value(run_dir, "MMT.ITERS_PER_EPOCH"))
            plots[name] = curves(run_dir, ipe)
        print("[4/4] before / after: the first target query of each camera, direct transfer and MMT", flush=True)
        start = time.perf_counter()
        ranks_dir = os.path.join(out, "ranks")
        rank_args = ["--config-file", MMT_CFG, "--weights", os.path.join(out, "mmt", "model_final.pth"),
                     "--weights-before", ckpts[0], "--query", TARGET, "--gallery", TARGET,
                     "--query-per-camera", str(RANK_QUERIES_PER_CAMERA), "--drop-same-camera",
                     "--topk", str(RANK_TOPK), "--output", ranks_dir, *common]
        run = Run("ranks", rank_args, os.path.join(logs, "ranks.log"), env, script=RANK)
        if run.wait() != 0:
            raise StageFailed(f"tools/rank.py failed (exit {run.proc.returncode}); last lines of {run.log}:\n"
                              f"{log_tail(run.log)}")
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
    print("\nTarget (synthetic Duke-layout) test set, final epoch; data generation "
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
        "threads_per_run": int(threads),
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
