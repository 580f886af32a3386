"""The laboratory beside the product: what the demo, the tests and the benchmarks share.

* :mod:`fastreid_mmt_lab.synthetic`: procedurally drawn person crops in the real Market-1501 /
  DukeMTMC-reID folder layouts (and clustered feature sets for the clustering benchmarks);
* :mod:`fastreid_mmt_lab.recipes`: the demo's data sizes and option lists, the ablation's
  variants and stage-II regimes;
* :mod:`fastreid_mmt_lab.jobs`: ``tools/train_net.py`` runs as subprocesses, a few at a time;
* :mod:`fastreid_mmt_lab.jaccard_reference`: the dense reference Jaccard distance;
* :mod:`fastreid_mmt_lab.training_bench`: timed MMT training from random source checkpoints.

The product (:mod:`fastreid_mmt`) never imports from here.
"""
