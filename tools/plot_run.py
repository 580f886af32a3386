#!/usr/bin/env python
"""Plot a run's per-epoch signals: the label-free ones MMTHook logs (pseudo-label agreement
with the previous epoch, mean-net nearest-neighbour agreement, cluster count, outlier share,
cluster-size quantiles), and target mAP / NMI with true ids where the run has them.

    python tools/plot_run.py logs/mmt/folder            # writes logs/mmt/folder/signals.png
    python tools/plot_run.py RUN_DIR --output run.png

x axis: epoch. A clustering signal at epoch e comes from the mean nets after e epochs of
training (clustered before epoch e); the mAP at epoch e was evaluated after e epochs: the
same network state.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fastreid_mmt.run_metrics import (MAP_SUFFIX, SIGNALS, TRUE_ID_SIGNALS, config_value, metric_key,  # noqa: E402
                                      per_epoch, read_metrics)

# Panels: (title, keys drawn together).
PANELS = (
    ("agreement (label-free)", ("mmt/label_nmi_previous", "mmt/mean_net_nn_agreement")),
    ("clusters (label-free)", ("mmt/num_clusters",)),
    ("cluster sizes (label-free)", ("mmt/cluster_size_p10", "mmt/cluster_size_p50", "mmt/cluster_size_p90")),
    ("outliers (label-free)", ("mmt/outlier_share",)),
    ("with true target ids", TRUE_ID_SIGNALS),
)


def run_curves(run_dir):
    """``{key: {epoch: value}}`` of the signals and of target mAP (key ``mAP``) where present."""
    rows = read_metrics(run_dir)
    ipe = int(config_value(run_dir, "MMT.ITERS_PER_EPOCH"))
    curves = per_epoch(rows, ipe, SIGNALS + TRUE_ID_SIGNALS)
    key = metric_key(rows, MAP_SUFFIX)
    if key:
        curves[MAP_SUFFIX] = per_epoch(rows, ipe, [key])[key]
    return curves


def plot(curves, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(t, [k for k in keys if k in curves]) for t, keys in PANELS]
    panels = [(t, keys) for t, keys in panels if keys]
    if MAP_SUFFIX in curves:
        panels.append(("target test mAP (%)", [MAP_SUFFIX]))
    if not panels:
        raise ValueError("the run logged no MMT signal (is it an MMT run after its first clustering?)")
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    for ax, (panel_title, keys) in zip(axes[0], panels):
        for key in keys:
            epochs = sorted(curves[key])
            ax.plot(epochs, [curves[key][e] for e in epochs], marker="o", label=key.replace("mmt/", ""))
        ax.set(xlabel="epoch", title=panel_title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a training run's OUTPUT_DIR (metrics.json, config.yaml)")
    parser.add_argument("--output", default=None, help="image file (default: RUN_DIR/signals.png)")
    args = parser.parse_args(argv)
    try:
        curves = run_curves(args.run_dir)
        path = args.output or os.path.join(args.run_dir, "signals.png")
        plot(curves, path, os.path.abspath(args.run_dir))
    except (OSError, ValueError, KeyError) as err:
        sys.exit(f"plot_run.py: error: {err}")
    print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
