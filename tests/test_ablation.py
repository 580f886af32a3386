"""benchmarks/ablation.py: each run's command line as train_net.py would merge it, and the summary."""

import os

import pytest

from fastreid_mmt.engine.setup import build_cfg

from fastreid_mmt_lab import ablation, recipes


def _cfg(args):
    """The config a run gets: ``--config-file F KEY VALUE ...`` merged as train_net.py does."""
    assert args[0] == "--config-file"
    return build_cfg(args[1], args[2:])


def _specs(tmp_path, variants, regimes, extra=()):
    return ablation.run_specs([str(tmp_path / "pair")], variants, [7], str(tmp_path / "out"), list(extra), regimes)


@pytest.mark.parametrize("regime", list(recipes.REGIMES))
def test_every_regime_and_variant_merges_into_the_demo_config(tmp_path, regime):
    for name, _, group, seed, run_dir, args in _specs(tmp_path, list(recipes.VARIANTS), [regime]):
        cfg = _cfg(args)
        assert cfg.SEED == seed == 7 and cfg.OUTPUT_DIR == run_dir
        assert os.path.basename(run_dir) == name and "/" not in name
        assert ablation.split_group(group) == (regime, group.rpartition("/")[2])


def test_reference_regime_puts_back_the_reference_settings_and_the_variant_wins(tmp_path):
    specs = {group: _cfg(args) for _, _, group, _, _, args in
             _specs(tmp_path, ["mmt", "baseline-1net", "mmt-student-teacher"], ["demo", "reference", "momentum-0.96-adam-kept"],
                    extra=["MMT.CLUSTER.NUM_CLUSTERS", "50"])}
    demo_mmt, ref_mmt, kept_mmt = specs["mmt"], specs["reference/mmt"], specs["momentum-0.96-adam-kept/mmt"]
    # The demo's departures (configs/Demo/mmt.yml): the lr, erasing and momentum, with the
    # reference's Adam reset ...
    assert (demo_mmt.SOLVER.BASE_LR, demo_mmt.INPUT.REA.ENABLED, demo_mmt.MMT.EMA_ALPHA,
            demo_mmt.MMT.RESET_OPTIMIZER_EACH_EPOCH) == (1e-4, False, 0.96, True)
    # ... which the momentum-0.96-adam-kept regime leaves out ...
    assert (kept_mmt.MMT.EMA_ALPHA, kept_mmt.MMT.RESET_OPTIMIZER_EACH_EPOCH) == (0.96, False)
    assert (kept_mmt.SOLVER.BASE_LR, kept_mmt.INPUT.REA.ENABLED) == (1e-4, False)
    # ... are the reference's again in the reference regime (configs/MMT/Base-MMT.yml).
    assert (ref_mmt.SOLVER.BASE_LR, ref_mmt.INPUT.REA.ENABLED, ref_mmt.MMT.EMA_ALPHA,
            ref_mmt.MMT.RESET_OPTIMIZER_EACH_EPOCH) == (3.5e-4, True, 0.999, True)
    # A variant's own keys win over the regime's: the one-network baseline and the
    # student-as-teacher row keep momentum 0, with the regime's other settings.
    for group in ("reference/baseline-1net", "reference/mmt-student-teacher"):
        assert specs[group].MMT.EMA_ALPHA == 0.0 and specs[group].SOLVER.BASE_LR == 3.5e-4
    assert specs["reference/baseline-1net"].MMT.SINGLE_NETWORK
    assert all(cfg.MMT.CLUSTER.NUM_CLUSTERS == 50 for cfg in specs.values())


def test_one_setting_regimes_change_one_key_of_the_demo(tmp_path):
    base = _cfg(_specs(tmp_path, ["mmt"], ["demo"])[0][-1])
    for name, (key, value) in recipes.REFERENCE.items():
        cfg = _cfg(_specs(tmp_path, ["mmt"], [f"reference-{name}"])[0][-1])
        node, leaf = key.rsplit(".", 1)
        section, other = cfg, base
        for part in node.split("."):
            section, other = section[part], other[part]
        assert section[leaf] != other[leaf] and str(section[leaf]) == value
        section[leaf] = other[leaf]
        cfg.OUTPUT_DIR = base.OUTPUT_DIR
        assert cfg == base, name


def test_summary_compares_rows_differing_in_one_thing():
    runs = {"mmt": [68.0, 70.0], "baseline-1net": [55.0, 57.0], "reference/mmt": [60.0, 61.0],
            "reference/baseline-1net": [40.0, 41.0]}
    results = [dict(variant=group, final_mAP=value) for group, values in runs.items() for value in values]
    summary, separated = ablation.summarise(results, list(runs))
    assert summary["mmt"]["mean"] == 69.0 and summary["reference/mmt"]["n"] == 2
    pairs = {frozenset(p) for p in separated}
    assert frozenset(("mmt", "baseline-1net")) in pairs  # same regime
    assert frozenset(("mmt", "reference/mmt")) in pairs  # same variant
    # Regime and variant both differ: not compared, although the ranges are apart.
    assert frozenset(("mmt", "reference/baseline-1net")) not in pairs
    assert frozenset(("baseline-1net", "reference/mmt")) not in pairs


def test_hard_kept_rows_drop_one_soft_loss_and_keep_its_hard_twin_at_the_mmt_weight(tmp_path):
    cfgs = {group: _cfg(args) for _, _, group, _, _, args in _specs(tmp_path, list(recipes.VARIANTS), ["demo"])}
    mmt = cfgs["mmt"]
    assert set(recipes.PAPER_ROWS) < set(recipes.VARIANTS)
    for soft, hard, row in (("SOFT_CE_WEIGHT", "HARD_CE_WEIGHT", "mmt-no-soft-ce"),
                            ("SOFT_TRI_WEIGHT", "HARD_TRI_WEIGHT", "mmt-no-soft-tri")):
        kept, raised = cfgs[row + "-hard-kept"].MMT, cfgs[row].MMT
        assert kept[soft] == raised[soft] == 0.0
        # the paper's row lets the hard weight follow (1 - 0 = 1); the kept row holds MMT's
        assert raised[hard] is None and mmt.MMT[hard] is None
        assert kept[hard] == pytest.approx(1.0 - mmt.MMT[soft])
