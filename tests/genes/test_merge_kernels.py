"""Duplicate-column merging kernel (sigscore.genes.merge_kernels) against a dense brute force."""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from sigscore.genes.merge_kernels import MAX, MEAN, SUM, MergePlan, UnmergedRows, merge_columns


def _brute(dense: np.ndarray, codes: np.ndarray, n_out: int, op: int) -> np.ndarray:
    out = np.zeros((dense.shape[0], n_out))
    for g in range(n_out):
        block = dense[:, codes == g]
        out[:, g] = {MAX: block.max, SUM: block.sum, MEAN: block.mean}[op](axis=1)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [MAX, SUM, MEAN])
def test_merge_matches_brute_force(dtype, op):
    rng = np.random.default_rng(int(op) + 7)
    for _ in range(25):
        n, m = int(rng.integers(1, 20)), int(rng.integers(2, 30))
        # negatives and implicit zeros: a group's max over a row with a missing (zero) member
        # and only negative stored values is 0, as in the dense matrix
        dense = rng.choice([-2.0, -0.5, 0.0, 0.0, 0.0, 1.0, 3.0], size=(n, m)).astype(dtype)
        keys = rng.integers(0, max(1, m - 4), size=m).astype(str)
        codes, uniques = pd.factorize(pd.Index(keys))
        expected = _brute(dense.astype(np.float64), codes, len(uniques), op)
        for X in (dense, sp.csr_matrix(dense)):
            got = merge_columns(X, codes, len(uniques), op)
            assert got.dtype == dtype  # no float64 copy of float32 input
            values = got.toarray() if sp.issparse(got) else got
            np.testing.assert_allclose(values, expected, rtol=1e-6)
            if sp.issparse(got):
                assert got.has_sorted_indices and not np.any(got.data == 0)


def test_unsorted_csr_input():
    rows, cols = np.array([0, 0, 0, 1]), np.array([2, 0, 1, 1])
    X = sp.csr_matrix((np.array([5.0, 1.0, -3.0, 2.0]), (rows, cols)), shape=(2, 3))
    X.indices[:3] = X.indices[:3][::-1].copy()  # scramble the order inside row 0
    X.data[:3] = X.data[:3][::-1].copy()
    X.has_sorted_indices = False
    got = merge_columns(X, np.array([0, 1, 0]), 2, MAX)
    np.testing.assert_array_equal(got.toarray(), [[5.0, -3.0], [0.0, 2.0]])


def _column_reference(X: np.ndarray, codes: np.ndarray, n_out: int, op: int) -> np.ndarray:
    """Every output column reduced from ``X[:, members]`` in column order: the formulas the
    dense merge has always used, so the values must match it bit for bit."""
    out = np.empty((X.shape[0], n_out), dtype=X.dtype)
    for g in range(n_out):
        block = X[:, np.flatnonzero(codes == g)]
        if block.shape[1] == 1:
            out[:, g] = block[:, 0]
        elif op == MAX:
            out[:, g] = block.max(axis=1)
        else:
            out[:, g] = block.sum(axis=1) / (block.shape[1] if op == MEAN else 1)
    return out


@pytest.mark.parametrize("few", [False, True])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [MAX, SUM, MEAN])
def test_dense_many_groups_bit_identical_and_layout_kept(few, order, dtype, op):
    rng = np.random.default_rng(100 + op)
    n, m = 37, 400
    X = np.asarray(rng.normal(size=(n, m)) * 10.0 ** rng.integers(-3, 4, size=m), dtype=dtype)
    X = np.asfortranarray(X) if order == "F" else np.ascontiguousarray(X)
    if few:  # TCGA-like: unique names but for a few later columns that join earlier genes
        keys = np.arange(m)
        keys[rng.choice(m, 12, replace=False)] = rng.choice(m, 12)
    else:  # ~150 keys: singletons, pairs and a large group (> 8 members, where numpy's
        # pairwise summation would differ from a column-by-column sum)
        keys = rng.integers(0, 150, size=m)
        keys[rng.choice(m, 40, replace=False)] = 1000  # one group of 40 scattered columns
    codes, uniques = pd.factorize(pd.Index(keys.astype(str)))
    got = merge_columns(X, codes, len(uniques), op)
    assert got.dtype == dtype
    assert got.flags.c_contiguous if order == "C" else got.flags.f_contiguous
    np.testing.assert_array_equal(got, _column_reference(X, codes, len(uniques), op))
    # the sparse kernel agrees with the dense result (max exactly; sums up to rounding)
    sparse = merge_columns(sp.csr_matrix(X), codes, len(uniques), op)
    assert sparse.has_sorted_indices
    if op == MAX:
        np.testing.assert_array_equal(sparse.toarray(), got)
    else:
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(sparse.toarray(), got, rtol=tol, atol=tol * np.abs(X).max())


