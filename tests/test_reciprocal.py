"""Steps 2-5 of the Jaccard distance: the sampled product does not depend on its column tiles."""

import numpy as np
import scipy.sparse as sp
import torch

from fastreid_mmt.clustering import reciprocal


def test_tiled_dots_equal_one_product_bit_for_bit(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(300, 24, generator=gen)
    pattern = sp.random(300, 300, density=0.05, format="csr", random_state=1)
    pattern.sort_indices()
    whole = reciprocal.pattern_dots(feats, pattern)
    monkeypatch.setattr(reciprocal, "TILE_BYTES", 37 * 24 * 4)  # 37 columns a tile, the last one short
    tiled = reciprocal.pattern_dots(feats, pattern)
    assert torch.equal(whole, tiled)
    rows = np.repeat(np.arange(300), np.diff(pattern.indptr))
    expected = (feats[torch.from_numpy(rows)] * feats[torch.from_numpy(pattern.indices.astype(np.int64))]).sum(dim=1)
    torch.testing.assert_close(tiled, expected, rtol=1e-5, atol=1e-5)
