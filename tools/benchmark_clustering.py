#!/usr/bin/env python
"""Benchmark of fastreid_mmt.clustering against fast-reid's dense reference.

Every case runs alone in a fresh subprocess. It generates its features
(untimed), records its resident set size, resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``), runs the timed pipeline and reports the wall and
CPU seconds, the peak resident memory during the pipeline (``VmHWM``,
interpreter, torch and features included) and its growth over the resident
memory just before the pipeline. Cases:

(a) k-reciprocal Jaccard distance + MMT's eps rule + DBSCAN, ours (sparse)
    and fast-reid's dense ``compute_jaccard_distance(search_option=3)`` with
    the original dense rule and scikit-learn DBSCAN, on the same features;
    ARI between the label sets, with each pipeline's own eps and with the
    reference's eps given to both (isolating the distance matrices).
(b) ours alone at a size the dense code cannot hold.
(c) ``kmeans`` (faiss and torch backends) against scikit-learn ``KMeans``
    (``n_init=1``, capped ``max_iter``), NMI against the generating labels.

Usage: ``python tools/benchmark_clustering.py [--quick]`` (``--quick``: small sizes).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FULL = dict(jaccard_sizes=[2000, 8000], jaccard_dim=2048, large_size=50000, large_dim=256,
            kmeans_size=12936, kmeans_dim=2048, kmeans_clusters=500)
QUICK = dict(jaccard_sizes=[500, 1000], jaccard_dim=256, large_size=5000, large_dim=64,
             kmeans_size=2000, kmeans_dim=256, kmeans_clusters=50)
GOALS = dict(speedup=20.0, speedup_size=8000, ari=0.99, large_time=60.0, large_mem_gb=2.0,
             kmeans_time=5.0, nmi=0.9)


# --------------------------------------------------------------- features


def make_features(num, dim, num_ids=None):
    """Clustered re-ID-like features (``fastreid_mmt.clustering.synthetic_features``)."""
    from fastreid_mmt.clustering.synthetic_features import clustered_features

    return clustered_features(num, dim, num_ids=num_ids)


# ------------------------------------------------------- child measurements


def _status_kb(field):
    with open("/proc/self/status") as handle:
        return next((int(line.split()[1]) for line in handle if line.startswith(field + ":")), 0)


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(run):
    """Runs ``run()``; returns (result, seconds, CPU seconds, peak MB, growth MB)."""
    before = _status_kb("VmRSS")
    reset = _reset_peak()
    cpu = _cpu_seconds()
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
    peak = _status_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result, seconds, cpu, peak / 1024, max(0, peak - before) / 1024


def _reference_eps(dense, rho):
    tri = np.triu(dense, 1)
    tri = np.sort(tri[np.nonzero(tri)], axis=None)
    return float(tri[: int(np.round(rho * tri.size))].mean())


def child(case, num, dim, extra, out_dir):
    """Runs one case in this process and prints one JSON line."""
    import torch

    sys.path.insert(0, REPO)
    from fastreid_mmt.clustering import auto_eps, dbscan, jaccard_distance, kmeans

    rho, min_samples = 1.6e-3, 4
    report = {"case": case, "num": num, "dim": dim}
    if case in ("ours", "dense"):
        feats, _ = make_features(num, dim)
        if case == "ours":

            def run():
                dist = jaccard_distance(feats, k1=30, k2=6)
                eps = auto_eps(dist, rho=rho)
                return dist, eps, dbscan(dist, eps, min_samples=min_samples)

            (dist, eps, labels), seconds, cpu, peak, growth = _measure(run)
            report["nnz_per_row"] = dist.nnz / num
            if extra is not None:  # the reference's eps, to compare matrices only
                np.save(os.path.join(out_dir, f"ours_shared_{num}.npy"), dbscan(dist, extra, min_samples))
        else:
            from fastreid.utils.compute_dist import compute_jaccard_distance
            from sklearn.cluster import DBSCAN

            def run():
                dist = compute_jaccard_distance(feats, k1=30, k2=6, search_option=3)
                eps = _reference_eps(dist, rho)
                model = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed", n_jobs=-1)
                return dist, eps, model.fit(dist).labels_

            (_, eps, labels), seconds, cpu, peak, growth = _measure(run)
        np.save(os.path.join(out_dir, f"{case}_{num}.npy"), labels)
        report.update(eps=eps, clusters=int(labels.max()) + 1, outliers=int((labels < 0).sum()))
    else:
        num_clusters, backend = extra
        feats, truth = make_features(num, dim, num_ids=num_clusters)
        if case == "kmeans":
            run = lambda: kmeans(feats, num_clusters, seed=0, backend=backend)[0].numpy()  # noqa: E731
        else:
            from sklearn.cluster import KMeans

            model = KMeans(num_clusters, n_init=1, max_iter=backend, random_state=0)
            run = lambda: model.fit(feats.numpy()).labels_  # noqa: E731
        labels, seconds, cpu, peak, growth = _measure(run)
        from sklearn.metrics import normalized_mutual_info_score

        report["nmi"] = float(normalized_mutual_info_score(truth, labels))
        report["backend"] = backend
    report.update(seconds=seconds, cpu_seconds=cpu, peak_mb=peak, growth_mb=growth, threads=torch.get_num_threads())
    print(json.dumps(report))


# ------------------------------------------------------------------ parent


def run_child(case, num, dim, extra, out_dir):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", case, str(num), str(dim), json.dumps(extra), out_dir]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"case {case} N={num} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  done: {result}", file=sys.stderr)
    return result


def _met(flag):
    return "yes" if flag else "**no**"


def _cost(row):
    """Time, CPU, peak RSS and growth cells of a table row."""
    return f"{row['seconds']:.2f} | {row['cpu_seconds']:.1f} | {row['peak_mb']:.0f} | {row['growth_mb']:.0f}"


def machine_description():
    import faiss
    import scipy
    import sklearn
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = "CUDA GPU available" if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, {gpu}; Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), faiss {faiss.__version__}, scikit-learn {sklearn.__version__}, "
        f"scipy {scipy.__version__}, numpy {np.__version__}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--sklearn-max-iter", type=int, default=50, help="cap on scikit-learn KMeans iterations")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, num, dim, extra, out_dir = args.child
        child(case, int(num), int(dim), json.loads(extra), out_dir)
        return

    from sklearn.metrics import adjusted_rand_score

    sizes = QUICK if args.quick else FULL
    load_start = os.getloadavg()
    lines = []
    with tempfile.TemporaryDirectory() as out_dir:
        rows_a = []
        for num in sizes["jaccard_sizes"]:
            dense = run_child("dense", num, sizes["jaccard_dim"], None, out_dir)
            ours = run_child("ours", num, sizes["jaccard_dim"], dense["eps"], out_dir)
            labels_dense = np.load(os.path.join(out_dir, f"dense_{num}.npy"))
            ari_own = adjusted_rand_score(labels_dense, np.load(os.path.join(out_dir, f"ours_{num}.npy")))
            ari_shared = adjusted_rand_score(labels_dense, np.load(os.path.join(out_dir, f"ours_shared_{num}.npy")))
            rows_a.append((num, dense, ours, ari_own, ari_shared))
        large = run_child("ours", sizes["large_size"], sizes["large_dim"], None, out_dir)
        k = sizes["kmeans_clusters"]
        km_size, km_dim = sizes["kmeans_size"], sizes["kmeans_dim"]
        km_rows = [
            ("ours, faiss backend", run_child("kmeans", km_size, km_dim, [k, "faiss"], out_dir)),
            ("ours, torch backend", run_child("kmeans", km_size, km_dim, [k, "torch"], out_dir)),
            (
                f"scikit-learn KMeans(n_init=1, max_iter={args.sklearn_max_iter})",
                run_child("sklearn", km_size, km_dim, [k, args.sklearn_max_iter], out_dir),
            ),
        ]
    load_end = os.getloadavg()

    lines.append(f"Command: `python tools/benchmark_clustering.py{' --quick' if args.quick else ''}`\n")
    lines.append(f"Machine: {machine_description()}.")
    lines.append(
        f"Load average (1 min) at start / end: {load_start[0]:.1f} / {load_end[0]:.1f} "
        "(other jobs sharing the cores slow every row alike).\n"
    )
    lines.append(
        "Time: wall-clock seconds of the pipeline only (features generated beforehand); CPU: user + system "
        "seconds of the process over the same span (all threads). Peak RSS: peak resident "
        "memory of the process during the pipeline (interpreter, torch and features included); growth: that peak "
        "minus the resident memory just before the pipeline. Each row ran alone in a fresh process.\n"
    )
    cost = "time (s) | CPU (s) | peak RSS (MB) | growth (MB)"
    lines.append(
        f"(a) Jaccard (k1=30, k2=6) + eps rule (rho=1.6e-3) + DBSCAN (min_samples=4), {sizes['jaccard_dim']}-d\n"
    )
    lines.append(f"| N | pipeline | {cost} | stored / row | eps | clusters | outliers |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for num, dense, ours, _, _ in rows_a:
        for name, row, stored in (("fast-reid dense", dense, f"{num:,}"), ("ours, sparse", ours, None)):
            stored = stored or f"{row['nnz_per_row']:.0f}"
            lines.append(
                f"| {num:,} | {name} | {_cost(row)} | {stored} | {row['eps']:.4f} | {row['clusters']} "
                f"| {row['outliers']} |"
            )
    lines.append("")
    lines.append(
        "| N | speed-up | ARI, own eps each | ARI, reference eps for both | goals: >= 20x at 8,000, ARI >= 0.99 |"
    )
    lines.append("|---|---|---|---|---|")
    for num, dense, ours, ari_own, ari_shared in rows_a:
        speedup = dense["seconds"] / ours["seconds"]
        goal = (speedup >= GOALS["speedup"] or num != GOALS["speedup_size"]) and ari_own >= GOALS["ari"]
        lines.append(f"| {num:,} | {speedup:.1f}x | {ari_own:.4f} | {ari_shared:.4f} | {_met(goal)} |")
    lines.append("")
    lines.append(
        f"(b) Ours alone, N = {large['num']:,}, {large['dim']}-d (the dense code would need several N x N arrays)\n"
    )
    lines.append(f"| {cost} | stored / row | clusters | goals: < 60 s, < 2 GB |")
    lines.append("|---|---|---|---|---|---|---|")
    ok = large["seconds"] < GOALS["large_time"] and large["peak_mb"] < GOALS["large_mem_gb"] * 1024
    lines.append(f"| {_cost(large)} | {large['nnz_per_row']:.0f} | {large['clusters']} | {_met(ok)} |")
    lines.append("")
    lines.append(f"(c) k-means, N = {km_size:,}, {km_dim}-d, K = {k} (K generating identities)\n")
    lines.append(f"| method | {cost} | NMI vs generating labels | goals: < 5 s, NMI >= 0.9 |")
    lines.append("|---|---|---|---|---|---|---|")
    for name, row in km_rows:
        ok = row["seconds"] < GOALS["kmeans_time"] and row["nmi"] >= GOALS["nmi"]
        verdict = _met(ok) if row["case"] == "kmeans" else "(baseline)"
        lines.append(f"| {name} | {_cost(row)} | {row['nmi']:.4f} | {verdict} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
