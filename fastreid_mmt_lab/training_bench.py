"""Timed MMT training through ``tools/train_net.py``: one epoch from random source checkpoints,
its speed, clustering time and peak memory read from the log (``benchmarks/training.py`` and
``benchmarks/gpu_check.py`` run it)."""

import os
import re
import subprocess
import sys
import time

from fastreid_mmt.engine.setup import build_cfg
from .random_weights import save_base_networks

from .jobs import REPO_ROOT, TRAIN_NET


SPEED = re.compile(r"Overall training speed: (\d+) iterations in \S+ \(([\d.]+) s / it\)")
EPOCH0 = re.compile(r"MMT epoch 0 pseudo labels: .*extract_time=([\d.e+-]+), cluster_time=([\d.e+-]+)")
MAX_MEM = re.compile(r"max_mem: (\d+)M")
PER_BN = re.compile(r"Images per BN: (\d+)")


def random_source_checkpoints(config_file, opts, folder):
    """Two randomly initialised networks of the configured architecture, saved as the two
    source checkpoints MMT starts from (speed does not depend on the weights)."""
    return save_base_networks(build_cfg(config_file, opts), folder)


def parse_log(log):
    """The numbers of one train_net log (None where a line is absent)."""
    speed, epoch0 = SPEED.search(log), EPOCH0.search(log)
    mems = [int(m) for m in MAX_MEM.findall(log)]
    per_bn = PER_BN.search(log)
    return {
        "iters": int(speed.group(1)) if speed else None,
        "s_per_it": float(speed.group(2)) if speed else None,
        "extract_s": float(epoch0.group(1)) if epoch0 else None,
        "cluster_s": float(epoch0.group(2)) if epoch0 else None,
        "max_mem_mb": max(mems) if mems else None,
        "ims_per_bn": int(per_bn.group(1)) if per_bn else None,
    }


def run_training(config_file, procs, iters, opts, out_dir, data_root, timeout=3600):
    """One MMT epoch with ``procs`` processes; returns the parsed numbers, wall time and log."""
    cmd = [sys.executable, TRAIN_NET, "--config-file", config_file]
    if procs > 1:
        cmd += ["--num-gpus", str(procs), "--dist-url", "auto"]
    cmd += [*opts, "SOLVER.MAX_EPOCH", "1", "MMT.ITERS_PER_EPOCH", str(iters), "TEST.EVAL_PERIOD", "1",
            "SEED", "0", "OUTPUT_DIR", out_dir]
    env = dict(os.environ, FASTREID_DATASETS=data_root, PYTHONWARNINGS="ignore")
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    if proc.returncode:
        raise RuntimeError(f"train_net with {procs} process(es) failed:\n{log[-4000:]}")
    return dict(parse_log(log), wall_s=wall, log=log)


def _fmt(value, spec):
    """``value`` formatted, or ``-`` when it was not measured."""
    return "-" if value is None else format(value, spec)


def table(rows, batch):
    """Markdown table of :func:`run_training` results keyed by process count."""
    lines = ["| processes | images per BN | s / iteration | iterations / s | target images / s | "
             "extraction (s) | clustering (s) | peak GPU memory (MB) | epoch-0 labels as first row | wall (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for procs, row in rows.items():
        its = 1.0 / row["s_per_it"] if row["s_per_it"] else None
        lines.append(f"| {procs} | {_fmt(row['ims_per_bn'], 'd')} | {_fmt(row['s_per_it'], '.3f')} | "
                     f"{_fmt(its, '.2f')} | {_fmt(its * batch if its else None, '.1f')} | "
                     f"{_fmt(row['extract_s'], '.2f')} | {_fmt(row['cluster_s'], '.2f')} | "
                     f"{_fmt(row['max_mem_mb'], 'd')} | {row.get('same_labels', '-')} | {row['wall_s']:.0f} |")
    return "\n".join(lines)
