"""tools/gpu_check.sh end to end at smoke size (on a CPU here; the same code paths time the GPU)."""

import os
import subprocess
import sys

import pytest

from .conftest import REPO


@pytest.mark.slow
def test_gpu_check_smoke_prints_one_table(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, PYTHONWARNINGS="ignore")
    proc = subprocess.run(["bash", os.path.join(REPO, "tools", "gpu_check.sh"), str(tmp_path / "wheels"),
                           str(tmp_path / "out"), "--smoke"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = (tmp_path / "out" / "gpu_check.md").read_text()
    assert table in proc.stdout
    for row in ("embedded Market-layout data", "Jaccard + DBSCAN, N=300", "k-means (torch)",
                "MMT epoch, 3 it, batch 16, AMP |", "MMT epoch, 3 it, batch 16, AMP, channels-last"):
        assert row in table, table
    assert "it/s" in table and "images per BN" in table


@pytest.mark.slow
def test_gpu_check_refuses_without_cuda_unless_smoke(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("with CUDA this would be the full GPU check, not a test")
    proc = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "gpu_check.py"), "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "no CUDA device" in proc.stderr
