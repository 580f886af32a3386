"""Reading a run's ``metrics.json``: the per-epoch scalars fast-reid and ``MMTHook`` log.

Used by the commands that summarise runs (the demo, plots, the ablation and signal benchmarks).
"""

import json
import os

from .clustering import signals

# fast-reid flattens its results to "mAP" with one test set, "<set>/mAP" with several.
MAP_SUFFIX = "mAP"
RANK1_SUFFIX = "Rank-1"
# Label-free per-epoch signals of MMTHook, as logged (fastreid_mmt/clustering/signals.py).
SIGNALS = tuple(signals.SCALAR_PREFIX + name for name in signals.LABEL_FREE_SIGNALS)
# Diagnostics against the target's true ids (only where they exist).
TRUE_ID_SIGNALS = tuple(signals.SCALAR_PREFIX + name for name in signals.TRUE_ID_SIGNALS)


def read_metrics(output_dir):
    """The rows of ``output_dir/metrics.json`` (one dict per written iteration)."""
    path = os.path.join(output_dir, "metrics.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no metrics.json in {output_dir!r}: not a training run's OUTPUT_DIR")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def config_value(run_dir, key):
    """Value of the dotted ``key`` (e.g. ``MMT.ITERS_PER_EPOCH``) in ``run_dir/config.yaml``, the
    config fast-reid saves for every run."""
    import yaml

    with open(os.path.join(run_dir, "config.yaml")) as f:
        node = yaml.safe_load(f)
    for part in key.split("."):
        node = node[part]
    return node


def series(rows, keys):
    """``[(iteration, value)]`` of the first of ``keys`` present in ``rows``, by iteration."""
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    for key in keys:
        found = {int(row["iteration"]): float(row[key]) for row in rows if key in row}
        if found:
            return sorted(found.items())
    return []


def metric_key(rows, suffix, test_set=None):
    """The key of ``suffix`` (e.g. ``mAP``) for ``test_set`` (or the only / first one)."""
    if test_set:
        return f"{test_set}/{suffix}"
    keys = sorted({key for row in rows for key in row if key == suffix or key.endswith("/" + suffix)})
    return keys[0] if keys else None


def per_epoch(rows, iters_per_epoch, keys):
    """``{key: {epoch: value}}``. Evaluation results are put at the last iteration of the
    epoch they follow (epoch ``e`` = after ``e`` epochs of training, 1-based); clustering
    scalars at the previous epoch's last iteration, so ``e`` is the epoch they start
    (0-based): the network state of mAP epoch ``e`` is the one clustered for epoch ``e``."""
    out = {}
    for key in keys:
        values = series(rows, key)
        if values:
            out[key] = {round((it + 1) / iters_per_epoch): v for it, v in values}
    return out


def run_curves(run_dir):
    """``{key: {epoch: value}}`` of a run's signals and of its target mAP (key ``mAP``) where present."""
    rows = read_metrics(run_dir)
    ipe = int(config_value(run_dir, "MMT.ITERS_PER_EPOCH"))
    curves = per_epoch(rows, ipe, SIGNALS + TRUE_ID_SIGNALS)
    key = metric_key(rows, MAP_SUFFIX)
    if key:
        curves[MAP_SUFFIX] = per_epoch(rows, ipe, [key])[key]
    return curves
