#!/usr/bin/env python
"""Pseudo labels without knowing the number of identities: how each clustering of MMT's first
epoch agrees with the true ids, on synthetic targets of several shapes (reads the true ids).

    python benchmarks/unknown_k_labels.py --pair output/demo --shapes 30x4 100x10 100x2-10 250x4 50x40 \\
        --output output/unknown_k_labels

``--pair`` is a stage-I pair as ``tools/demo.py`` writes it (``pretrain-seed{1,2}/model_final.pth``).
Each shape (``IDSxCROPS`` or ``IDSxLO-HI``, see ``fastreid_mmt_lab/target_shapes.py``) is drawn
in the ``--target`` layout (Duke, the demo's direction, or Market for a pair trained the other
way) under ``--output``, its training images go through the pair's two networks as
at MMT's first clustering (averaged L2-normalised BN features), and each method clusters them:
the reference's DBSCAN rule (``configs/MMT/*-dbscan.yml``), k-means with the estimated K
(``MMT.CLUSTER.NUM_CLUSTERS 0``, always k-means here) and k-means with the true K. Prints one
Markdown table per shape: clusters, outlier share, NMI and ARI against the true ids (outliers as
singletons), and for the estimate the features' cluster structure (best smoothed silhouette; below
``MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE``, 0.17 in ``folder.yml``, a run clusters with the DBSCAN rule
instead if it fills a batch).
Synthetic data only, never a Market-1501 / DukeMTMC-reID result.
"""

import argparse
import os

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import fastreid_mmt  # noqa: F401  (compat shims before fastreid)
from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.modeling import build_model

from fastreid_mmt.clustering.pseudo_labels import compute_pseudo_labels
from fastreid_mmt.clustering.signals import singletons
from fastreid_mmt.data.target import TargetSet, build_extract_loader
from fastreid_mmt.engine.setup import build_cfg
from fastreid_mmt_lab.recipes import MMT_CFG, PRETRAIN_SEEDS
from fastreid_mmt_lab.target_shapes import FASTREID_CLASS, parse_shape, write_target

METHODS = {
    "DBSCAN, the reference's rule": ["MMT.CLUSTER.METHOD", "dbscan"],
    "k-means, estimated K": ["MMT.CLUSTER.METHOD", "kmeans", "MMT.CLUSTER.NUM_CLUSTERS", "0",
                             "MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE", "0.0"],
}
TRUE_K = "k-means, true K"


@torch.no_grad()
def first_clustering_features(model, cfg, target):
    """The averaged mean-net features MMT clusters before its first epoch, ``[N, C]``."""
    model.eval()
    chunks = [model.extract_mean_features(batch["images"]) for batch in build_extract_loader(cfg, target)]
    return torch.cat(chunks).float()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", required=True, help="a stage-I pair folder (tools/demo.py's output)")
    parser.add_argument("--shapes", nargs="+", required=True, help="IDSxCROPS or IDSxLO-HI")
    parser.add_argument("--target", choices=sorted(FASTREID_CLASS), default="duke",
                        help="the layout of the targets: duke for a pair trained Market -> Duke (the demo's)")
    parser.add_argument("--output", default="output/unknown_k_labels")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="clustering seeds")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides of configs/Demo/mmt.yml")
    args = parser.parse_args()
    shapes = [parse_shape(text) for text in args.shapes]
    init = [os.path.join(args.pair, f"pretrain-seed{s}", "model_final.pth") for s in PRETRAIN_SEEDS]
    cfg = build_cfg(MMT_CFG, [*args.opts, "MMT.INIT_WEIGHTS", str(init)])
    model = build_model(cfg)
    model.load_init_weights(init)
    for shape in shapes:
        root = os.path.join(args.output, shape.name)
        write_target(root, shape, *cfg.INPUT.SIZE_TEST, domain=args.target)
        items = DATASET_REGISTRY.get(FASTREID_CLASS[args.target])(root=root).train
        ids = {pid: i for i, pid in enumerate(sorted({item[1] for item in items}))}
        cams = {cam: i for i, cam in enumerate(sorted({item[2] for item in items}))}
        target = TargetSet([it[0] for it in items], [cams[it[2]] for it in items], [ids[it[1]] for it in items])
        truth = np.asarray(target.gt_pids)
        features = first_clustering_features(model, cfg, target)
        ids_per_batch = cfg.SOLVER.IMS_PER_BATCH // cfg.DATALOADER.NUM_INSTANCE  # as MMTHook passes it
        methods = {**METHODS, TRUE_K: ["MMT.CLUSTER.METHOD", "kmeans", "MMT.CLUSTER.NUM_CLUSTERS", str(len(ids))]}
        print(f"\n{shape.name}: {len(truth)} images of {len(ids)} identities")
        print("| method | seed | clusters | outliers | NMI | ARI | structure |\n" + "| --- " * 7 + "|")
        for name, opts in methods.items():
            cluster_cfg = build_cfg(MMT_CFG, [*args.opts, *opts]).MMT.CLUSTER
            for seed in args.seeds:
                try:
                    result = compute_pseudo_labels(features, cluster_cfg, seed, min_clusters=ids_per_batch)
                except ValueError as err:  # e.g. every image an outlier: the run would stop here
                    print(f"| {name} | {seed} | stops: {str(err).split(':')[0]} | | | | |")
                    continue
                labels, as_ids = result.labels, singletons(result.labels)
                structure = "" if result.structure is None else f"{result.structure:.3f}"
                print(f"| {name} | {seed} | {int(labels.max()) + 1} | {(labels < 0).mean():.2f} | "
                      f"{normalized_mutual_info_score(truth, as_ids):.3f} | "
                      f"{adjusted_rand_score(truth, as_ids):.3f} | {structure} |", flush=True)


if __name__ == "__main__":
    main()
