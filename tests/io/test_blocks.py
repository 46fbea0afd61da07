"""Row-block arithmetic: float32 kept for rank methods only, CSR blocks over slices without
copies (their canonical-format flag still checked), float64 otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from sigscore.io.blocks import as_float_block, csr_block, float32_kept
from sigscore.io.sources import MemorySource


@pytest.fixture
def counts() -> sp.csr_matrix:
    rng = np.random.default_rng(2)
    return sp.csr_matrix(rng.poisson(0.5, size=(300, 40)).astype(np.float32))


def test_float32_is_widened_except_where_kept(counts: sp.csr_matrix) -> None:
    dense = counts.toarray()
    for block in (counts, dense):
        out = as_float_block(block)
        assert out.dtype == np.float64
        with float32_kept():
            kept = as_float_block(block)
            assert kept.dtype == np.float32
            with float32_kept(False):
                assert as_float_block(block).dtype == np.float64
        assert as_float_block(block).dtype == np.float64  # the context is left as it was
        np.testing.assert_array_equal(
            sp.csr_matrix(kept).toarray().astype(np.float64), sp.csr_matrix(out).toarray()
        )
    with float32_kept():  # other dtypes still become float64
        assert as_float_block(counts.astype(np.int32)).dtype == np.float64
        assert as_float_block(np.ones((2, 2), dtype=np.float16)).dtype == np.float64


def test_memory_blocks_share_the_matrix_values(counts: sp.csr_matrix) -> None:
    wide = MemorySource(counts.astype(np.float64))
    block = wide[100:120]
    assert np.shares_memory(block.data, wide.X.data)
    assert np.shares_memory(block.indices, wide.X.indices)
    np.testing.assert_array_equal(block.toarray(), counts[100:120].toarray())
    src = MemorySource(counts)
    widened = src[100:120]  # float32 values widened; the column indices still shared
    assert widened.dtype == np.float64 and np.shares_memory(widened.indices, src.X.indices)
    np.testing.assert_array_equal(widened.toarray(), block.toarray())
    with float32_kept():
        kept = src[100:120]
        assert kept.dtype == np.float32 and np.shares_memory(kept.data, src.X.data)


def test_csr_block_checks_its_format_when_asked() -> None:
    data = np.array([1.0, 2.0, 3.0])
    unsorted = csr_block(data, np.array([2, 0, 1], dtype=np.int32), np.array([0, 2, 3]), (2, 3))
    assert not unsorted.has_canonical_format
    np.testing.assert_array_equal(unsorted.toarray(), [[2.0, 0.0, 1.0], [0.0, 3.0, 0.0]])
    ok = csr_block(data, np.array([0, 2, 1], dtype=np.int32), np.array([0, 2, 3]), (2, 3))
    assert ok.has_canonical_format and ok.data is data
