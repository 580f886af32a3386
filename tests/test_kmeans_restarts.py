"""k-means restarts (scikit-learn's n_init) and the k-means fidelity benchmark's smoke run."""

import os
import re
import subprocess
import sys

import pytest
import torch

from fastreid_mmt.clustering import kmeans
from fastreid_mmt.clustering.pseudo_labels import cluster_centroids
from fastreid_mmt_lab.synthetic.features import clustered_features

from .conftest import REPO


def _inertia(features, labels):
    return float((features - cluster_centroids(features, labels)[labels]).pow(2).sum())


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_restarts_keep_the_lowest_inertia_and_one_restart_is_the_default(backend):
    features, _ = clustered_features(600, 32, num_ids=60, seed=3)
    single = kmeans(features, 40, seed=5, num_iters=10, backend=backend)[0]
    explicit = kmeans(features, 40, seed=5, num_iters=10, backend=backend, num_redo=1)[0]
    assert torch.equal(single, explicit)
    # The first restart is the single run: the best of 4 cannot be worse.
    restarted = kmeans(features, 40, seed=5, num_iters=10, backend=backend, num_redo=4)[0]
    assert _inertia(features, restarted) <= _inertia(features, single) + 1e-4
    with pytest.raises(ValueError, match="num_redo"):
        kmeans(features, 40, num_redo=0, backend=backend)


@pytest.mark.slow
def test_fidelity_benchmark_smoke():
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "kmeans_fidelity.py"), "--synthetic", "300", "32", "30",
         "--k", "10", "--sklearn-runs", "2", "--ours", "faiss:0:1", "torch:0:1"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = dict(re.findall(r"^\| (ours \w+ seed 0 restarts 1|sklearn seed \d) \| [\d.]+ \| ([\d.]+) \|", proc.stdout,
                           re.M))
    assert len(rows) == 4, proc.stdout
    # Both backends start from the same seeds: the same partition, the same inertia.
    assert rows["ours faiss seed 0 restarts 1"] == rows["ours torch seed 0 restarts 1"]
