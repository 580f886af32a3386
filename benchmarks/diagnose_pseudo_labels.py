#!/usr/bin/env python
"""How good are MMT's starting pseudo labels and teachers? A diagnostic (reads target ids).

Loads the two source checkpoints of an MMT config (``MMT.INIT_WEIGHTS``) and, on the target
training set, prints:

* how alike the two networks' feature spaces are (cosine between their features of the same
  image), k-means NMI and nearest-neighbour accuracy of each feature, and how the shared
  centroid classifier compares with each network's own;
* the quality of k-means / DBSCAN pseudo labels of the averaged mean-net feature (what MMT
  clusters at epoch 0) against the true ids: NMI, ARI, pairwise precision / recall (all and
  cross-camera only) and the share of a cluster's images from its main camera;
* the teachers' top-1 accuracy on the true ids on augmented two-view training batches, with
  train-mode BN (as MMT runs them) and eval-mode BN.

The true ids are read here for measurement only; nothing is trained.

Example (after ``make demo``)::

    FASTREID_DATASETS=output/demo/data .venv/bin/python benchmarks/diagnose_pseudo_labels.py \\
        --config-file configs/Demo/mmt.yml --kmeans 200 100 300 400 --dbscan-eps 0.3 0.4 -- MODEL.DEVICE cpu
"""

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


import fastreid_mmt  # noqa: F401  (compat shims, registrations)
from fastreid.modeling import build_model
from fastreid.utils.env import seed_all_rng

from fastreid_mmt.clustering import kmeans
from fastreid_mmt.clustering.pseudo_labels import cluster_centroids, compute_pseudo_labels
from fastreid_mmt.data import build_extract_loader, build_pseudo_label_loader, load_target_set
from fastreid_mmt.engine.setup import build_cfg

SEED = 1


@torch.no_grad()
def mean_net_features(model, loader):
    """Eval-mode BN features (not normalised) of ``mean_net1`` and ``mean_net2``, each ``[N, C]``."""
    model.eval()
    feats = ([], [])
    for batch in loader:
        images = model.preprocess(batch["images"])
        for out, net in zip(feats, (model.mean_net1, model.mean_net2)):
            out.append(model._run(net, images).cpu())
    return torch.cat(feats[0]), torch.cat(feats[1])


def pair_scores(labels, gt, cams):
    """Pairwise precision / recall of ``labels`` against ``gt``, over all pairs and over
    cross-camera pairs only, and the mean share of a cluster's images from its main camera."""
    same = labels[:, None] == labels[None]
    true = gt[:, None] == gt[None]
    cross = cams[:, None] != cams[None]
    np.fill_diagonal(same, False)
    np.fill_diagonal(true, False)
    camdom = np.mean([np.bincount(cams[labels == k]).max() / (labels == k).sum() for k in np.unique(labels)])
    return {
        "pair_P": (same & true).sum() / max(same.sum(), 1),
        "pair_R": (same & true).sum() / max(true.sum(), 1),
        "xcam_P": (same & true & cross).sum() / max((same & cross).sum(), 1),
        "xcam_R": (same & true & cross).sum() / max((true & cross).sum(), 1),
        "camdom": camdom,
    }


def label_row(name, labels, gt, cams):
    """One table row; NMI, ARI and pair scores over the clustered (non-outlier) images."""
    keep = labels >= 0
    scores = pair_scores(labels[keep], gt[keep], cams[keep])
    return (f"| {name} | {len(np.unique(labels[keep]))} | {int((~keep).sum())} | "
            f"{normalized_mutual_info_score(gt[keep], labels[keep]):.3f} | "
            f"{adjusted_rand_score(gt[keep], labels[keep]):.3f} | "
            + " | ".join(f"{scores[k]:.3f}" for k in ("pair_P", "pair_R", "xcam_P", "xcam_R", "camdom")) + " |")


def nearest_neighbour_rate(feats, gt):
    """Share of images whose nearest other image (cosine) has the same id."""
    sim = feats @ feats.t()
    sim.fill_diagonal_(-float("inf"))
    return float((gt[sim.argmax(1).numpy()] == gt).mean())


def classifier_sharpness(raw_feats, centroid_source, gt_t):
    """Top-1 accuracy and mean entropy (nats) of the logits ``raw_feats @ W^T``, ``W`` the
    normalised true-id centroids of ``centroid_source`` (MMT's classifier initialisation)."""
    ids = gt_t.unique()
    weight = F.normalize(torch.stack([centroid_source[gt_t == k].mean(0) for k in ids]), dim=1)
    prob = (raw_feats @ weight.t()).softmax(1)
    acc = (prob.argmax(1) == torch.searchsorted(ids, gt_t)).float().mean().item()
    return acc, -(prob * prob.clamp_min(1e-12).log()).sum(1).mean().item()


