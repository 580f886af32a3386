#!/usr/bin/env python
"""Benchmark of fastreid_mmt.clustering against dense references, on two feature families.

Every case runs alone in a fresh subprocess. It generates its features (untimed), resets
the kernel's peak-RSS mark (``/proc/self/clear_refs``), runs the timed pipeline and reports
wall and CPU seconds and the peak resident memory of the whole process during the
pipeline (``VmHWM``: interpreter, torch and features included). Families
(``fastreid_mmt_lab.synthetic.features``): ``clustered`` (identities in groups,
re-ID-like) and ``hub`` (noise larger than the distance between identities: k-NN hubs,
query-expanded vectors sharing columns with thousands of rows). Cases:

(a) Jaccard + MMT's eps rule + DBSCAN, ours (``cutoff`` 0.9, the config default) and the
    dense reference of each variant (``spcl``: fast-reid's ``compute_jaccard_distance(
    search_option=3)``; ``mmt``: the literal re-statement in ``tests/jaccard_reference.py``)
    with the dense rule and scikit-learn DBSCAN; our exact k-NN alone; ARI of the labels.
(b) ours alone at sizes the dense code cannot hold (50,000 x 256; MSMT17's 32,621 x 2048).
(c) the two variants on the same features: eps and ARI between their labels.
(d) ``kmeans`` (faiss and torch backends) against scikit-learn ``KMeans``.

Usage: ``python benchmarks/clustering.py [--quick] [--sections abcd]`` (``--quick``: small
sizes; ``--sections``: which cases to run).
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
FAMILIES = ("clustered", "hub")
K1 = {"mmt": 20, "spcl": 30}
K2, RHO, MIN_SAMPLES, CUTOFF = 6, 1.6e-3, 4, 0.9
FULL = dict(exact=(8000, 2048), large=[(50000, 256), (32621, 2048)], variants=(3000, 2048), kmeans=(12936, 2048, 500))
QUICK = dict(exact=(1000, 256), large=[(5000, 64)], variants=(600, 64), kmeans=(2000, 256, 50))
GOALS = dict(speedup=5.0, knn_ratio=1.5, ari=0.999, mem_gb={256: 2.0, 2048: 4.0}, time_s={256: 60.0})


def make_features(family, num, dim, num_ids=None):
    from fastreid_mmt_lab.synthetic.features import clustered_features, hub_features

    if family == "hub":
        return hub_features(num, dim)
    return clustered_features(num, dim, num_ids=num_ids)


# ------------------------------------------------------- child measurements


def _status_kb(field):
    with open("/proc/self/status") as handle:
        return next((int(line.split()[1]) for line in handle if line.startswith(field + ":")), 0)


def _measure(run):
    """Runs ``run()``; returns (result, seconds, CPU seconds, peak RSS MB of the process)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        reset = True
    except OSError:
        reset = False
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu, start = usage.ru_utime + usage.ru_stime, time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = _status_kb("VmHWM") if reset else usage.ru_maxrss
    return result, seconds, usage.ru_utime + usage.ru_stime - cpu, peak / 1024


def _dense_pipeline(feats, variant):
    from sklearn.cluster import DBSCAN

    from fastreid_mmt_lab.jaccard_reference import mmt_eps_rule, mmt_jaccard_dense

    if variant == "spcl":
        from fastreid.utils.compute_dist import compute_jaccard_distance

        dist = compute_jaccard_distance(feats, k1=K1["spcl"], k2=K2, search_option=3)
    else:
        dist = mmt_jaccard_dense(feats, k1=K1["mmt"], k2=K2)
    eps = mmt_eps_rule(dist, RHO)
    labels = DBSCAN(eps=eps, min_samples=MIN_SAMPLES, metric="precomputed", n_jobs=-1).fit(dist).labels_
    return dist.shape[0], eps, labels


