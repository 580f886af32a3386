"""The mean-net (temporal average) update of MMT."""

import torch


def ema_momentum(step, alpha):
    """Momentum of the mean net at optimiser step ``step`` (0-based).

    ``a = min(1 - 1 / (step + 1), alpha)``: a warm-up in which step 0 copies the student.
    """
    return min(1.0 - 1.0 / (step + 1), alpha)


@torch.no_grad()
def ema_update(mean_net, net, momentum):
    """``theta_mean = momentum * theta_mean + (1 - momentum) * theta``, parameters only.

    BN running statistics (buffers) are not touched: the mean nets' own forward passes
    update them. Parameters are matched by name, so both networks must share an architecture
    (the classifier included: both are re-initialised together every epoch).

    Args:
        mean_net (nn.Module): the temporally averaged network, updated in place.
        net (nn.Module): the student.
        momentum (float): in ``[0, 1]``; 1 freezes the mean net, 0 copies the student.
    """
    student = dict(net.named_parameters())
    for name, mean_param in mean_net.named_parameters():
        mean_param.mul_(momentum).add_(student[name].detach(), alpha=1.0 - momentum)
