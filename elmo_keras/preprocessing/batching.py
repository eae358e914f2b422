"""Batch plans for embedding: which sentences go together, and padded to what shape.

Pure functions of sentence lengths, so that a plan (and the compiled shapes
it leads to) is the same on every run; `elmo_keras.embedder` carries them out.
"""

from elmo_keras.preprocessing.packing import pack_rows

# Token counts are padded up to a multiple of this, so that compiled
# functions are reused across batches of similar length.
LENGTH_BUCKET = 8
# <S> and </S> around every sentence.
BOUNDARY_TOKENS = 2
# A sort window of `embed_sentences` (and a chunk of `embed_file`) also
# closes at this many tokens, which bounds the vectors held before they are
# yielded or written: 3 KB a token at the small size (all layers), 12 KB at
# the original.
WINDOW_MAX_TOKENS = 65536
# Default budget of padded token positions per stateless batch (`ElmoEmbedder`,
# `elmo-keras embed`, Beam's `EmbedSentences` and `embed-beam`): sentences x
# padded length. 64 sentences of up to 126 tokens fit; longer ones go in
# fewer rows. The LSTMs hold about 2 directions x 4 gates x dim floats per
# position (32 KB at the small size, 128 KB at the original), so 8,192
# positions are about 0.26 GB (small) or 1 GB (original).
DEFAULT_MAX_TOKENS_PER_BATCH = 8192
# Packed rows are padded up to a power of two up to this, then to a multiple of it.
ROW_BUCKET = 8