def child(spec, out_dir):
    """Runs one case in this process and prints one JSON line."""
    import torch

    from fastreid_mmt.clustering import auto_eps, dbscan, jaccard_distance, kmeans, knn
    from fastreid_mmt.clustering.dbscan import eps_rule_pairs

    case, family, variant, num, dim = (spec[k] for k in ("case", "family", "variant", "num", "dim"))
    report = dict(spec)
    if case == "kmeans":
        feats, truth = make_features(family, num, dim, num_ids=spec["clusters"])
        if spec["backend"] == "sklearn":
            from sklearn.cluster import KMeans

            model = KMeans(spec["clusters"], n_init=1, max_iter=spec["max_iter"], random_state=0)
            run = lambda: model.fit(feats.numpy()).labels_  # noqa: E731
        else:
            run = lambda: kmeans(feats, spec["clusters"], seed=0, backend=spec["backend"])[0].numpy()  # noqa: E731
        labels, seconds, cpu, peak = _measure(run)
        from sklearn.metrics import normalized_mutual_info_score

        report["nmi"] = float(normalized_mutual_info_score(truth, labels))
    else:
        feats, _ = make_features(family, num, dim)
        if case == "knn":
            _, seconds, cpu, peak = _measure(lambda: knn(feats, K1[variant] + (variant == "mmt")))
            labels = None
        elif case == "dense":
            (stored, eps, labels), seconds, cpu, peak = _measure(lambda: _dense_pipeline(feats, variant))
            report.update(eps=eps, stored=stored)
        else:

            def run():
                dist = jaccard_distance(feats, k1=K1[variant], k2=K2, variant=variant, cutoff=CUTOFF,
                                        keep_smallest=eps_rule_pairs(num, RHO))
                eps = auto_eps(dist, rho=RHO)
                if eps >= CUTOFF:  # what compute_pseudo_labels does: recompute just above eps
                    dist = jaccard_distance(feats, k1=K1[variant], k2=K2, variant=variant,
                                            cutoff=float(np.nextafter(np.float32(eps), np.float32(2))))
                cutoff = max(CUTOFF, float(np.nextafter(np.float32(eps), np.float32(2))))
                return dist, eps, dbscan(dist, eps, MIN_SAMPLES, absent_value=cutoff)

            (dist, eps, labels), seconds, cpu, peak = _measure(run)
            report.update(eps=eps, stored=dist.nnz / num)
        if labels is not None:
            np.save(os.path.join(out_dir, f"{case}-{family}-{variant}-{num}.npy"), labels)
            report.update(clusters=int(labels.max()) + 1, outliers=int((labels < 0).sum()))
    report.update(seconds=seconds, cpu_seconds=cpu, peak_mb=peak, threads=torch.get_num_threads())
    print(json.dumps(report))


# ------------------------------------------------------------------ parent


def run_child(out_dir, **spec):
    spec = dict(dict(family="clustered", variant="mmt"), **spec)
    env = dict(os.environ, PYTHONPATH=REPO)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec), out_dir]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"case {spec} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  done ({os.getloadavg()[0]:.1f} load): {result}", file=sys.stderr)
    return result


def _labels(out_dir, row):
    return np.load(os.path.join(out_dir, f"{row['case']}-{row['family']}-{row['variant']}-{row['num']}.npy"))


def _ari(out_dir, a, b):
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(_labels(out_dir, a), _labels(out_dir, b))


def _met(flag):
    return "yes" if flag else "**no**"


def _cost(row):
    return f"{row['seconds']:.2f} | {row['cpu_seconds']:.1f} | {row['peak_mb']:.0f}"


def machine_description():
    import faiss
    import scipy
    import sklearn
    import torch

    cpu = platform.processor() or "unknown CPU"
    with open("/proc/cpuinfo") as handle:
        cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    gpu = "CUDA GPU available" if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, {gpu}; Python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), faiss {faiss.__version__}, scikit-learn {sklearn.__version__}, "
            f"scipy {scipy.__version__}, numpy {np.__version__}")


