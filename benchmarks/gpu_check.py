#!/usr/bin/env python
"""GPU check of fastreid-mmt: clustering and MMT training speed on one NVIDIA GPU.

    bash tools/gpu_check.sh WHEEL_DIR [OUT_DIR]     # installs what is missing, then runs this
    python benchmarks/gpu_check.py --out OUT_DIR          # when everything is installed
    python benchmarks/gpu_check.py --smoke --out /tmp/x   # tiny sizes; runs on a CPU too (tests)

1. writes Market-sized embedded data (751 ids x 17 = 12,767 training images, 256x128);
2. times Jaccard + DBSCAN and k-means on clustered 2048-d features at N = 12,936 (Market)
   and 32,621 (MSMT17), on the GPU (faiss GPU where faiss has GPU support, else the pure-torch
   path, said in the output);
3. runs one MMT epoch of the reference recipe (ResNet-50, 256x128, batch 64, AMP) through
   ``tools/train_net.py`` from random source weights, with and without channels-last;
4. prints one table and writes it to ``OUT_DIR/gpu_check.md``.
"""

import argparse
import os
import platform
import sys
import time

import torch

from fastreid_mmt.clustering import auto_eps, dbscan, jaccard_distance, kmeans
from fastreid_mmt_lab.jobs import REPO_ROOT
from fastreid_mmt_lab.synthetic.features import clustered_features
from fastreid_mmt_lab.training_bench import random_source_checkpoints, run_training

MMT_CFG = os.path.join(REPO_ROOT, "configs", "MMT", "market.yml")
FULL = dict(num_ids=751, images_per_id=17, num_query_ids=50, height=256, width=128,
            cluster_sizes=((12936, 500), (32621, 1500)), dim=2048, iters=150, batch=64, workers=8)
SMOKE = dict(num_ids=16, images_per_id=6, num_query_ids=10, height=64, width=32,
             cluster_sizes=((300, 20),), dim=64, iters=3, batch=16, workers=0)
# Goals on one H100: clustering a Market-sized target, and training throughput.
GOAL_CLUSTER_S, GOAL_IMAGES_S = 5.0, 1000.0


def faiss_gpu():
    """(available, note) for faiss with GPU support."""
    try:
        import faiss
    except ImportError:
        return False, "faiss not installed: fast-reid's evaluation needs it"
    if getattr(faiss, "get_num_gpus", lambda: 0)() > 0:
        return True, f"faiss {faiss.__version__} with {faiss.get_num_gpus()} GPU(s)"
    return False, f"faiss {faiss.__version__} has no GPU support: faiss GPU rows skipped, pure-torch GPU path timed"


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn):
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - start


def clustering_rows(sizes, dim, device, use_faiss):
    rows = []
    for num, k in sizes:
        feats = clustered_features(num, dim, num_ids=k)[0].to(device)
        timed(lambda: jaccard_distance(feats[:256], k1=30, k2=6))  # warm-up (CUDA context, kernels)
        dist, t_jac = timed(lambda: jaccard_distance(feats, k1=30, k2=6))
        eps, t_eps = timed(lambda: auto_eps(dist, rho=1.6e-3))
        labels, t_db = timed(lambda: dbscan(dist, eps, min_samples=4))
        total = t_jac + t_eps + t_db
        rows.append((f"Jaccard + DBSCAN, N={num:,} x {dim}", f"{total:.2f} s (Jaccard {t_jac:.2f}, eps {t_eps:.2f}, "
                     f"DBSCAN {t_db:.2f}); {int(labels.max()) + 1} clusters",
                     "yes" if total < GOAL_CLUSTER_S else "no"))
        for backend in ("torch", "faiss") if use_faiss else ("torch",):
            _, t_km = timed(lambda: kmeans(feats, k, seed=0, backend=backend))
            rows.append((f"k-means ({backend}), N={num:,}, K={k}", f"{t_km:.2f} s", ""))
        del feats, dist
    return rows