def test_dense_without_duplicates_is_a_reordered_copy():
    X = np.arange(12.0).reshape(3, 4)
    got = merge_columns(X, np.array([0, 1, 2, 3]), 4, SUM)
    np.testing.assert_array_equal(got, X)
    assert got.flags.c_contiguous and not np.shares_memory(got, X)


@pytest.mark.parametrize("op", [MAX, SUM, MEAN])
def test_widened_output_equals_the_same_type_merge_widened(op):
    """float32 rows merged straight into float64 hold the float32 merge's values exactly
    (each merged value is rounded to float32 first), not a float64 sum."""
    rng = np.random.default_rng(int(op) + 40)
    dense = (rng.normal(0.0, 1.0, size=(30, 20)) * (rng.random((30, 20)) < 0.5)).astype(np.float32)
    codes = np.array([0, 1, 0, 2, 3, 1, 4, 0, 5, 6, 0, 7, 8, 9, 1, 10, 11, 12, 13, 14])
    X = sp.csr_matrix(dense)
    same = merge_columns(X, codes, 15, op)
    wide = merge_columns(X, codes, 15, op, out_dtype=np.float64)
    assert same.dtype == np.float32 and wide.dtype == np.float64
    np.testing.assert_array_equal(wide.toarray(), same.toarray().astype(np.float64))
    np.testing.assert_array_equal(wide.indptr, same.indptr)
    if op != MAX:  # the float64 sums differ from the rounded ones somewhere
        exact = merge_columns(sp.csr_matrix(dense.astype(np.float64)), codes, 15, op)
        assert not np.array_equal(exact.toarray(), wide.toarray())
    # trimmed to its stored values (no slack that scipy would copy again)
    assert wide.data.size == wide.nnz and wide.indices.size == wide.nnz


