"""How well each label-free signal follows the true target mAP across a run's epochs
(Spearman's rank correlation); ``benchmarks/signal_correlation.py`` runs it over runs."""

import math
import statistics

from scipy.stats import spearmanr

from fastreid_mmt.run_metrics import MAP_SUFFIX, SIGNALS, TRUE_ID_SIGNALS

# Fewer aligned epochs than this give no correlation.
MIN_EPOCHS = 3


def run_correlations(curves):
    """``{signal: rho}`` of one run (nan where the signal or mAP is constant)."""
    maps = curves.get(MAP_SUFFIX, {})
    out = {}
    for key in SIGNALS + TRUE_ID_SIGNALS:
        epochs = sorted(e for e in curves.get(key, {}) if e in maps and e >= 1)
        if len(epochs) >= MIN_EPOCHS:
            xs, ys = [curves[key][e] for e in epochs], [maps[e] for e in epochs]
            out[key] = float("nan") if len(set(xs)) < 2 or len(set(ys)) < 2 else float(spearmanr(xs, ys)[0])
    return out


def table(per_run):
    """Markdown table: per signal, the spread of its per-run correlations with mAP."""
    lines = ["| signal | runs (varied / all) | median rho | range | rho > 0 |", "| --- | --- | --- | --- | --- |"]
    for key in SIGNALS + TRUE_ID_SIGNALS:
        values = [r[key] for r in per_run.values() if key in r]
        varied = [v for v in values if not math.isnan(v)]
        if not values:
            continue
        if varied:
            lines.append(f"| {key} | {len(varied)} / {len(values)} | {statistics.median(varied):+.2f} | "
                         f"{min(varied):+.2f} .. {max(varied):+.2f} | {sum(v > 0 for v in varied)} |")
        else:
            lines.append(f"| {key} | 0 / {len(values)} | constant | | |")
    return "\n".join(lines)
