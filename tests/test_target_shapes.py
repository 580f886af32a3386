"""Synthetic targets of a given shape, in both layouts, read by fast-reid's own data-set classes."""

from collections import Counter

import pytest

import fastreid_mmt  # noqa: F401  (compat shims before fastreid)
from fastreid.data.datasets import DATASET_REGISTRY

from fastreid_mmt_lab.target_shapes import FASTREID_CLASS, parse_shape, write_target


def test_shape_text_is_parsed_or_refused_by_name():
    assert parse_shape("30x4").name == "30x4"
    uneven = parse_shape("100x2-10")
    assert (uneven.num_ids, uneven.low, uneven.high, uneven.name) == (100, 2, 10, "100x2-10")
    for bad in ("30", "30x1", "0x4", "10x5-3", "x4"):
        with pytest.raises(ValueError, match=repr(bad)):
            parse_shape(bad)


@pytest.mark.parametrize("domain", sorted(FASTREID_CLASS))
def test_uneven_target_in_each_layout_has_the_shape(tmp_path, domain):
    shape = parse_shape("6x2-5")
    reader = DATASET_REGISTRY.get(FASTREID_CLASS[domain])
    write_target(str(tmp_path), shape, 32, 16, domain=domain)
    train = reader(root=str(tmp_path)).train
    per_id = Counter(item[1] for item in train)
    assert len(per_id) == shape.num_ids
    assert all(shape.low <= n <= shape.high for n in per_id.values())
    assert len(set(per_id.values())) > 1  # thinned unevenly, not cut to one size
    before = sorted(item[0] for item in train)
    write_target(str(tmp_path), shape, 32, 16, domain=domain)  # complete: not redrawn
    assert sorted(item[0] for item in reader(root=str(tmp_path)).train) == before
