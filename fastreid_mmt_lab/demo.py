"""The demo's pieces: its synthetic data (written once), its runs' final numbers and curves,
its table and its plot (``tools/demo.py`` runs the stages)."""

from __future__ import annotations

import json
import os
from typing import Dict, List

from fastreid_mmt.clustering.signals import SCALAR_PREFIX
from fastreid_mmt.run_metrics import MAP_SUFFIX, RANK1_SUFFIX, config_value, metric_key, per_epoch, read_metrics, series

from . import synthetic
from .jobs import StageFailed

DATA_MARKER = ".demo_data.json"
DIRECTION = "Market-layout -> Duke-layout"
# Pseudo labels against the target's true ids (a diagnostic the hook logs on labelled targets).
NMI_KEY = SCALAR_PREFIX + "nmi"


def data_complete(root: str, params: Dict[str, int]) -> bool:
    """True when ``root`` holds a pair written by this script with ``params`` and every file
    the marker lists is still there."""
    marker = os.path.join(root, DATA_MARKER)
    try:
        with open(marker) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return False
    if saved.get("params") != params:
        return False
    for role, counts in saved.get("counts", {}).items():
        folder = counts.get("dataset_dir", "")
        for split, key in ((synthetic.TRAIN_DIR, "train"), (synthetic.QUERY_DIR, "query"),
                           (synthetic.GALLERY_DIR, "gallery")):
            expected = counts[f"{key}_images"]  # the gallery count includes pid-0 junk
            path = os.path.join(folder, split)
            if not os.path.isdir(path) or len(os.listdir(path)) != expected:
                return False
    return bool(saved.get("counts"))


def prepare_data(root: str, params: Dict[str, int]) -> bool:
    """Write the synthetic pair into ``root`` unless a complete copy is there.

    Returns:
        True if it was written, False if skipped.
    """
    if data_complete(root, params):
        return False
    os.makedirs(root, exist_ok=True)
    marker = os.path.join(root, DATA_MARKER)
    if os.path.exists(marker):
        os.remove(marker)
    counts = synthetic.write_pair(
        root, num_ids_source=params["num_ids"], num_ids_target=params["num_ids"],
        images_per_id=params["images_per_id"], num_query_ids_source=params["num_query_ids"],
        num_query_ids_target=params["num_query_ids"], height=params["height"], width=params["width"],
        overwrite=True)
    with open(marker, "w") as f:
        json.dump({"params": params, "counts": counts}, f, indent=1)
    return True


def final_metrics(output_dir: str) -> Dict[str, float]:
    """Target mAP and Rank-1 of a run's last evaluation."""
    rows = read_metrics(output_dir)
    maps, rank1 = ([] if key is None else series(rows, key)
                   for key in (metric_key(rows, MAP_SUFFIX), metric_key(rows, RANK1_SUFFIX)))
    if not maps or not rank1:
        raise StageFailed(f"no target mAP / Rank-1 in {output_dir}/metrics.json")
    return {"mAP": maps[-1][1], "Rank-1": rank1[-1][1]}


def curves(output_dir: str) -> Dict[str, List[list]]:
    """mAP per evaluated epoch (1-based: after that many epochs) and NMI of the pseudo labels
    per epoch (0-based: the clustering before that epoch's training)."""
    rows = read_metrics(output_dir)
    ipe = int(config_value(output_dir, "MMT.ITERS_PER_EPOCH"))
    keys = {"mAP": metric_key(rows, MAP_SUFFIX), "nmi": NMI_KEY}
    found = per_epoch(rows, ipe, [key for key in keys.values() if key])
    return {name: sorted([epoch, value] for epoch, value in found.get(key, {}).items())
            for name, key in keys.items()}


def format_table(rows: List[dict], total_s: float) -> str:
    """The demo's one table: method, mAP, Rank-1, stage and wall time."""
    header = f"| {'method':<41} | {'mAP':>6} | {'Rank-1':>6} | {'stage':<36} | {'wall time':>9} |"
    rule = "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"
    lines = [header, rule]
    for row in rows:
        lines.append(f"| {row['method']:<41} | {row['mAP']:6.1f} | {row['Rank-1']:6.1f} | "
                     f"{row['stage']:<36} | {row['wall_s']:7.0f} s |")
    lines.append(f"total wall time: {total_s:.0f} s ({total_s / 60:.1f} min)")
    return "\n".join(lines)


def plot(path: str, runs: Dict[str, dict], direct_map: float, bn_only_map: float):
    """``demo.png``: target mAP per epoch beside the pseudo labels' NMI per epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_map, ax_nmi) = plt.subplots(1, 2, figsize=(10, 4))
    for name, run in runs.items():
        xs, ys = zip(*run["mAP"]) if run["mAP"] else ((), ())
        ax_map.plot(xs, ys, marker="o", label=name)
        xs, ys = zip(*run["nmi"]) if run["nmi"] else ((), ())
        ax_nmi.plot(xs, ys, marker="o", label=name)
    ax_map.axhline(direct_map, color="grey", linestyle="--", label="direct transfer")
    ax_map.axhline(bn_only_map, color="black", linestyle=":", label="target BN statistics only")
    ax_map.set(xlabel="epoch (evaluated after)", ylabel="target mAP (%)", title="Target test mAP")
    ax_nmi.set(xlabel="epoch (clustering before)", ylabel="NMI", title="Pseudo labels vs true ids (NMI)")
    for ax in (ax_map, ax_nmi):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"MMT demo on synthetic {DIRECTION} data (not the real data sets)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
