"""pack_rows: every sequence placed once, end to end, within capacity."""

import numpy as np
import pytest

from elmo_keras.preprocessing.packing import pack_rows


def test_rows_hold_every_sequence_once_without_overlap():
    lengths = list(np.random.default_rng(0).integers(1, 43, size=200))
    rows = pack_rows(lengths, capacity=48)
    placed = sorted(k for row in rows for k, _ in row)
    assert placed == list(range(200))
    for row in rows:
        spans = sorted((offset, offset + lengths[k]) for k, offset in row)
        assert spans[0][0] == 0 and spans[-1][1] <= 48
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    # First-fit decreasing stays within 11/9 of the lower bound (+ 1).
    assert len(rows) <= 11 / 9 * -(-sum(lengths) // 48) + 1


def test_full_rows_and_single_sequences():
    assert pack_rows([4, 4, 4], capacity=4) == [[(0, 0)], [(1, 0)], [(2, 0)]]
    assert pack_rows([1, 1, 1, 1], capacity=4) == [[(0, 0), (1, 1), (2, 2), (3, 3)]]
    assert pack_rows([], capacity=4) == []


def test_too_long_sequence_is_an_error():
    with pytest.raises(ValueError, match="length 5 does not fit rows of 4"):
        pack_rows([2, 5], capacity=4)
