#!/usr/bin/env python
"""Does our k-means give the reference's pseudo labels? ``fastreid_mmt.clustering.kmeans``
(one k-means++ seeding on a subsample, ``MMT.CLUSTER.KMEANS_ITERS`` Lloyd iterations, faiss or
torch) against scikit-learn's ``KMeans`` as the reference calls it (``examples/
mmt_train_kmeans.py``: k-means++ on all rows, ``max_iter`` 300, ``n_init`` 10: the lowest-
inertia of 10 restarts; Elkan's exact variant of Lloyd, what scikit-learn 0.2x's "auto"
picked for dense data). Variants of ours (restarts, iterations, seeding subsample) are
spelt in ``--ours``.

scikit-learn's restarts are run one by one (``n_init=1``, ``random_state`` = 0, 1, ...) so
each one's inertia and labels are seen; the lowest-inertia one is what ``n_init=10`` returns
(it runs the same single fits from seeds drawn from its own ``random_state``). Printed per
run: wall time, inertia (sum of squared distances to the cluster means), NMI with the
best scikit-learn labels, NMI with the true ids.

Features: clustered synthetic ones (``--synthetic N D IDS``), or real network features
(``--config-file`` of an MMT config whose ``MMT.INIT_WEIGHTS`` are two pre-trained checkpoints:
the averaged mean-net feature of the target training set that MMT clusters at epoch 0).

Example::

    python benchmarks/kmeans_fidelity.py --synthetic 12936 2048 751 --k 500 --sklearn-runs 10 \
        --ours faiss:0:1 faiss:1:1 torch:0:1 faiss:0:10 --cache output/kmeans_fidelity/market
    FASTREID_DATASETS=/tmp/data python benchmarks/kmeans_fidelity.py --k 200 \\
        --config-file configs/Demo/mmt.yml -- MMT.INIT_WEIGHTS "['a.pth', 'b.pth']"
"""

import argparse
import os
import time

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score


import fastreid_mmt  # noqa: F401  (compat shims, registrations)
from fastreid_mmt.clustering import kmeans
from fastreid_mmt.clustering.pseudo_labels import cluster_centroids
from fastreid_mmt_lab.synthetic.features import clustered_features

# The reference's scikit-learn call: KMeans(n_clusters=K, random_state=seed) with the
# defaults of its time (n_init 10, max_iter 300, tol 1e-4, algorithm "auto" = Elkan's exact
# Lloyd for dense data in scikit-learn 0.2x).
SKLEARN_MAX_ITER = 300
SKLEARN_TOL = 1e-4
SKLEARN_ALGORITHM = "elkan"


def network_features(config_file, opts):
    """The averaged L2-normalised mean-net feature MMT clusters at epoch 0 ``[N, C]``, and the
    target's true ids ``[N]`` (diagnostic only)."""
    from fastreid.modeling import build_model
    from fastreid_mmt.data import build_extract_loader, load_target_set
    from fastreid_mmt.engine.setup import build_cfg

    cfg = build_cfg(config_file, opts)
    model = build_model(cfg)
    model.load_init_weights(list(cfg.MMT.INIT_WEIGHTS))
    model.eval()
    target = load_target_set(cfg)
    chunks = []
    with torch.no_grad():
        for batch in build_extract_loader(cfg, target):
            chunks.append(model.extract_mean_features(batch["images"]).float().cpu())
    return torch.cat(chunks), np.asarray(target.gt_pids), cfg.MMT.CLUSTER.KMEANS_ITERS


def inertia(features, labels):
    """Sum over rows of the squared distance to the mean of the row's cluster."""
    centroids = cluster_centroids(features, labels)
    return float((features - centroids[torch.as_tensor(labels)]).pow(2).sum())


