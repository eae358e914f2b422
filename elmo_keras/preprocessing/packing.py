"""Pack sequences of different lengths into few rows of a fixed length."""


def pack_rows(lengths, capacity):
    """Place sequences end to end in rows of `capacity` positions.

    First-fit decreasing: longest first, each into the first row with room.
    A row then holds several short sequences instead of one sequence and
    padding, which is how `ElmoEmbedder` avoids running the LSTMs on padding
    (`BiLSTM` keeps packed sequences apart with `segment_ids`).

    Args:
        lengths: sequence lengths, each at most `capacity`.
        capacity: positions per row.

    Returns a list of rows, each a list of `(index, offset)`: which sequence
    starts at which position of the row.

    Example:

    >>> pack_rows([5, 2, 3, 4], capacity=6)
    [[(0, 0)], [(3, 0), (1, 4)], [(2, 0)]]
    """
    if any(n > capacity for n in lengths):
        raise ValueError(f"a sequence of length {max(lengths)} does not fit rows of {capacity} positions")
    rows, used = [], []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        n = lengths[index]
        for r, filled in enumerate(used):
            if filled + n <= capacity:
                rows[r].append((index, filled))
                used[r] += n
                break
        else:
            rows.append([(index, 0)])
            used.append(n)
    return rows
