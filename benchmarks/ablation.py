#!/usr/bin/env python
"""The paper's ablations of MMT, with seeds, on the demo's synthetic data.

    python benchmarks/ablation.py --pairs output/demo --seeds 1 2 3 --output output/ablation
    python benchmarks/ablation.py --pairs output/demo /path/to/second/demo --variants baseline-1net mmt

Each ``--pairs`` folder holds a stage-I pair (``pretrain-seed1/model_final.pth``,
``pretrain-seed2/model_final.pth`` and the synthetic ``data/``), as ``tools/demo.py`` writes it.
From each pair, every variant runs ``configs/Demo/mmt.yml`` once per stage-II seed (``SEED``:
sampling, augmentation, clustering) and regime, ``--jobs`` at a time with ``cores / jobs`` threads
each. A regime puts back the reference's stage-II setting where the demo departs from it
(``docs/FIDELITY.md`` "Demo-only departures"): all of them (``reference``) or one
(``reference-lr``, ``-erasing``, ``-momentum``); ``demo`` changes nothing;
``momentum-0.96-adam-kept`` keeps Adam's moments across epochs (the reference resets them).
On the command line a run gets the regime's keys, then ``--opts``, then the variant's, so a
variant's own keys win (the one-network baseline keeps momentum 0 in every regime).
A run whose ``model_final.pth`` exists is not rerun (an interrupted ablation continues);
``--summarise-only`` runs nothing and summarises the finished runs.

Prints and writes (``<output>/ablation.md``, ``ablation.json``) the final target mAP of each
run, each variant's mean, standard deviation and range over its runs, and which pairs of
variants differ by more than the spread: their ranges over the seeds do not overlap.
Synthetic data only: never a Market-1501 / DukeMTMC-reID result.
"""

import argparse
import json
import os
import sys

from fastreid_mmt_lab.ablation import group_name, markdown, run_result, run_specs, summarise
from fastreid_mmt_lab.jobs import run_env, run_group
from fastreid_mmt_lab.recipes import PAPER_ROWS, REGIMES, VARIANTS


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", required=True, help="demo output folders holding a stage-I pair")
    parser.add_argument("--variants", nargs="+", default=PAPER_ROWS, choices=list(VARIANTS),
                        help="rows to run (default: the paper's six)")
    parser.add_argument("--regimes", nargs="+", default=["demo"], choices=list(REGIMES),
                        help="stage-II settings: the demo's, the reference's, or the demo with one reference setting")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--output", default="output/ablation")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--opts", default="", help="extra 'KEY VALUE ...' for every run")
    parser.add_argument("--summarise-only", action="store_true",
                        help="run nothing: summarise the finished runs (missing ones are listed, not run)")
    args = parser.parse_args(argv)
    output = os.path.abspath(args.output)
    os.makedirs(os.path.join(output, "logs"), exist_ok=True)
    specs = run_specs([os.path.abspath(p) for p in args.pairs], args.variants, args.seeds, output,
                      args.opts.split(), args.regimes)
    results = []
    for pair in sorted({s[1] for s in specs}):
        env = run_env(os.path.join(pair, "data"), args.jobs)
        todo = [(name, run_args, os.path.join(output, "logs", name + ".log"))
                for name, p, _, _, run_dir, run_args in specs
                if p == pair and not os.path.isfile(os.path.join(run_dir, "model_final.pth"))]
        if args.summarise_only:
            for name, _, _ in todo:
                print(f"  not finished, left out: {name}")
        else:
            run_group(todo, max(1, args.jobs), env)
    for name, pair, group, seed, run_dir, _ in specs:
        if not os.path.isfile(os.path.join(run_dir, "model_final.pth")):
            continue
        results.append(dict(name=name, pair=args.pairs.index(next(p for p in args.pairs
                                                                   if os.path.abspath(p) == pair)) + 1,
                            variant=group, seed=seed, **run_result(run_dir)))
    groups = [group_name(regime, variant) for regime in args.regimes for variant in args.variants]
    summary, separated = summarise(results, groups)
    table = markdown(results, summary, separated)
    print(table)
    with open(os.path.join(output, "ablation.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(output, "ablation.json"), "w") as f:
        json.dump({"runs": results, "summary": summary, "separated": separated, "pairs": args.pairs,
                   "note": "synthetic data (tools/demo.py), not Market-1501 / DukeMTMC-reID"}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