def timed(run):
    """``(labels as int64 numpy, seconds)`` of ``run()``."""
    start = time.perf_counter()
    labels = run()
    return np.asarray(labels, dtype=np.int64), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthetic", type=int, nargs=3, metavar=("N", "D", "IDS"),
                        help="clustered synthetic features: rows, dimension, identities")
    parser.add_argument("--config-file", help="MMT config whose MMT.INIT_WEIGHTS give real features")
    parser.add_argument("--k", type=int, required=True, help="clusters")
    parser.add_argument("--sklearn-runs", type=int, default=10, help="scikit-learn restarts (n_init)")
    parser.add_argument("--ours", nargs="*", default=["faiss:0:1", "faiss:1:1", "torch:0:1"],
                        help="our runs as BACKEND:SEED:RESTARTS[:ITERS[:OVERSAMPLE]] (kmeans num_redo, "
                             "num_iters (default MMT.CLUSTER.KMEANS_ITERS), init_oversample)")
    parser.add_argument("--cache", help="folder keeping each run's labels and time: a later call with "
                                        "more runs reuses them (same features and K only)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="-- KEY VALUE ...: config overrides")
    args = parser.parse_args()

    if args.config_file:
        features, gt, iters = network_features(args.config_file, [o for o in args.opts if o != "--"])
        source = f"network features of {args.config_file}"
    elif args.synthetic:
        num, dim, ids = args.synthetic
        features, gt = clustered_features(num, dim, num_ids=ids, seed=0)
        from fastreid.config import get_cfg
        from fastreid_mmt.config import add_mmt_config
        cfg = get_cfg()
        add_mmt_config(cfg)
        iters = cfg.MMT.CLUSTER.KMEANS_ITERS
        source = f"clustered_features({num}, {dim}, num_ids={ids}, seed=0)"
    else:
        parser.error("give --synthetic N D IDS or --config-file")
    features = features.contiguous()
    array = features.numpy()
    print(f"{source}: {tuple(features.shape)}, K = {args.k}, {len(np.unique(gt))} true ids, "
          f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()}")

    jobs = []  # (name, function returning labels)
    for spec in args.ours:
        backend, seed, redo, *extra = spec.split(":")
        num_iters = int(extra[0]) if extra else iters
        options = dict(seed=int(seed), num_redo=int(redo), num_iters=num_iters, backend=backend)
        name = f"ours {backend} seed {seed} restarts {redo}"
        if num_iters != iters:
            name += f" iters {num_iters}"
        if len(extra) > 1:
            options["init_oversample"] = int(extra[1])
            name += f" seeding on {min(len(features), int(extra[1]) * args.k)} rows"
        jobs.append((name, lambda options=options: kmeans(features, args.k, **options)[0].numpy()))
    for seed in range(args.sklearn_runs):
        model = KMeans(n_clusters=args.k, n_init=1, max_iter=SKLEARN_MAX_ITER, tol=SKLEARN_TOL, random_state=seed,
                       algorithm=SKLEARN_ALGORITHM)
        jobs.append((f"sklearn seed {seed}", lambda model=model: model.fit(array).labels_))
    runs = []  # (name, labels, seconds)
    for name, job in jobs:
        cached = os.path.join(args.cache, name.replace(" ", "_") + ".npz") if args.cache else None
        if cached and os.path.exists(cached):
            saved = np.load(cached)
            labels, seconds = saved["labels"], float(saved["seconds"])
        else:
            labels, seconds = timed(job)
            if cached:
                os.makedirs(args.cache, exist_ok=True)
                np.savez(cached, labels=labels, seconds=seconds)
        runs.append((name, labels, seconds))
        print(f"  {name}: {seconds:.1f} s, inertia {inertia(features, labels):.2f}", flush=True)

    sk = [r for r in runs if r[0].startswith("sklearn")]
    best = min(sk, key=lambda r: inertia(features, r[1])) if sk else runs[0]
    print(f"\nreference labels: {best[0]} (the lowest inertia of the {len(sk)} scikit-learn restarts = what "
          f"n_init={len(sk)} returns); sklearn total {sum(r[2] for r in sk):.1f} s")
    print("\n| run | seconds | inertia | inertia vs reference | NMI with reference | NMI with true ids |")
    print("| --- | --- | --- | --- | --- | --- |")
    ref_inertia = inertia(features, best[1])
    for name, labels, seconds in runs:
        value = inertia(features, labels)
        print(f"| {name} | {seconds:.1f} | {value:.2f} | {100 * (value / ref_inertia - 1):+.3f}% | "
              f"{normalized_mutual_info_score(best[1], labels):.4f} | {normalized_mutual_info_score(gt, labels):.4f} |")
    others = [normalized_mutual_info_score(best[1], r[1]) for r in sk if r is not best]
    if others:
        print(f"\nNMI of the reference with the other scikit-learn restarts: min {min(others):.4f}, mean "
              f"{np.mean(others):.4f}, max {max(others):.4f}")


if __name__ == "__main__":
    main()
