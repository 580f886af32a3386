#!/usr/bin/env python
"""Export one mean net of an MMT checkpoint as a plain fast-reid ``Baseline`` checkpoint and
YAML, loadable by fast-reid without this plugin; and/or the evaluated network as ONNX.

    python tools/export_model.py --config-file configs/MMT/market.yml \
        --weights logs/mmt/duke2market/model_final.pth --output exported/ [--net mean_net2]
    python tools/export_model.py --config-file configs/MMT/market.yml \
        --weights logs/mmt/duke2market/model_final.pth --onnx exported/mmt.onnx [--net mean]

The ONNX graph (install extra ``onnx``) takes ``images`` [batch, 3, H, W] float32 0-255 RGB
(fast-reid's test transforms, H x W = INPUT.SIZE_TEST), normalises them with MODEL.PIXEL_MEAN /
PIXEL_STD inside, and returns the BN ``features`` [batch, C] of MMT.TEST_NET (``mean``: the
average of both mean nets' L2-normalised features); the batch axis is dynamic.
"""

import argparse
import os
import sys

import torch

import fastreid_mmt  # noqa: F401
from fastreid_mmt.engine.setup import build_cfg
from fastreid_mmt.modeling.feature_network import FeatureNetwork
from fastreid_mmt.modeling.meta_arch.mmt import TEST_NETS
from fastreid_mmt.modeling.weights_io import CLASSIFIER_KEY, check_state_matches, model_on_meta, read_state_dict
from fastreid_mmt.modeling.onnx_export import check_onnx_available, export_onnx
from fastreid_mmt.retrieval.weights import ARCH_HINT, MMT_ARCH, load_feature_model, prefixed_state

# Nodes this plugin adds to fast-reid's config; plain fast-reid rejects unknown keys.
PLUGIN_KEYS = ("MMT", "PRETRAIN", "SEED")
EXPORTABLE = ("mean_net1", "mean_net2")


def export(cfg, weights, output, net_name):
    """Write ``output/model_final.pth`` and ``output/config.yaml``: the network ``net_name`` of the
    MMT checkpoint ``weights``, classifier included, as a plain fast-reid ``MMT.BASE_ARCH``.
    Returns their paths.

    Raises:
        ValueError: ``net_name`` is not one network, ``cfg`` is no MMT config, or the checkpoint
            is no MMT checkpoint or does not fit ``cfg`` (its keys named).
        FileNotFoundError: ``weights`` does not exist.
    """
    if net_name not in EXPORTABLE:
        raise ValueError(f"--net must be one of {EXPORTABLE} (one network per exported model), got {net_name!r}")
    if cfg.MODEL.META_ARCHITECTURE != MMT_ARCH:
        raise ValueError(f"--config-file: MODEL.META_ARCHITECTURE is {cfg.MODEL.META_ARCHITECTURE!r}; give the MMT "
                         f"config the checkpoint was trained with")
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"--weights: checkpoint not found: {weights}")
    net_state = prefixed_state(read_state_dict(weights, "--weights"), net_name)
    if not net_state:
        raise ValueError(f"--weights: {weights} is not an MMT checkpoint (no '{net_name}.*' weights); a "
                         f"single-network checkpoint is already a plain fast-reid one")
    check_state_matches(weights, getattr(model_on_meta(cfg), net_name), net_state, "--weights", ARCH_HINT)
    plain = cfg.clone()
    plain.defrost()
    plain.MODEL.META_ARCHITECTURE = cfg.MMT.BASE_ARCH
    plain.MODEL.HEADS.NUM_CLASSES = int(net_state[CLASSIFIER_KEY].shape[0])
    plain.MODEL.WEIGHTS = os.path.abspath(os.path.join(output, "model_final.pth"))
    plain.MODEL.BACKBONE.PRETRAIN = False
    for key in PLUGIN_KEYS:
        plain.pop(key, None)
    os.makedirs(output, exist_ok=True)
    torch.save({"model": net_state}, plain.MODEL.WEIGHTS)
    cfg_path = os.path.join(output, "config.yaml")
    with open(cfg_path, "w") as f:
        f.write(plain.dump())
    return plain.MODEL.WEIGHTS, cfg_path


def export_onnx_file(cfg, weights, path, net_name):
    """Write the evaluated network ``net_name`` (one of ``TEST_NETS``; ``mean`` averages both
    mean nets) of the checkpoint ``weights`` to the ONNX file ``path``, exported on the CPU.
    A single-network checkpoint (e.g. this tool's ``model_final.pth``) exports that network.
    Returns ``path``."""
    if net_name not in TEST_NETS:
        raise ValueError(f"--net must be one of {TEST_NETS} for --onnx, got {net_name!r}")
    check_onnx_available()
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MMT.TEST_NET = net_name
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE.PRETRAIN = False  # every weight comes from the checkpoint
    network = FeatureNetwork.from_model(load_feature_model(cfg, weights, "--weights"))
    height, width = cfg.INPUT.SIZE_TEST
    return export_onnx(network, path, height, width)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--weights", required=True, help="an MMT checkpoint")
    parser.add_argument("--output", default=None, help="folder for model_final.pth and config.yaml")
    parser.add_argument("--onnx", default=None, metavar="FILE", help="write the evaluated network as ONNX")
    parser.add_argument("--net", default=None,
                        help="mean_net1 or mean_net2, or for --onnx also mean (default: MMT.TEST_NET; for --output "
                             "mean_net1 where that is mean)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args(argv)
    if not args.output and not args.onnx:
        parser.error("give --output (a plain fast-reid checkpoint) and/or --onnx FILE")
    try:
        cfg = build_cfg(args.config_file, args.opts)
        net_name = args.net or cfg.MMT.TEST_NET
        if args.output:
            one_net = args.net or (net_name if net_name in EXPORTABLE else EXPORTABLE[0])
            for path in export(cfg, args.weights, args.output, one_net):
                print("wrote", path)
        if args.onnx:
            print("wrote", export_onnx_file(cfg, args.weights, args.onnx, net_name))
    except (ValueError, KeyError, OSError, ImportError) as err:  # bad input: one line naming it, no traceback
        sys.exit(f"export_model.py: error: {err}")


if __name__ == "__main__":
    sys.exit(main())
