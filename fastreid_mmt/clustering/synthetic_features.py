"""Clustered random features that behave like re-ID embeddings (for tests and benchmarks)."""

import torch


def clustered_features(num, dim, num_ids=None, per_id=8, ids_per_group=8, id_scale=0.7, noise=1.2, seed=0):
    """L2-normalised features of identities whose centres gather in groups.

    Neighbours beyond a sample's own identity come from similar identities, as with real
    re-ID features, so k-reciprocal neighbourhoods stay local.

    Args:
        num (int): number of samples N.
        dim (int): feature dimension C.
        num_ids (int): identities (default ``num // per_id``).
        per_id (int): mean samples per identity when ``num_ids`` is not given.
        ids_per_group (int): identities per group of similar identities.
        id_scale (float): spread of identity centres around their group centre.
        noise (float): spread of samples around their identity centre.
        seed (int): generator seed.

    Returns:
        tuple: ``features`` ``[N, C]`` float32 (CPU), ``labels`` ``[N]`` numpy int64 identities.
    """
    gen = torch.Generator().manual_seed(seed)
    num_ids = num_ids or max(1, num // per_id)
    groups = torch.randn(max(1, num_ids // ids_per_group), dim, generator=gen)
    group_of = torch.randint(0, groups.shape[0], (num_ids,), generator=gen)
    ids = groups[group_of] + id_scale * torch.randn(num_ids, dim, generator=gen)
    labels = torch.randint(0, num_ids, (num,), generator=gen)
    feats = ids[labels] + noise * torch.randn(num, dim, generator=gen)
    return torch.nn.functional.normalize(feats, dim=1), labels.numpy()