def training_rows(args, sizes, data_root, use_faiss):
    base = ["MODEL.BACKBONE.PRETRAIN", "False", "SOLVER.AMP.ENABLED", "True", "SOLVER.IMS_PER_BATCH",
            str(sizes["batch"]), "DATALOADER.NUM_WORKERS", str(sizes["workers"]), "INPUT.SIZE_TRAIN",
            f"[{sizes['height']},{sizes['width']}]", "INPUT.SIZE_TEST", f"[{sizes['height']},{sizes['width']}]",
            "MMT.CLUSTER.NUM_CLUSTERS", str(sizes["cluster_sizes"][0][1])]
    if not use_faiss:
        base += ["MMT.CLUSTER.BACKEND", "torch"]
    if args.smoke:
        base += ["MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512", "TEST.IMS_PER_BATCH", "64"]
    init = random_source_checkpoints(MMT_CFG, base, os.path.join(args.out, "init"))
    base += ["MMT.INIT_WEIGHTS", str(init)]
    rows = []
    for channels_last in (False, True):
        opts = base + ["MMT.CHANNELS_LAST", str(channels_last)]
        out = os.path.join(args.out, f"mmt-cl{int(channels_last)}")
        res = run_training(MMT_CFG, 1, sizes["iters"], opts, out, data_root)
        with open(os.path.join(args.out, f"train-cl{int(channels_last)}.log"), "w") as f:
            f.write(res["log"])
        name = f"MMT epoch, {sizes['iters']} it, batch {sizes['batch']}, AMP" + (", channels-last" if channels_last else "")
        if res["s_per_it"] is None:
            rows.append((name, "no timing line in the log (see train-*.log)", "no"))
            continue
        its = 1.0 / res["s_per_it"]
        images = its * sizes["batch"]
        mem = f"{res['max_mem_mb']} MB" if res["max_mem_mb"] is not None else "n/a (CPU)"
        rows.append((name, f"{its:.2f} it/s, {images:.0f} target images/s (4 passes each), peak GPU memory {mem}, "
                     f"{res['ims_per_bn']} images per BN; epoch-0 extraction {res['extract_s']:.1f} s, "
                     f"clustering {res['cluster_s']:.2f} s", "yes" if images >= GOAL_IMAGES_S else "no"))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="output/gpu_check")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; a CPU is accepted")
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.smoke:
        sys.exit("gpu_check: no CUDA device visible to torch; nothing to check (use --smoke for a CPU dry run)")
    sizes = SMOKE if args.smoke else FULL
    device = "cuda" if torch.cuda.is_available() else "cpu"
    use_faiss, faiss_note = faiss_gpu()
    os.makedirs(args.out, exist_ok=True)
    data_root = os.path.join(args.out, "data")
    start = time.perf_counter()

    from fastreid_mmt_lab.synthetic import write_domain

    _, t_data = timed(lambda: write_domain(
        data_root, "market", num_ids=sizes["num_ids"], images_per_id=sizes["images_per_id"],
        num_query_ids=sizes["num_query_ids"], height=sizes["height"], width=sizes["width"], overwrite=True,
        workers=max(1, min(16, os.cpu_count() or 1))))
    rows = [("embedded Market-layout data", f"{sizes['num_ids'] * sizes['images_per_id']:,} training images "
             f"{sizes['height']}x{sizes['width']} written in {t_data:.0f} s", "")]
    rows += clustering_rows(sizes["cluster_sizes"], sizes["dim"], device, use_faiss)
    rows += training_rows(args, sizes, data_root, use_faiss)

    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none (CPU smoke run)"
    lines = [f"Command: `{' '.join(sys.argv)}`", "",
             f"Machine: GPU {gpu}; {os.cpu_count()} CPU cores; Python {platform.python_version()}, "
             f"torch {torch.__version__}; {faiss_note}.", "",
             f"| check | result | goal met (clustering < {GOAL_CLUSTER_S:.0f} s, >= {GOAL_IMAGES_S:.0f} images/s) |",
             "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += ["", f"Total wall time: {time.perf_counter() - start:.0f} s"]
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(args.out, "gpu_check.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
