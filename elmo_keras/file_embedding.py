"""The resumable job behind `ElmoEmbedder.embed_file`: plan, fingerprint, chunks, the assembled hdf5.

The embedder computes; `elmo_keras.io.embedding_file` reads and writes the
files; this module runs the job between them: it checks everything before
any work, cuts the lines into chunks that do not depend on the batching,
skips the chunks a killed run finished, and assembles the output once every
chunk is there. A line longer than the token budget reaches the chunk store
as `StreamedVectors`, written to disk block by block.
"""

import functools
import sys

import numpy as np

from elmo_keras.arguments import check_output_file
from elmo_keras.io.digest import file_digest
from elmo_keras.io.embedding_file import (OUTPUT_FORMATS, SENTENCE_VECTORS, ChunkStore, StreamedVectors,
                                          check_disk_room, read_sentences, select_layers, sentence_keys,
                                          write_allennlp_hdf5)
from elmo_keras.long_line import LongLine, sentence_vector_of
from elmo_keras.preprocessing.batching import plan_chunks
from elmo_keras.preprocessing.split import check_splitter, split_sentence


def embed_file(embedder, input_file, output_file, output_format="all", batch_size=None, forget_sentences=False,
               use_sentence_keys=False, progress=True, tokenizer=None, overwrite=False, max_tokens_per_batch=None,
               sentence_vectors=False, *, sort_window_batches, window_tokens):
    """`embedder.embed_file(...)`: see `ElmoEmbedder.embed_file`.

    A chunk holds `batch_size * sort_window_batches` sentences, fewer once it
    holds `window_tokens` tokens (the embedder's sort windows).
    """
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format: expected one of {OUTPUT_FORMATS}, found {output_format!r}")
    if sentence_vectors and use_sentence_keys:
        raise ValueError("sentence_vectors: one dataset holds every line's vector, in line order; "
                         "use_sentence_keys (a dataset per sentence) does not apply to it")
    batch_size = embedder._checked_batch_size(batch_size)
    budget = embedder._checked_budget(max_tokens_per_batch)
    tokenizer = check_splitter(embedder.tokenizer if tokenizer is None else tokenizer)
    check_output_file(output_file, overwrite=overwrite)
    sentences = read_sentences(input_file)
    keys = sentence_keys(input_file, sentences, use_sentence_keys)
    chunk_size = batch_size * sort_window_batches
    lengths = [len(split_sentence(s, tokenizer)) for s in sentences]
    plan = plan_chunks(lengths, chunk_size, unit=batch_size if embedder.stateful else 1, max_tokens=window_tokens)
    fingerprint = {
        "input_sha256": file_digest(input_file), "n_sentences": len(sentences),
        "weights_sha256": embedder._weights_digest(), "options": embedder.options.to_dict(),
        "output_format": output_format, "tokenizer": tokenizer,
        "stateful": embedder.stateful, "batch_size": batch_size}
    if sentence_vectors:
        fingerprint["sentence_vectors"] = True
    if [start for start, _ in plan] != list(range(0, len(sentences), chunk_size)):
        # Some chunk closed on its tokens: name the rule, so that chunks of
        # fixed-size plans (earlier versions) are never mistaken for these.
        fingerprint["chunk_max_tokens"] = window_tokens
    chunks = ChunkStore(output_file, fingerprint)
    done = sum(end - start for start, end in plan if chunks.has(start))
    # Bytes a token's vectors take, or a line's vector: in the output, and in the chunks still to write.
    size = 4 * embedder.dim * (embedder.num_layers if output_format == "all" else 1)
    weights = [1] * len(lengths) if sentence_vectors else lengths
    try:
        check_disk_room(output_file, size * (sum(weights) + sum(
            sum(weights[start:end]) for start, end in plan if not chunks.has(start))))
    except OSError:
        if not done:
            chunks.remove()  # only its manifest: nothing of the user's
        raise
    if done and progress:
        print(f"resuming {output_file}: {done} of {len(sentences)} sentences were already embedded",
              file=sys.stderr)
    bar = _progress(len(sentences), progress, initial=0 if embedder.stateful else done)
    if embedder.stateful:
        embedder.reset_states()
    for start, end in plan:
        if chunks.has(start) and not embedder.stateful:
            continue
        tokens = [split_sentence(s, tokenizer) for s in sentences[start:end]]
        # Stateful runs recompute finished chunks to rebuild the state.
        vectors = list(embedder._embed_items(tokens, batch_size, budget))
        if not chunks.has(start):
            if sentence_vectors:
                vectors = [np.stack([sentence_vector_of(v, output_format) for v in vectors])]
            else:
                vectors = [_selected(v, output_format) for v in vectors]
            chunks.write(start, vectors)
        bar.update(len(tokens))
    bar.close()
    stacked = None
    if sentence_vectors:
        stacked = (SENTENCE_VECTORS, (embedder.dim,) if output_format != "all" else (embedder.num_layers, embedder.dim))
    write_allennlp_hdf5(output_file, chunks, keys, sentences, forget_sentences=forget_sentences,
                        stacked=stacked)
    chunks.remove()


def _selected(vectors, output_format):
    """The layers of `output_format`: an array, or `StreamedVectors` that write a `LongLine` block by block."""
    if isinstance(vectors, LongLine):
        return StreamedVectors(vectors.output_shape(output_format),
                               functools.partial(vectors.write, output_format=output_format))
    return select_layers(vectors, output_format)


def _progress(total, enabled, initial=0):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="sentence", disable=not enabled, desc="embedding")
