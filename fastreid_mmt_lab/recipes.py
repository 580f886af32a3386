"""The demo's recipe and the ablation's variants: config files, data sizes and option lists.

Every list here is ``KEY VALUE ...`` config overrides, appended to a ``train_net.py`` command
line after ``--config-file``.
"""

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRETRAIN_CFG = os.path.join(REPO_ROOT, "configs", "Demo", "pretrain.yml")
MMT_CFG = os.path.join(REPO_ROOT, "configs", "Demo", "mmt.yml")
# Stage I runs twice; stage II's two networks start from these seeds' checkpoints.
PRETRAIN_SEEDS = (1, 2)
# The demo's target: the synthetic Duke-layout data set (fast-reid's DukeMTMC class).
DEMO_TARGET = "DukeMTMC"

# Data of the full demo (README "The demo" says why these sizes).
DATA = dict(num_ids=100, images_per_id=10, num_query_ids=50, height=128, width=64)
# --quick: a smoke run of the whole pipeline in about a minute (numbers are meaningless); the
# test gallery must hold at least 50 images (fast-reid ranks up to 50).
QUICK_DATA = dict(num_ids=16, images_per_id=8, num_query_ids=10, height=32, width=16)
# Tiny inputs in float32: at 32x16, bfloat16 autocast gives NaN losses from the second step on
# an Intel Xeon with AMX (the full demo's 128x64 trains there). The tests' tiny runs use these
# options too.
QUICK_COMMON = ["INPUT.SIZE_TRAIN", "[32, 16]", "INPUT.SIZE_TEST", "[32, 16]",
                "SOLVER.IMS_PER_BATCH", "16", "TEST.IMS_PER_BATCH", "64", "MMT.CPU_BF16", "False"]
QUICK_PRETRAIN = ["SOLVER.MAX_EPOCH", "1", "PRETRAIN.ITERS_PER_EPOCH", "4", "PRETRAIN.WARMUP_EPOCHS", "0",
                  "SOLVER.STEPS", "[100]", "SOLVER.CHECKPOINT_PERIOD", "1", "TEST.EVAL_PERIOD", "1"]
QUICK_MMT = ["SOLVER.MAX_EPOCH", "2", "MMT.ITERS_PER_EPOCH", "3", "MMT.CLUSTER.NUM_CLUSTERS", "8",
             "TEST.EVAL_PERIOD", "1"]

# Control: the MMT run with learning rate 0 for one epoch. No weight changes; only the mean
# nets' train-mode forwards re-estimate BN statistics on target batches (AdaBN). It separates
# what BN adaptation alone gives from what training on pseudo labels adds.
BN_ONLY_OPTS = ["SOLVER.BASE_LR", "0.0", "SOLVER.MAX_EPOCH", "1", "TEST.EVAL_PERIOD", "1"]

HARD_ONLY = ["MMT.SOFT_CE_WEIGHT", "0.0", "MMT.SOFT_TRI_WEIGHT", "0.0"]
# The rows of the paper's ablation table that the plugin can run, by name.
VARIANTS = {
    # One network, hard pseudo labels from its own features, no mean net: the paper's "baseline".
    "baseline-1net": ["MMT.SINGLE_NETWORK", "True", *HARD_ONLY, "MMT.EMA_ALPHA", "0.0"],
    # Two networks on hard labels clustered from their averaged features.
    "baseline-2net": [*HARD_ONLY, "MMT.EMA_ALPHA", "0.0"],
    "mmt-no-soft-ce": ["MMT.SOFT_CE_WEIGHT", "0.0"],
    "mmt-no-soft-tri": ["MMT.SOFT_TRI_WEIGHT", "0.0"],
    # Momentum 0: each mean net is its student, so each student is taught by the other student.
    "mmt-student-teacher": ["MMT.EMA_ALPHA", "0.0"],
    "mmt": [],
    # The two soft-loss rows again, with the hard twin held at its weight in MMT (1 - the
    # paper's soft weight) instead of raised to 1: what dropping the soft loss does alone.
    "mmt-no-soft-ce-hard-kept": ["MMT.SOFT_CE_WEIGHT", "0.0", "MMT.HARD_CE_WEIGHT", "0.5"],
    "mmt-no-soft-tri-hard-kept": ["MMT.SOFT_TRI_WEIGHT", "0.0", "MMT.HARD_TRI_WEIGHT", "0.2"],
}
BASELINE = "baseline-1net"
# The paper's six rows (its ablation table): what the ablation runs unless told otherwise.
PAPER_ROWS = [BASELINE, "baseline-2net", "mmt-no-soft-ce", "mmt-no-soft-tri", "mmt-student-teacher", "mmt"]

# The reference's stage-II settings where configs/Demo/mmt.yml departs from them.
REFERENCE = {
    "lr": ["SOLVER.BASE_LR", "0.00035"],  # demo 1e-4
    "erasing": ["INPUT.REA.ENABLED", "True"],  # demo off
    "momentum": ["MMT.EMA_ALPHA", "0.999"],  # demo 0.96
}
# The demo's momentum with Adam's moments kept across epochs (the reference resets them).
MOMENTUM_096_ADAM_KEPT = ["MMT.EMA_ALPHA", "0.96", "MMT.RESET_OPTIMIZER_EACH_EPOCH", "False"]
REGIMES = {"demo": [], "reference": [opt for opts in REFERENCE.values() for opt in opts],
           **{f"reference-{name}": opts for name, opts in REFERENCE.items()},
           "momentum-0.96-adam-kept": MOMENTUM_096_ADAM_KEPT}