def _random_csr(rng: np.random.Generator, n: int, m: int, dtype) -> sp.csr_matrix:
    """Rows of every kind the merge meets: empty, dense, only a few columns, negatives."""
    dense = rng.choice([-2.5, -0.5, 0.0, 0.0, 0.0, 0.0, 1.0, 1.5, 3.0], size=(n, m))
    dense = (dense * rng.normal(1.0, 0.1, size=(n, m))).astype(dtype)
    dense[rng.random(n) < 0.05] = 0.0  # empty rows
    dense[rng.random(n) < 0.5, : m // 2] = 0.0  # rows holding only the later columns
    return sp.csr_matrix(dense)


@pytest.fixture
def both_kernels(monkeypatch):
    """merge_columns with every row merge run by the serial and the parallel kernel: the
    arrays must agree bit for bit (returns the calls' count and whether any was canonical)."""
    from sigscore.genes import merge_jit as mj

    calls = {"n": 0, "ok": 0}

    def both(data, indices, indptr, target, group_code, size, op, out_data, out_idx):
        members = np.flatnonzero(target < 0).astype(indices.dtype)
        par_data, par_idx = np.full_like(out_data, np.nan), np.full_like(out_idx, -7)
        ok_p, ptr_p = mj.merge_csr_parallel(
            data, indices, indptr, target, group_code, size, op, par_data, par_idx, members
        )
        ok, ptr = mj.merge_csr(
            data, indices, indptr, target, group_code, size, op, out_data, out_idx
        )
        assert ok_p == ok
        calls["n"] += 1
        if ok:
            calls["ok"] += 1
            nnz = int(ptr[-1])
            np.testing.assert_array_equal(ptr_p, ptr)
            np.testing.assert_array_equal(par_idx[:nnz], out_idx[:nnz])
            assert par_data.dtype == out_data.dtype
            assert par_data[:nnz].tobytes() == out_data[:nnz].tobytes()  # bit for bit
        return ok, ptr

    monkeypatch.setattr(mj, "merge_rows", both)
    return calls


@pytest.mark.parametrize(
    ("dtype", "out_dtype"),
    [(np.float32, None), (np.float64, None), (np.float32, np.float64)],
)
@pytest.mark.parametrize("op", [MAX, SUM, MEAN])
def test_parallel_kernel_equals_serial(both_kernels, dtype, out_dtype, op):
    rng = np.random.default_rng(300 + op)
    n, m = 1500, 120  # several chunks of rows per thread
    X = _random_csr(rng, n, m, dtype)
    # a few groups (one of 5 members, pairs, members before and after their first column)
    keys = np.arange(m)
    keys[[3, 40, 77, 119, 90]] = 10
    keys[[5, 60]] = 61
    keys[[100]] = 2
    codes, uniques = pd.factorize(pd.Index(keys.astype(str)))
    got = merge_columns(X, codes, len(uniques), op, out_dtype=out_dtype)
    assert both_kernels == {"n": 1, "ok": 1}
    expected = _brute(X.toarray().astype(np.float64), codes, len(uniques), op)
    np.testing.assert_allclose(got.toarray(), expected, rtol=1e-6, atol=1e-6)
    assert not np.any(got.data == 0)  # all-zero groups stay implicit


def test_parallel_kernel_reports_non_canonical_rows(both_kernels):
    rng = np.random.default_rng(5)
    X = _random_csr(rng, 1500, 80, np.float64)
    codes = np.r_[np.arange(79), 0]
    canonical = merge_columns(X, codes, 79, MAX)
    for row in (0, 700, 1499):  # the first chunk, a middle one, the last row
        Y = X.copy()
        lo, hi = Y.indptr[row], Y.indptr[row + 1]
        if hi - lo < 2:
            Y.indptr[row + 1 :] += 2
            Y.indices = np.insert(Y.indices, lo, [1, 0]).astype(Y.indices.dtype)
            Y.data = np.insert(Y.data, lo, [4.0, 9.0])
        else:  # swapped in place: a row whose columns are not increasing
            Y.indices[[lo, lo + 1]] = Y.indices[[lo + 1, lo]]
            Y.data[[lo, lo + 1]] = Y.data[[lo + 1, lo]]
        Y.has_sorted_indices = False
        both_kernels.update(n=0, ok=0)
        got = merge_columns(Y, codes, 79, MAX)
        assert both_kernels == {"n": 2, "ok": 1}  # refused, canonicalised, merged
        reference = sp.csr_matrix(Y.toarray())
        np.testing.assert_array_equal(
            got.toarray(), merge_columns(reference, codes, 79, MAX).toarray()
        )
    assert canonical.nnz > 0


def test_merge_rows_takes_the_parallel_kernel_for_large_inputs(monkeypatch):
    """The dispatcher's choice: serial for small inputs or many duplicated columns."""
    from sigscore.genes import merge_jit as mj

    taken = []
    for name in ("merge_csr", "merge_csr_parallel"):
        real = getattr(mj, name)
        monkeypatch.setattr(
            mj, name, lambda *a, _real=real, _name=name: taken.append(_name) or _real(*a)
        )
    rng = np.random.default_rng(9)
    X = _random_csr(rng, 3000, 400, np.float32)
    few = np.r_[np.arange(399), 7]
    many = np.arange(400) // 2
    monkeypatch.setattr(mj, "PARALLEL_MIN_NNZ", 1_000)
    merge_columns(X, few, 399, SUM)
    merge_columns(X, many, 200, SUM)
    monkeypatch.setattr(mj, "PARALLEL_MIN_NNZ", X.nnz + 1)
    merge_columns(X, few, 399, SUM)
    expected_first = "merge_csr_parallel" if numba.get_num_threads() > 1 else "merge_csr"
    assert taken == [expected_first, "merge_csr", "merge_csr"]


def _same_csr(a: sp.csr_matrix, b: sp.csr_matrix) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data)  # bit for bit (no tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [MAX, SUM, MEAN])
def test_plan_and_unmerged_rows_equal_merge_columns(dtype, op):
    rng = np.random.default_rng(31 + int(op))
    m = 40
    keys = rng.integers(0, 28, size=m).astype(str)
    codes, uniques = pd.factorize(pd.Index(keys))
    n_out = len(uniques)
    plan = MergePlan.from_codes(codes, n_out, op)
    # the plan's fields, from their definitions
    size_of = np.bincount(codes, minlength=n_out)
    np.testing.assert_array_equal(plan.group_code, np.flatnonzero(size_of > 1))
    np.testing.assert_array_equal(plan.group_size, size_of[plan.group_code])
    np.testing.assert_array_equal(plan.members, np.flatnonzero(size_of[codes] > 1))
    alone = plan.target >= 0
    np.testing.assert_array_equal(plan.target[alone], codes[alone])
    np.testing.assert_array_equal(plan.group_code[-1 - plan.target[~alone]], codes[~alone])
    dense = rng.choice([-2.5, -0.5, 0.0, 0.0, 0.0, 0.1, 1.0, 3.3], size=(30, m)).astype(dtype)
    X = sp.csr_matrix(dense)
    expected = merge_columns(X, codes, n_out, op)
    block = UnmergedRows(X, plan)
    assert block.shape == (30, n_out) and block.dtype == dtype and block.nnz == X.nnz
    _same_csr(block.merged(), expected)
    _same_csr(merge_columns(X, plan, n_out, op), expected)
    wide = merge_columns(X, codes, n_out, op, out_dtype=np.float64)
    _same_csr(block.merged(np.float64), wide)
    # a dense matrix merged by the plan: the same as by its codes
    np.testing.assert_array_equal(
        merge_columns(dense, plan, n_out, op), merge_columns(dense, codes, n_out, op)
    )