def _median_run(runs):
    """The run of median time (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]


def exact_rows(out_dir, num, dim, families, lines, repeats):
    lines += [f"(a) Jaccard + eps rule (rho {RHO}) + DBSCAN (min_samples {MIN_SAMPLES}), N = {num:,}, {dim}-d; "
              f"k1 {K1['mmt']} (mmt) / {K1['spcl']} (spcl), k2 {K2}; ours with cutoff {CUTOFF}. "
              f"Ours and the k-NN alone: the run of median time of {repeats}, alternating (ours, k-NN) in fresh "
              "processes; the last column is the ratio of the medians (range of the paired ratios)\n",
              "| family | variant | pipeline | time (s) | CPU (s) | peak RSS (MB) | stored / row | eps | clusters "
              "| outliers | ARI vs dense | speed-up vs dense | ours / k-NN alone |", "|" + "---|" * 13]
    for family in families:
        for variant in ("spcl", "mmt"):
            spec = dict(family=family, variant=variant, num=num, dim=dim)
            dense = run_child(out_dir, case="dense", **spec)
            # ours and the k-NN alone alternate, so that a change of load hits both; medians reported.
            pairs = [(run_child(out_dir, case="ours", **spec), run_child(out_dir, case="knn", **spec))
                     for _ in range(repeats)]
            ours, alone = (_median_run([p[side] for p in pairs]) for side in (0, 1))
            paired = [o["seconds"] / a["seconds"] for o, a in pairs]
            ari = _ari(out_dir, dense, ours)
            name = "fast-reid dense" if variant == "spcl" else "literal dense (tests/)"
            lines.append(f"| {family} | {variant} | {name} | {_cost(dense)} | {dense['stored']:,} | {dense['eps']:.4f} "
                         f"| {dense['clusters']} | {dense['outliers']} | | | |")
            lines.append(f"| {family} | {variant} | ours | {_cost(ours)} | {ours['stored']:.1f} | {ours['eps']:.4f} "
                         f"| {ours['clusters']} | {ours['outliers']} | {ari:.4f} {_met(ari >= GOALS['ari'])} "
                         f"| {dense['seconds'] / ours['seconds']:.1f}x | {ours['seconds'] / alone['seconds']:.2f} "
                         f"({min(paired):.2f}-{max(paired):.2f}) |")
            lines.append(f"| {family} | {variant} | our k-NN alone (k = {K1[variant] + (variant == 'mmt')}) "
                         f"| {_cost(alone)} | | | | | | | |")
    lines.append("")


def large_rows(out_dir, sizes, families, lines):
    lines += ["(b) Ours alone, MMT variant (k1 20, k2 6), cutoff 0.9, pipeline as in (a)\n",
              "| N x D | family | time (s) | CPU (s) | peak RSS (MB) | stored / row | eps | clusters | goal |",
              "|" + "---|" * 9]
    for num, dim in sizes:
        for family in families:
            row = run_child(out_dir, case="ours", family=family, num=num, dim=dim)
            ok = (row["peak_mb"] < GOALS["mem_gb"].get(dim, 4.0) * 1024
                  and row["seconds"] < GOALS["time_s"].get(dim, 1e9))
            lines.append(f"| {num:,} x {dim} | {family} | {_cost(row)} | {row['stored']:.1f} | {row['eps']:.4f} "
                         f"| {row['clusters']} | {_met(ok)} |")
    lines.append("")


def variant_rows(out_dir, num, dim, families, lines):
    lines += [f"(c) The two variants on the same features, N = {num:,}, {dim}-d (ours, cutoff {CUTOFF})\n",
              "| family | eps mmt | eps spcl | clusters mmt / spcl | ARI between the label sets |",
              "|---|---|---|---|---|"]
    for family in families:
        mmt, spcl = (run_child(out_dir, case="ours", family=family, variant=v, num=num, dim=dim)
                     for v in ("mmt", "spcl"))
        lines.append(f"| {family} | {mmt['eps']:.4f} | {spcl['eps']:.4f} | {mmt['clusters']} / {spcl['clusters']} "
                     f"| {_ari(out_dir, mmt, spcl):.4f} |")
    lines.append("")


def kmeans_rows(out_dir, num, dim, k, max_iter, lines):
    lines += [f"(d) k-means, N = {num:,}, {dim}-d, K = {k} (K generating identities)\n",
              "| method | time (s) | CPU (s) | peak RSS (MB) | NMI vs generating labels |", "|---|---|---|---|---|"]
    for name, backend in (("ours, faiss", "faiss"), ("ours, torch", "torch"),
                          (f"scikit-learn KMeans(n_init=1, max_iter={max_iter})", "sklearn")):
        row = run_child(out_dir, case="kmeans", num=num, dim=dim, clusters=k, backend=backend, max_iter=max_iter)
        lines.append(f"| {name} | {_cost(row)} | {row['nmi']:.4f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--sklearn-max-iter", type=int, default=50, help="cap on scikit-learn KMeans iterations")
    parser.add_argument("--sections", default="abcd", help="which of the cases (a)-(d) to run, e.g. 'ab'")
    parser.add_argument("--families", default=",".join(FAMILIES), help="feature families of (a)-(c), comma-separated")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of ours and of the k-NN alone in (a) (the median is reported)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child[0]), args.child[1])
        return
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be >= 1, got {args.repeats}")
    sizes = QUICK if args.quick else FULL
    families = args.families.split(",")
    if not set(families) <= set(FAMILIES):
        raise SystemExit(f"--families must be among {FAMILIES}, got {args.families!r}")
    load_start = os.getloadavg()
    lines = []
    with tempfile.TemporaryDirectory() as out_dir:
        if "a" in args.sections:
            exact_rows(out_dir, *sizes["exact"], families, lines, args.repeats)
        if "b" in args.sections:
            large_rows(out_dir, sizes["large"], families, lines)
        if "c" in args.sections:
            variant_rows(out_dir, *sizes["variants"], families, lines)
        if "d" in args.sections:
            kmeans_rows(out_dir, *sizes["kmeans"], args.sklearn_max_iter, lines)
    load_end = os.getloadavg()
    flags = (" --quick" if args.quick else "") + (f" --sections {args.sections}" if args.sections != "abcd" else "")
    flags += f" --families {args.families}" if families != list(FAMILIES) else ""
    flags += f" --repeats {args.repeats}" if args.repeats != 3 else ""
    header = [f"Command: `python benchmarks/clustering.py{flags}`\n",
              f"Machine: {machine_description()}.",
              f"Load average (1 min) at start / end: {load_start[0]:.1f} / {load_end[0]:.1f}.\n",
              "Time: wall-clock seconds of the pipeline (features generated beforehand); CPU: user + system seconds "
              "of the process over the same span; peak RSS: peak resident memory of the whole process during the "
              "pipeline. Each row ran alone in a fresh process.\n"]
    print("\n".join(header + lines))


if __name__ == "__main__":
    main()
