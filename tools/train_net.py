#!/usr/bin/env python
"""Train or evaluate with fastreid-mmt: source pre-training (``SourceBaseline``) or MMT.

    python tools/train_net.py --config-file configs/MMT/market.yml
    python tools/train_net.py --config-file configs/MMT/market.yml --eval-only MODEL.WEIGHTS x.pth
"""



import fastreid_mmt  # noqa: F401  (applies the compat shims and registers MMT)
from fastreid.engine import default_argument_parser
from fastreid.utils.checkpoint import Checkpointer

from fastreid_mmt.engine import MMTTrainer, SourceTrainer
from fastreid_mmt.engine.launch import launch
from fastreid_mmt.engine.setup import setup


def main(args):
    cfg = setup(args)
    trainer_cls = MMTTrainer if cfg.MODEL.META_ARCHITECTURE == "MMT" else SourceTrainer
    if args.eval_only:
        model = trainer_cls.build_model(cfg)
        Checkpointer(model).load(cfg.MODEL.WEIGHTS)
        return trainer_cls.test(cfg, model)
    trainer = trainer_cls(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))
