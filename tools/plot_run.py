#!/usr/bin/env python
"""Plot a run's per-epoch signals: the label-free ones MMTHook logs (pseudo-label agreement
with the previous epoch, mean-net nearest-neighbour agreement, cluster count, outlier share,
cluster-size quantiles), and target mAP / NMI with true ids where the run has them.

    python tools/plot_run.py logs/mmt/folder            # writes logs/mmt/folder/signals.png
    python tools/plot_run.py RUN_DIR --output run.png

x axis: epoch. A clustering signal at epoch e comes from the mean nets after e epochs of
training (clustered before epoch e); the mAP at epoch e was evaluated after e epochs: the
same network state. Epochs whose clustering left most crops out (outliers) are shaded.
"""

import argparse
import os
import sys

from fastreid_mmt.clustering.pseudo_labels import MOST_LEFT_OUT
from fastreid_mmt.clustering.signals import (LABEL_AGREEMENT, MEAN_NET_AGREEMENT, NUM_CLUSTERS, OUTLIER_SHARE,
                                             SCALAR_PREFIX, SIZE_SIGNALS)
from fastreid_mmt.run_metrics import MAP_SUFFIX, TRUE_ID_SIGNALS, run_curves


def _logged(*names):
    return tuple(SCALAR_PREFIX + name for name in names)


# Panels: (title, keys drawn together).
PANELS = (
    ("agreement (label-free)", _logged(LABEL_AGREEMENT, MEAN_NET_AGREEMENT)),
    ("clusters (label-free)", _logged(NUM_CLUSTERS)),
    ("cluster sizes (label-free)", _logged(*SIZE_SIGNALS)),
    ("outliers (label-free)", _logged(OUTLIER_SHARE)),
    ("with true target ids", TRUE_ID_SIGNALS),
)
PANEL_COLUMNS = 3
PANEL_SIZE_IN = (4.0, 3.0)


def left_out_epochs(curves):
    """Epochs whose clustering left most crops out (outlier share above MOST_LEFT_OUT): the
    epochs the training log warns about; shaded in every panel."""
    share = curves.get(SCALAR_PREFIX + OUTLIER_SHARE, {})
    return sorted(epoch for epoch, value in share.items() if value > MOST_LEFT_OUT)


def plot(curves, path, title):
    """Draw the run's curves as a grid of panels (whole-number epoch ticks) into ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = [(t, [k for k in keys if k in curves]) for t, keys in PANELS]
    panels = [(t, keys) for t, keys in panels if keys]
    if MAP_SUFFIX in curves:
        panels.append(("target test mAP (%)", [MAP_SUFFIX]))
    if not panels:
        raise ValueError("the run logged no MMT signal (is it an MMT run after its first clustering?)")
    rows = -(-len(panels) // PANEL_COLUMNS)
    columns = min(PANEL_COLUMNS, len(panels))
    fig, axes = plt.subplots(rows, columns, figsize=(PANEL_SIZE_IN[0] * columns, PANEL_SIZE_IN[1] * rows),
                             squeeze=False)
    flagged = left_out_epochs(curves)
    for ax, (panel_title, keys) in zip(axes.flat, panels):
        for key in keys:
            epochs = sorted(curves[key])
            ax.plot(epochs, [curves[key][e] for e in epochs], marker="o", label=key.replace(SCALAR_PREFIX, ""))
        for epoch in flagged:
            ax.axvspan(epoch - 0.5, epoch + 0.5, color="red", alpha=0.12, linewidth=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="epoch", title=panel_title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if flagged:
        title += f"\nshaded: epochs whose clustering left most crops out ({', '.join(map(str, flagged))})"
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
