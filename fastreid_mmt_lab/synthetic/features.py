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


def hub_features(num, dim, per_id=8, noise=1.5, seed=0):
    """L2-normalised features whose k-NN graphs have hubs: the hard case of the Jaccard distance.

    Identity centres are independent standard normal vectors and every sample adds noise
    larger than the distance between centres (``noise * sqrt(dim)`` against ``sqrt(2 * dim)``),
    so neighbourhoods overlap widely: a few points sit in many k-NN lists and the
    query-expanded Jaccard vectors share columns with thousands of rows.

    Args:
        num (int): number of samples N.
        dim (int): feature dimension C.
        per_id (int): mean samples per identity.
        noise (float): standard deviation of the per-sample noise (centres have 1).
        seed (int): generator seed.

    Returns:
        tuple: ``features`` ``[N, C]`` float32 (CPU), ``labels`` ``[N]`` numpy int64 identities.
    """
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randn(max(1, num // per_id), dim, generator=gen)
    labels = torch.randint(0, ids.shape[0], (num,), generator=gen)
    feats = ids[labels] + noise * torch.randn(num, dim, generator=gen)
    return torch.nn.functional.normalize(feats, dim=1), labels.numpy()
