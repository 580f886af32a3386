"""benchmarks/diagnose_pseudo_labels.py runs on the embedded data and prints its measurements."""

import re
import subprocess
import sys

import pytest

from .conftest import REPO, TINY_RUN_OPTS, save_source_checkpoints, small_mmt_cfg, train_net_env

TOOL = f"{REPO}/benchmarks/diagnose_pseudo_labels.py"


@pytest.mark.slow
def test_diagnose_prints_alignment_label_quality_and_teacher_accuracy(tiny_data, tmp_path):
    paths = save_source_checkpoints(small_mmt_cfg(), tmp_path)
    proc = subprocess.run([sys.executable, TOOL, "--config-file", "configs/Demo/mmt.yml", "--kmeans", "10", "20",
                           "--dbscan-eps", "0.9", "--batches", "1", "--", "MMT.INIT_WEIGHTS", str(paths), *TINY_RUN_OPTS],
                          cwd=REPO, env=train_net_env(tiny_data), capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "160 target training images, 20 ids" in out
    assert re.search(r"cosine between the two networks' features of the same image: -?[01]\.\d{3}", out)
    assert re.search(r"averaged feature: k-means 10 NMI [01]\.\d{3}, nearest neighbour of the same id "
                     r"[01]\.\d{3}", out)
    rows = (r"\| k-means 10 \| 10 \| 0 \| ", r"\| k-means 20 \| 20 \| 0 \| ", r"\| DBSCAN eps 0.9 \| \d+ \| \d+ \| ")
    for row in rows:
        assert re.search(row, out), out
    assert re.search(r"top-1 [01]\.\d\d with train-mode BN \(16 images per BN\), [01]\.\d\d with eval-mode BN", out)
