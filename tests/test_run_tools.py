"""Reading a run's metrics per epoch, its plot and the signals' correlation with mAP."""

import json

import pytest

from fastreid_mmt.run_metrics import per_epoch, read_metrics, run_curves
from fastreid_mmt_lab.signal_study import run_correlations

from .conftest import load_tool

plot_run = load_tool("plot_run")

ITERS = 10


def _run_dir(tmp_path, maps, agreement):
    """A run of len(maps) epochs as MMTTrainer writes it: clustering scalars of epoch e at
    iteration e * ITERS - 1 (-1 for epoch 0 is written as 0), mAP of epoch e at e * ITERS - 1."""
    rows = [{"iteration": 0, "mmt/num_clusters": 20.0, "mmt/mean_net_nn_agreement": agreement[0]}]
    for epoch, value in enumerate(maps, start=1):
        row = {"iteration": epoch * ITERS - 1, "mAP": value}
        if epoch < len(maps):
            row.update({"mmt/num_clusters": 20.0, "mmt/mean_net_nn_agreement": agreement[epoch],
                        "mmt/label_nmi_previous": 0.5 + 0.01 * epoch})
        rows.append(row)
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "config.yaml").write_text(f"MMT:\n  ITERS_PER_EPOCH: {ITERS}\n")
    return str(tmp_path)


def test_signal_of_epoch_e_pairs_with_the_map_after_e_epochs(tmp_path):
    run = _run_dir(tmp_path, maps=[50.0, 52.0, 51.0, 55.0], agreement=[0.4, 0.5, 0.6, 0.55])
    curves = per_epoch(read_metrics(run), ITERS, ["mAP", "mmt/mean_net_nn_agreement"])
    assert curves["mAP"] == {1: 50.0, 2: 52.0, 3: 51.0, 4: 55.0}
    assert curves["mmt/mean_net_nn_agreement"] == {0: 0.4, 1: 0.5, 2: 0.6, 3: 0.55}
    rho = run_correlations(run_curves(run))
    assert rho["mmt/mean_net_nn_agreement"] == pytest.approx(1.0)  # same ranks as 50, 52, 51
    assert rho["mmt/label_nmi_previous"] == pytest.approx(0.5)
    assert rho["mmt/num_clusters"] != rho["mmt/num_clusters"]  # constant: nan, reported as such
    plot_run.main([run, "--output", str(tmp_path / "signals.png")])
    assert (tmp_path / "signals.png").stat().st_size > 0


def test_a_run_without_metrics_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        read_metrics(str(tmp_path))