@torch.no_grad()
def teacher_accuracy(model, loader_iter, batches):
    """Top-1 accuracy of ``mean_net1`` on the true ids of ``batches`` augmented batches."""
    hits = []
    for _ in range(batches):
        batch = next(loader_iter)
        out = model._run_mean_net(model.mean_net1, model.preprocess(batch["images"]), batch["targets"])
        hits.append((out["pred_class_logits"].argmax(1).cpu() == batch["targets"]).float().mean().item())
    return float(np.mean(hits))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True, help="an MMT config (MMT.INIT_WEIGHTS: two checkpoints)")
    parser.add_argument("--kmeans", type=int, nargs="*", default=[200], help="k-means cluster counts")
    parser.add_argument("--dbscan-eps", type=float, nargs="*", default=[], help="DBSCAN radii (Jaccard)")
    parser.add_argument("--batches", type=int, default=3, help="augmented batches for the teacher accuracy")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="-- KEY VALUE ...: config overrides")
    args = parser.parse_args()

    cfg = build_cfg(args.config_file, [o for o in args.opts if o != "--"])
    seed_all_rng(SEED)
    model = build_model(cfg)
    model.load_init_weights(list(cfg.MMT.INIT_WEIGHTS))
    target = load_target_set(cfg)
    gt, cams = np.asarray(target.gt_pids), np.asarray(target.camids)
    gt_t = torch.as_tensor(gt)

    raw1, raw2 = mean_net_features(model, build_extract_loader(cfg, target))
    f1, f2 = F.normalize(raw1, dim=1), F.normalize(raw2, dim=1)
    averaged = (f1 + f2) / 2  # what MMT clusters
    print(f"{len(gt)} target training images, {len(np.unique(gt))} ids, {len(np.unique(cams))} cameras")
    print(f"cosine between the two networks' features of the same image: {(f1 * f2).sum(1).mean():.3f}")
    k = args.kmeans[0] if args.kmeans else len(np.unique(gt))
    for name, feats in (("net 1", f1), ("net 2", f2), ("averaged", F.normalize(averaged, dim=1)),
                        ("concatenated", torch.cat([f1, f2], 1) / 2 ** 0.5)):
        labels = kmeans(feats, k, seed=SEED, num_iters=cfg.MMT.CLUSTER.KMEANS_ITERS)[0].numpy()
        print(f"{name} feature: k-means {k} NMI {normalized_mutual_info_score(gt, labels):.3f}, nearest "
              f"neighbour of the same id {nearest_neighbour_rate(feats, gt):.3f}")
    for name, source in (("its own", f1), ("the averaged", averaged)):
        acc, entropy = classifier_sharpness(raw1, source, gt_t)
        print(f"net 1 with {name} true-id centroids as classifier (clean images): top-1 {acc:.3f}, "
              f"entropy {entropy:.2f} nats")

    print("\n| clustering (averaged feature) | clusters | outliers | NMI | ARI | pair precision | pair recall "
          "| cross-camera precision | cross-camera recall | main-camera share |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    cluster_cfg = cfg.MMT.CLUSTER.clone()
    cluster_cfg.defrost()
    for k in args.kmeans:
        cluster_cfg.METHOD, cluster_cfg.NUM_CLUSTERS = "kmeans", k
        print(label_row(f"k-means {k}", compute_pseudo_labels(averaged, cluster_cfg, SEED).labels, gt, cams))
    for eps in args.dbscan_eps:
        cluster_cfg.METHOD = "dbscan"
        labels = compute_pseudo_labels(averaged, cluster_cfg, SEED, eps=eps).labels
        print(label_row(f"DBSCAN eps {eps}", labels, gt, cams))

    model.reset_classifiers(cluster_centroids(averaged, gt))
    loader = iter(build_pseudo_label_loader(cfg, target, gt, SEED))
    model.train()
    train_bn = teacher_accuracy(model, loader, args.batches)
    for m in model.mean_net1.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    eval_bn = teacher_accuracy(model, loader, args.batches)
    print(f"\nmean net 1 on augmented training batches, true-id centroid classifier ({args.batches} batches each): "
          f"top-1 {train_bn:.2f} with train-mode BN ({cfg.MMT.IMS_PER_BN} images per BN), {eval_bn:.2f} with "
          f"eval-mode BN")


if __name__ == "__main__":
    main()