def row_bucket(n_rows):
    """Rows padded to 1, 2, 4, 8, then multiples of `ROW_BUCKET`, so that few shapes compile."""
    if n_rows <= ROW_BUCKET:
        return 1 << (n_rows - 1).bit_length()
    return -(-n_rows // ROW_BUCKET) * ROW_BUCKET


def boundary_length(n_tokens):
    """Time steps of a sentence of `n_tokens`: + <S> and </S>."""
    return n_tokens + BOUNDARY_TOKENS


def padded_length(n_tokens):
    """Time steps of a batch whose longest sentence has `n_tokens`: + <S> and </S>, up to `LENGTH_BUCKET`."""
    return -(-boundary_length(n_tokens) // LENGTH_BUCKET) * LENGTH_BUCKET


def budget_batches(lengths, batch_size, max_tokens_per_batch, packed=False, time_steps=padded_length):
    """Cut sentences of `lengths` tokens into stateless batches; return lists of indices.

    The one token-budget rule of the package (`ElmoEmbedder`, Beam's
    `EmbedSentences`). Shortest first (ties in input order). A batch takes
    at most `batch_size` sentences (None: no limit; `packed`: at most
    `batch_size` rows' worth of positions, i.e. the sentences' positions
    with `<S>` and `</S>` add up to at most `batch_size` x
    `time_steps(longest)`, as short sentences share rows) and, unless
    `max_tokens_per_batch` is None, grows only while sentences x
    `time_steps(longest)` stays within it; a sentence too long for the
    budget on its own is a batch of its own. `time_steps` is how the engine
    pads a batch whose longest sentence has n tokens: `padded_length` for
    `ElmoEmbedder` (which rounds the length up to reuse compiled shapes),
    `boundary_length` for a SavedModel's signatures (the longest + 2).

    >>> budget_batches([5, 1, 30, 3], batch_size=64, max_tokens_per_batch=16)
    [[1, 3], [0], [2]]
    >>> budget_batches([1, 1, 1, 1, 6], batch_size=2, max_tokens_per_batch=None, packed=True)
    [[0, 1, 2, 3], [4]]
    >>> budget_batches([5, 1, 3, 0, 8], None, 24, time_steps=boundary_length)
    [[3, 1, 2], [0, 4]]
    """
    batches, batch, positions = [], [], 0
    for index in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
        length = time_steps(lengths[index])
        if packed:
            full = positions + boundary_length(lengths[index]) > batch_size * length
        else:
            full = batch_size is not None and len(batch) == batch_size
        if batch and (full or (max_tokens_per_batch is not None
                               and (len(batch) + 1) * length > max_tokens_per_batch)):
            batches.append(batch)
            batch, positions = [], 0
        batch.append(index)
        positions += boundary_length(lengths[index])
    if batch:
        batches.append(batch)
    return batches


def packed_batches(lengths, batch_size, max_tokens_per_batch):
    """Cut sentences of `lengths` tokens into stateless batches of packed rows.

    The plan of `ElmoEmbedder.embed_sentences` when it packs sentences. The
    LSTMs' work is time steps x rows, and a step costs a fixed part (reading
    the weights) plus a part per row, so the plan fills the rows and puts
    as many rows in a step as the budget allows. Every sentence (with `<S>`
    and `</S>`) whose padded length is at most a row's capacity goes into
    rows of one length, the padded length of the longest of them,
    first-fit decreasing (`pack_rows`). The capacity is
    `max_tokens_per_batch // batch_size` (down to a multiple of
    `LENGTH_BUCKET`), so that a batch holds at least `batch_size` rows. The
    rows are cut into batches of as many rows as the budget allows (a
    multiple of `ROW_BUCKET`; without a budget, `batch_size` rows and no
    cap on the capacity). The longer sentences are batched as
    `budget_batches` batches them (`packed=True`), each batch in rows of
    its own padded length; one longer than the budget is a batch of its own.

    Returns a list of `(time, rows)`: the batch's padded length and its
    rows, each a list of `(index, offset)` (sentence `index` starts at
    position `offset` of the row).

    >>> packed_batches([5, 1, 3, 4, 12], batch_size=2, max_tokens_per_batch=16)
    [(8, [[(0, 0)], [(3, 0)]]), (8, [[(2, 0), (1, 5)]]), (16, [[(4, 0)]])]
    >>> packed_batches([5, 1, 3, 4, 12], batch_size=2, max_tokens_per_batch=None)
    [(16, [[(4, 0)], [(0, 0), (3, 7), (1, 13)]]), (16, [[(2, 0)]])]
    """
    if max_tokens_per_batch is None:
        capacity = None
    else:
        capacity = max(LENGTH_BUCKET, max_tokens_per_batch // batch_size // LENGTH_BUCKET * LENGTH_BUCKET)
    fits = [i for i, n in enumerate(lengths) if capacity is None or padded_length(n) <= capacity]
    batches = []
    if fits:
        time = max(padded_length(lengths[i]) for i in fits)
        rows = [[(fits[k], offset) for k, offset in row]
                for row in pack_rows([boundary_length(lengths[i]) for i in fits], time)]
        size = batch_size if max_tokens_per_batch is None else max(1, max_tokens_per_batch // time)
        if size > ROW_BUCKET:
            size -= size % ROW_BUCKET
        batches += [(time, rows[start : start + size]) for start in range(0, len(rows), size)]
    longer = [i for i, n in enumerate(lengths) if capacity is not None and padded_length(n) > capacity]
    for batch in budget_batches([lengths[i] for i in longer], batch_size, max_tokens_per_batch, packed=True):
        indices = [longer[k] for k in batch]
        time = padded_length(max(lengths[i] for i in indices))
        rows = pack_rows([boundary_length(lengths[i]) for i in indices], time)
        batches.append((time, [[(indices[k], offset) for k, offset in row] for row in rows]))
    return batches


def plan_chunks(lengths, sentences_per_chunk, unit=1, max_tokens=WINDOW_MAX_TOKENS):
    """Cut sentences of `lengths` tokens into consecutive chunks; return `(start, end)` pairs.

    A chunk holds at most `sentences_per_chunk` sentences and closes early
    once it holds `max_tokens` tokens or more, at a multiple of `unit`
    sentences (a stateful run needs whole batches); it holds at least one
    unit. The plan depends on the lengths alone, so a re-run finds the same chunks.

    >>> plan_chunks([1, 1, 1, 1, 1], sentences_per_chunk=2)
    [(0, 2), (2, 4), (4, 5)]
    >>> plan_chunks([10, 10, 1, 1, 1], sentences_per_chunk=4, unit=1, max_tokens=15)
    [(0, 2), (2, 5)]
    """
    chunks, start, tokens = [], 0, 0
    for end in range(1, len(lengths) + 1):
        tokens += lengths[end - 1]
        size = end - start
        if size == sentences_per_chunk or (tokens >= max_tokens and size % unit == 0):
            chunks.append((start, end))
            start, tokens = end, 0
    if start < len(lengths):
        chunks.append((start, len(lengths)))
    return chunks
