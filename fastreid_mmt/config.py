"""Config keys of fastreid-mmt: one ``add_mmt_config(cfg)``, one comment per key.

Call it on fast-reid's ``get_cfg()`` before ``merge_from_file``: fast-reid raises KeyError
on any key it does not know. Paper defaults are those of Ge et al., ICLR 2020 and its
reference code (see ``README.md``).
"""

from fastreid.config import CfgNode as CN


def add_mmt_config(cfg):
    """Add the ``MMT`` and ``PRETRAIN`` nodes and the ``SEED`` key to a fast-reid config.

    Args:
        cfg (CfgNode): a config from ``fastreid.config.get_cfg()``; modified in place.

    Returns:
        CfgNode: the same ``cfg``, for chaining.
    """
    _C = cfg

    # Seed of python, numpy, torch and data-loader workers; -1 draws a random seed.
    _C.SEED = -1

    _C.MMT = CN()
    # Meta-architecture of each of the four networks (any registered fast-reid
    # meta-architecture with `backbone` and `heads`). Paper: a ResNet-50 "Baseline".
    _C.MMT.BASE_ARCH = "Baseline"
    # Two checkpoints of source pre-training (seeds 1 and 2): net1/mean_net1 start from the
    # first, net2/mean_net2 from the second. Their classifiers are dropped. Required.
    _C.MMT.INIT_WEIGHTS = []
    # Weight of the soft cross-entropy (1 - it weights the hard one). Paper: 0.5.
    _C.MMT.SOFT_CE_WEIGHT = 0.5
    # Weight of the soft softmax-triplet (1 - it weights the hard one). Paper: 0.8.
    _C.MMT.SOFT_TRI_WEIGHT = 0.8
    # Weights of the hard cross-entropy and the hard softmax-triplet. None: 1 - the soft one's
    # weight, as in the paper. A number holds the hard term at that weight whatever the soft
    # one's: for ablations that drop a soft loss without raising its hard twin
    # (benchmarks/ablation.py's *-hard-kept rows). Paper: None (0.5 and 0.2).
    _C.MMT.HARD_CE_WEIGHT = None
    _C.MMT.HARD_TRI_WEIGHT = None
    # Label smoothing of the hard cross-entropy on pseudo labels. Paper: 0.1.
    _C.MMT.CE_EPSILON = 0.1
    # Ceiling of the mean-net momentum a = min(1 - 1/(step+1), EMA_ALPHA). Paper: 0.999.
    # 0 turns the mean nets into copies of the students (the "no mean net" ablation).
    _C.MMT.EMA_ALPHA = 0.999
    # The paper's "baseline" ablation: net1 alone trains on hard pseudo labels clustered from
    # its own features (needs SOFT_CE_WEIGHT 0, SOFT_TRI_WEIGHT 0, TEST_NET mean_net1; with
    # EMA_ALPHA 0 its mean net is the network itself). Paper (MMT): False.
    _C.MMT.SINGLE_NETWORK = False
    # Forward the mean nets in train mode (batch BN statistics, running stats updated by their
    # own forwards), as the reference does. False: eval-mode teachers. Paper: True.
    _C.MMT.MEAN_NET_TRAIN_MODE = True
    # Images per batch-norm batch in training: each process forwards its batch in chunks of
    # this many images (losses still see the whole batch), so BN statistics do not depend on
    # the number of GPUs. Paper: 16 (64 images on 4 GPUs). 0: the whole per-process batch.
    _C.MMT.IMS_PER_BN = 16
    # Store the networks and inputs channels-last (faster convolutions with AMP on recent
    # GPUs; see BENCHMARKS.md). Not in the paper. Default: False.
    _C.MMT.CHANNELS_LAST = False
    # Training forwards of both stages (source pre-training and MMT) under bfloat16 autocast on
    # a CPU device: about twice as fast on CPUs with AVX512-BF16 or AMX (BENCHMARKS.md); weights,
    # gradients, BN statistics and losses stay float32; the clustering features are extracted in
    # bfloat16 too (as SOLVER.AMP.ENABLED does on a GPU), evaluation in float32. Refused
    # on CUDA (use SOLVER.AMP.ENABLED there). Not in the paper. Default: False.
    _C.MMT.CPU_BF16 = False
    # Periodic checkpoints (model_XXXX.pth) kept, newest first; 0 keeps all. One MMT checkpoint
    # (4 networks + Adam moments) is ~0.8 GB with ResNet-50. model_final is always kept.
    # Not a paper setting. Default: 3.
    _C.MMT.KEEP_CHECKPOINTS = 3
    # Iterations per epoch (one clustering per epoch). Paper: 400.
    _C.MMT.ITERS_PER_EPOCH = 400
    # Reset Adam's moments at every epoch (the reference rebuilds its optimizer every epoch;
    # this is that behaviour made explicit). Paper code: True.
    _C.MMT.RESET_OPTIMIZER_EACH_EPOCH = True
    # Network(s) whose BN feature is evaluated and exported: "mean_net1", "mean_net2" or
    # "mean" (average of both mean nets' features). The paper reports the better mean net.
    _C.MMT.TEST_NET = "mean_net1"
    # Training images (the target's, a source folder's, the BN adaptation's) are decoded once at
    # start, on the main process; an unreadable or corrupt file stops the run naming it (False),
    # or is left out of training with a warning naming it (True).
    _C.MMT.SKIP_UNREADABLE_IMAGES = False
    # A folder of unlabelled crops as the stage-II target instead of DATASETS.NAMES: every
    # .jpg/.jpeg/.png/.bmp under it (any case, any depth, any file name), sorted. "" = off
    # (DATASETS.NAMES). Not in the paper (benchmark targets only).
    _C.MMT.TARGET_FOLDER = ""
    # Camera id of each image of MMT.TARGET_FOLDER, PRETRAIN.TARGET_BN_FOLDER (and MMT.TEST_FOLDER
    # unless MMT.TEST_CAMERAS is set):
    # "none" (one camera), "subfolder" (the first folder level names the camera; under an
    # identity folder for labelled folders), or a regular expression with one group searched in
    # the path relative to the (identity) folder, e.g. "c(\\d+)". Default: "none".
    _C.MMT.TARGET_CAMERAS = "none"
    # A labelled test folder of the target, <folder>/query/<identity>/<image> and
    # <folder>/gallery/<identity>/<image>, evaluated (as "TestFolder") besides DATASETS.TESTS in
    # stage I, stage II and --eval-only. "" = off. Not in the paper.
    _C.MMT.TEST_FOLDER = ""
    # Camera rule of MMT.TEST_FOLDER when its file names give cameras differently from the
    # training folders' (values as MMT.TARGET_CAMERAS). "" = MMT.TARGET_CAMERAS. Not in the paper.
    _C.MMT.TEST_CAMERAS = ""

    _C.MMT.CLUSTER = CN()
    # "kmeans" (the paper) or "dbscan" (reference-code variant on the Jaccard distance).
    # "ground_truth" is a diagnostic, not adaptation: the target's true ids replace the
    # clustering (an upper bound on what perfect pseudo labels give in the same schedule).
    _C.MMT.CLUSTER.METHOD = "kmeans"
    # k-means clusters. Paper: 500 (Market target), 700 (Duke), 1500 (MSMT17). 0: estimated
    # from the features at the first clustering and kept for the run (silhouette over a grid
    # of K, the AUTO_K_* keys), for a target whose number of identities is unknown; not in the
    # paper.
    _C.MMT.CLUSTER.NUM_CLUSTERS = 500
    # Automatic K: the smallest and largest mean images per cluster the grid spans.
    _C.MMT.CLUSTER.AUTO_K_SIZES = [2, 60]
    # Automatic K: values of K tried (spaced geometrically).
    _C.MMT.CLUSTER.AUTO_K_STEPS = 16
    # Automatic K: images the silhouette scores (a seeded sample, each against every image;
    # all when fewer).
    _C.MMT.CLUSTER.AUTO_K_SAMPLE = 3000
    # Automatic K: the smallest K whose silhouette (averaged with its grid neighbours) reaches
    # this fraction of the best is kept.
    _C.MMT.CLUSTER.AUTO_K_TOLERANCE = 0.95
    # Automatic K: when the features' best silhouette over the grid (smoothed) is below this,
    # they show too little cluster structure for k-means, which must put every image in a
    # cluster, and the run clusters with the DBSCAN rule instead (the EPS*, MIN_SAMPLES and
    # Jaccard keys below), which trains on the images it groups only, provided its first
    # clustering finds enough clusters to fill a batch (else k-means with the estimated K, and
    # a warning). Chosen once, at the first clustering. configs/MMT/folder.yml: 0.17, measured on
    # synthetic targets (BENCHMARKS.md "Unknown number of identities"): 0.11-0.15 where k-means
    # ended behind the DBSCAN rule (many crops, four per person), 0.21-0.29 elsewhere.
    # 0 (default): always k-means. Not in the paper.
    _C.MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE = 0.0
    # Lloyd iterations of k-means. Reference (scikit-learn default): 300; faiss converges in
    # far fewer.
    _C.MMT.CLUSTER.KMEANS_ITERS = 50
    # Backend of k-NN and k-means: "auto" (faiss when importable, torch otherwise), "faiss",
    # or "torch". GPU when the features are on CUDA.
    _C.MMT.CLUSTER.BACKEND = "auto"
    # DBSCAN radius on the Jaccard distance; 0 = chosen once at the first clustering as the
    # mean of the smallest EPS_RHO fraction of pairwise distances. Reference: 0.6 or auto.
    _C.MMT.CLUSTER.EPS = 0.0
    # Fraction of smallest pairwise distances that sets the automatic eps. Reference: 1.6e-3.
    _C.MMT.CLUSTER.EPS_RHO = 1.6e-3
    # DBSCAN min_samples (a point counts itself). Reference: 4.
    _C.MMT.CLUSTER.MIN_SAMPLES = 4
    # Jaccard distance of DBSCAN: "mmt" (MMT's own mmt/utils/rerank.py compute_jaccard_dist,
    # what its DBSCAN script runs: k1 + 1 nearest searched, squared distances divided by each
    # point's largest before the exp weights) or "spcl" (fast-reid's / SpCL's
    # compute_jaccard_distance: k1 nearest, raw squared distances). Reference: "mmt".
    _C.MMT.CLUSTER.JACCARD = "mmt"
    # k-reciprocal neighbourhood size of the Jaccard distance. Reference: 20 (MMT's
    # compute_jaccard_dist); fast-reid / SpCL use 30.
    _C.MMT.CLUSTER.K1 = 20
    # Query-expansion neighbourhood of the Jaccard distance. Reference: 6.
    _C.MMT.CLUSTER.K2 = 6
    # Jaccard pairs at distance >= this are not stored (memory O(N k) on any features); the
    # eps rule stays exact (the pairs it needs beyond the cutoff are kept too), a fixed EPS
    # must be below it, an automatic eps that is not makes the distance be recomputed above
    # it. 1 keeps every pair below one, as the reference's dense matrix. Ours (the reference
    # stores the dense N x N matrix).
    _C.MMT.CLUSTER.JACCARD_CUTOFF = 0.9
    # Where to cluster: where the model lives ("auto"), "cpu", or "cuda" (e.g. a CPU-side
    # model debug run with GPU clustering); "cuda" without CUDA warns and uses the cpu.
    _C.MMT.CLUSTER.DEVICE = "auto"

    _C.PRETRAIN = CN()
    # Datasets whose training images are forwarded (no loss, no labels) at every source
    # pre-training step so BN statistics move toward the target. Empty: off. Reference: target.
    _C.PRETRAIN.TARGET_BN_DATASETS = []
    # A folder of unlabelled target crops used like PRETRAIN.TARGET_BN_DATASETS (its cameras by
    # MMT.TARGET_CAMERAS). "" = off. Not in the paper.
    _C.PRETRAIN.TARGET_BN_FOLDER = ""
    # A labelled source folder, <folder>/<identity>/<image>, as the source instead of
    # DATASETS.NAMES. "" = off (DATASETS.NAMES). Not in the paper.
    _C.PRETRAIN.SOURCE_FOLDER = ""
    # Camera rule of PRETRAIN.SOURCE_FOLDER (as MMT.TARGET_CAMERAS, relative to each identity
    # folder); the camera-aware sampler picks companions from other cameras. Default: "none".
    _C.PRETRAIN.SOURCE_CAMERAS = "none"
    # Images per batch-norm batch in source pre-training (see MMT.IMS_PER_BN). Reference: 16.
    _C.PRETRAIN.IMS_PER_BN = 16
    # Iterations per pre-training epoch, so that SOLVER.MAX_EPOCH, SOLVER.STEPS and
    # PRETRAIN.WARMUP_EPOCHS count the reference's epochs whatever the source size. 0: one pass
    # over the source images (fast-reid's epoch). Reference: 100 (scripts/pretrain.sh --iters).
    _C.PRETRAIN.ITERS_PER_EPOCH = 100
    # Epochs of linear lr warm-up from SOLVER.WARMUP_FACTOR to 1 in pre-training (per epoch, as
    # the reference's WarmupMultiStepLR; fast-reid's SOLVER.WARMUP_ITERS must stay 0).
    # Reference: 10 (from 0.01).
    _C.PRETRAIN.WARMUP_EPOCHS = 10
    return cfg
