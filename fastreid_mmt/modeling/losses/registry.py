"""``LOSS_REGISTRY``: the loss names this plugin adds to ``MODEL.LOSSES.NAME``, each a term of
the source network's loss dict. fast-reid's ``Baseline`` computes its own names itself and
has no loss registry; MMT's objective is fixed (weighted by the ``MMT.*`` keys) and reads no
loss name."""

from fastreid.utils.registry import Registry

from .softmax_triplet import softmax_triplet_loss

# The config key the registry's names are given in.
LOSS_NAMES_KEY = "MODEL.LOSSES.NAME"
# MODEL.LOSSES.NAME entries that fast-reid's Baseline computes itself.
FASTREID_LOSSES = ("CrossEntropyLoss", "TripletLoss", "CircleLoss", "Cosface")


class LossRegistry(Registry):
    """fast-reid's ``Registry`` that also lists its names (for errors)."""

    def names(self):
        return sorted(self._obj_map)


LOSS_REGISTRY = LossRegistry("MMT_LOSS")
LOSS_REGISTRY.__doc__ = """Maps a ``MODEL.LOSSES.NAME`` entry to a class of loss terms: an instance,
called with fast-reid's head outputs, the labels and ``Baseline.loss_kwargs``, returns the
term(s) as a loss dict."""


@LOSS_REGISTRY.register()
class SoftmaxTripletLoss:
    """``loss_softmax_triplet``: the hard-label softmax-triplet loss of the features (the MMT
    reference's source pre-training), scaled by ``MODEL.LOSSES.TRI.SCALE``."""

    def __call__(self, outputs, gt_labels, loss_kwargs):
        scale = loss_kwargs["tri"]["scale"]
        return {"loss_softmax_triplet": softmax_triplet_loss(outputs["features"], gt_labels) * scale}


def build_added_losses(names, key=LOSS_NAMES_KEY):
    """The loss terms of ``names`` that this plugin adds, resolved through ``LOSS_REGISTRY``
    (names fast-reid's ``Baseline`` computes itself are left to it).

    Args:
        names (Sequence[str]): the ``MODEL.LOSSES.NAME`` entries.
        key (str): the config key that gave them (for messages).

    Raises:
        ValueError: a name neither fast-reid nor the registry knows, naming ``key``, the
            unknown names and every known one (fast-reid's ``Baseline`` would ignore it).
    """
    known = set(LOSS_REGISTRY.names())
    unknown = [name for name in names if name not in FASTREID_LOSSES and name not in known]
    if unknown:
        raise ValueError(f"{key}: unknown loss(es) {unknown}; known: {list(FASTREID_LOSSES) + LOSS_REGISTRY.names()}")
    return [LOSS_REGISTRY.get(name)() for name in names if name not in FASTREID_LOSSES]
