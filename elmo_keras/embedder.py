"""`ElmoEmbedder`: ELMo vectors for tokenised text, with AllenNLP's API.

It carries out the batch plans of `elmo_keras.preprocessing.batching`, keeps
the token-vector cache and lays sentences out in rows.

Example:

>>> from elmo_keras import ElmoEmbedder
>>> embedder = ElmoEmbedder("tests/data/bilm-tf/options.json", "tests/data/bilm-tf/lm_weights.hdf5")
>>> embedder.embed_sentence(["Hello", "world", "."]).shape
(3, 3, 32)
"""

import collections

import keras
import numpy as np

from elmo_keras.arguments import check_non_negative_int, check_positive_int
from elmo_keras.file_embedding import embed_file
from elmo_keras.io.digest import file_digest
from elmo_keras.io.embedding_file import InputFileError  # noqa: F401  (raised by embed_file)
# Re-exported: the output formats were first defined here.
from elmo_keras.io.embedding_file import (OUTPUT_FORMATS, SENTENCE_VECTORS, ChunkStore, read_sentences,  # noqa: F401
                                          select_layers, sentence_keys, sentence_vector, write_allennlp_hdf5)
from elmo_keras.io.options import CODE_POINTS
from elmo_keras.long_line import LongLine, sentence_vector_of
from elmo_keras.models.bilm_files import load_bilm
# Re-exported: the planners were first defined here. WINDOW_MAX_TOKENS is read
# from this module at call time (and passed to `elmo_keras.file_embedding`), so
# that patching it here changes the windows.
from elmo_keras.preprocessing.batching import (DEFAULT_MAX_TOKENS_PER_BATCH, LENGTH_BUCKET,  # noqa: F401
                                               ROW_BUCKET, WINDOW_MAX_TOKENS, budget_batches, packed_batches,
                                               padded_length, plan_chunks, row_bucket)
from elmo_keras.preprocessing.char_dic_ids import CharDicIds, model_dictionaries_folder
from elmo_keras.preprocessing.char_ids import CharIds
from elmo_keras.preprocessing.packing import pack_rows
from elmo_keras.preprocessing.split import check_splitter, split_sentence
from elmo_keras.pretrained import resolve_model_files

# Sentences sorted together by length when embedding without state.
SORT_WINDOW_BATCHES = 32
# New tokens per char-CNN call are padded up to a multiple of this.
TOKEN_BUCKET = 64
# At most this many new tokens per char-CNN call. The convolutions hold about
# slots x filters floats per token (150-200 KB at the released sizes' 2,048
# filters), so a batch of long lines with many distinct tokens is encoded in
# slices of at most 300-400 MB instead of all at once.
CHAR_CNN_MAX_TOKENS = 2048


class ElmoEmbedder:
    """Embed tokenised sentences with a biLM from the original files.

    Each sentence gives a float32 array (n_layers + 1, n_tokens,
    2 * projection_dim): layer 0 is the char-CNN vector repeated for both
    directions, then each LSTM layer (forward ; backward); the sentence
    boundaries are removed.

    Args:
        options_file: path of the original `options.json`; with
            `weight_file`, None for the model bundled in `savedmodels/default`.
        weight_file: path of the original weights `.hdf5`.
        batch_size: int. Sentences per batch (when `embed_sentences`
            packs sentences, rows are up to `max_tokens_per_batch //
            batch_size` positions long; see `pack_sentences`).
        stateful: bool. Carry LSTM states per batch row from one
            `embed_batch` call to the next, as the original bilm-tf does;
            sentences are then never reordered. Default stateless: each
            sentence is embedded on its own, results do not depend on batching.
        token_cache_size: int. The char-CNN vector of a token depends on the
            token alone, so it is computed once per distinct token and kept
            for the most recent `token_cache_size` tokens (0: nothing is
            kept; a batch of at most `CHAR_CNN_MAX_TOKENS` positions runs in
            one pass with the LSTMs, a larger one encodes its distinct tokens
            first, in slices, so that the char-CNN's memory stays bounded).
        jit_compile: bool. On TensorFlow, run the model with XLA: faster
            embedding (see `benchmarks/RESULTS.md`) for one compilation per
            batch shape on first use; False starts faster for a few
            sentences. The JAX backend always compiles.
        pack_sentences: True, False or "auto" (the same as True). Without
            state, put short sentences end to end in shared rows (each still
            contextualised on its own), so that the LSTMs run on less padding
            (with the token cache). `embed_sentences` then packs a whole
            sort window into rows of one length (`packed_batches`) and
            gives a batch as many rows as `max_tokens_per_batch` allows, as
            a time step costs a fixed part plus a part per row. Measured on
            real text at every size (`benchmarks/bench_vs_bilm_tf.py`,
            RESULTS.md).
        max_tokens_per_batch: int or None. Without state, a batch holds
            sentences x padded length (the longest sentence + `<S>` and
            `</S>`, rounded up to a multiple of `LENGTH_BUCKET`) of at most
            this many token positions, which bounds the memory of a model
            call (rows x time x the LSTM's size); a sentence longer than the
            budget runs alone, in blocks of that many steps with the LSTM
            states carried from block to block (`elmo_keras.long_line`), so
            that only its output grows with its length (and `embed_file`
            writes that to disk block by block). Vectors do not depend on
            it. None: batches of `batch_size` sentences whatever their
            length, and a sentence in one call however long.
            With `stateful=True` it does not apply: stateful batches are
            always `batch_size` consecutive sentences (each row carries its
            state), so lower `batch_size` for long lines there.
        tokenizer: str. How `embed_file` and `embed_texts` split a line into
            tokens: "whitespace" (`str.split()`, for text that is already
            tokenised, as AllenNLP's `elmo` command reads it),
            "punctuation" (also every punctuation or symbol character is a
            token: "money." gives "money", "."; the bundled default model's
            training text was split so) or "moses" / "moses:LANG" (the Moses
            tokenizer, as the released English models' training text was
            split; the `moses` extra). See `elmo_keras.preprocessing.split`.

    Example:

    >>> embedder = ElmoEmbedder("tests/data/bilm-tf/options.json", "tests/data/bilm-tf/lm_weights.hdf5")
    >>> [v.shape for v in embedder.embed_batch([["a", "b"], ["c"]])]
    [(3, 2, 32), (3, 1, 32)]
    """

    def __init__(self, options_file=None, weight_file=None, batch_size=64, stateful=False,
                 token_cache_size=100_000, jit_compile=True, pack_sentences="auto", tokenizer="whitespace",
                 max_tokens_per_batch=DEFAULT_MAX_TOKENS_PER_BATCH):
        check_positive_int(batch_size, "batch_size")
        check_non_negative_int(token_cache_size, "token_cache_size")
        if max_tokens_per_batch is not None:
            check_positive_int(max_tokens_per_batch, "max_tokens_per_batch")
        self.max_tokens_per_batch = max_tokens_per_batch
        if pack_sentences not in (True, False, "auto"):
            raise ValueError(f"pack_sentences: expected True, False or 'auto', found {pack_sentences!r}")
        self.tokenizer = check_splitter(tokenizer)
        options_file, weight_file = resolve_model_files(options_file, weight_file)
        self.options_file = options_file
        self.weight_file = weight_file
        self.batch_size = batch_size
        self.stateful = stateful
        self.model = load_bilm(options_file, weight_file, stateful=stateful, max_batch_size=batch_size)
        self.options = self.model.options
        self.num_layers = self.options.num_layers
        self.dim = self.options.output_dim
        cnn = self.options.char_cnn
        self._ids_width = cnn.token_id_width
        # The ids of tokens and sentences: bilm-tf's bytes, or an imported ELMoForManyLangs model's dictionaries.
        if cnn.characters == CODE_POINTS:
            self._token_ids = CharDicIds.from_folder(model_dictionaries_folder(options_file),
                                                     cnn.max_characters_per_token)
        else:
            self._token_ids = CharIds(cnn.max_characters_per_token)
        self.token_cache_size = token_cache_size
        self._token_vectors = collections.OrderedDict()
        self.pack_sentences = bool(pack_sentences) and not stateful
        self._widest_filter = self.options.char_cnn.widest_filter
        self._token_encoder = self.model.token_encoder()
        self._contextualizer = self.model.contextualizer(packed=self.pack_sentences)
        self._jit_compile = jit_compile
        self._direction_block = None  # built for the first line longer than the budget
        if keras.backend.backend() == "tensorflow":
            for model in (self.model, self._token_encoder, self._contextualizer):
                model.jit_compile = jit_compile

    @classmethod
    def from_pretrained(cls, name, cache_dir=None, mirror=None, **kwargs):
        """Embedder for a released model (`small`, `medium`, `original`, `original_5.5b`), a model folder or zip.

        A released model is fetched once into the cache and reused offline
        (`elmo_keras.pretrained.fetch_pretrained`); a folder holds
        `options.json` and one weights `.hdf5`, and a zip of one (the NLPL
        repository's models) is unpacked once into the cache, verified
        (`elmo_keras.pretrained.local_model_files`).
        """
        options_file, weight_file = resolve_model_files(model=name, cache_dir=cache_dir, mirror=mirror)
        return cls(options_file, weight_file, **kwargs)

    def reset_states(self):
        """Forget the carried LSTM states (stateful mode)."""
        self.model.get_layer("bilstm").reset_states()

    def _padded_length(self, batch):
        # Extra all-padding positions are masked: they change no result or state.
        return padded_length(max(len(s) for s in batch))

    def _char_id_batch(self, batch):
        ids = np.zeros((len(batch), self._padded_length(batch), self._ids_width), dtype=np.int32)
        for k, sentence in enumerate(batch):
            ids[k, : len(sentence) + 2] = self._token_ids.sentence(sentence)
        return ids

    def _vectors_for(self, tokens):
        """Char-CNN vectors of distinct tokens, from the cache or computed now."""
        cache = self._token_vectors if self.token_cache_size else {}
        missing = [t for t in tokens if t not in cache]
        computed = {}
        # In slices of at most CHAR_CNN_MAX_TOKENS: the convolutions' memory grows with the tokens per call.
        for start in range(0, len(missing), CHAR_CNN_MAX_TOKENS):
            part = missing[start : start + CHAR_CNN_MAX_TOKENS]
            padded = -(-len(part) // TOKEN_BUCKET) * TOKEN_BUCKET
            ids = np.zeros((1, padded, self._ids_width), dtype=np.int32)
            ids[0, : len(part)] = [self._token_ids.token(t) for t in part]
            ids = self._token_ids.trim_padding(ids, self._widest_filter)
            vectors = np.asarray(self._token_encoder.predict_on_batch(ids), dtype=np.float32)[0]
            computed.update(zip(part, vectors))
        out = np.stack([cache[t] if t in cache else computed[t] for t in tokens])
        if not self.token_cache_size:
            return out
        cache.update(computed)
        for t in tokens:
            cache.move_to_end(t)
        while len(cache) > self.token_cache_size:
            cache.popitem(last=False)
        return out

    def _activations(self, batch, max_tokens=None, packing=None):
        """Activations (rows, layers, time, dim) with boundaries, and where each sentence is.

        `packing`: None, or `(time, rows)` as `packed_batches` plans them
        (indices into `batch`); None packs the batch here.
        Returns `(activations, placement)`: sentence k is at row
        `placement[k][0]`, its `<S>` at position `placement[k][1]`.
        """
        if not self.token_cache_size and len(batch) * self._padded_length(batch) <= CHAR_CNN_MAX_TOKENS:
            activations = self.model.predict_on_batch(self._char_id_batch(batch))["activations"]
            return activations, [(k, 0) for k in range(len(batch))]
        bos, eos = self._token_ids.boundaries
        rows = [[bos] + list(s) + [eos] for s in batch]
        distinct = list(dict.fromkeys(t for row in rows for t in row))
        table = np.concatenate([np.zeros((1, self.dim // 2), np.float32), self._vectors_for(distinct)])
        position = {t: i + 1 for i, t in enumerate(distinct)}
        time, layout = (self._padded_length(batch), None) if packing is None else packing
        if not self.pack_sentences:
            # One sentence a row, in order (stateful: row k continues row k).
            layout = [[(k, 0)] for k in range(len(batch))]
            n_rows = len(batch)
        else:
            layout = layout or pack_rows([len(row) for row in rows], time)
            n_rows = row_bucket(len(layout))
            if max_tokens is not None and n_rows * time > max_tokens >= len(layout) * time:
                n_rows = len(layout)  # the bucket's extra rows would break the budget
        index = np.zeros((n_rows, time), dtype=np.int32)
        segment_ids = np.zeros_like(index)
        placement = [None] * len(batch)
        for r, members in enumerate(layout):
            for segment, (k, offset) in enumerate(members, start=1):
                index[r, offset : offset + len(rows[k])] = [position[t] for t in rows[k]]
                segment_ids[r, offset : offset + len(rows[k])] = segment
                placement[k] = (r, offset)
        activations = self._contextualizer.predict_on_batch(
            {"token_embedding": table[index], "segment_ids": segment_ids})["activations"]
        return activations, placement

    def _is_long(self, sentence, max_tokens):
        """Whether a stateless sentence runs in blocks: its padded length exceeds the budget."""
        return not self.stateful and max_tokens is not None and self._padded_length([sentence]) > max_tokens

    def _long_line(self, sentence, max_tokens):
        """`sentence` as a `LongLine`, embedded in blocks of `max_tokens` steps when its vectors are asked for."""
        if self._direction_block is None:
            self._direction_block = self.model.direction_block()
            if keras.backend.backend() == "tensorflow":
                self._direction_block.jit_compile = self._jit_compile
        lstm = self.options.lstm
        return LongLine(list(sentence), self._vectors_for, self._direction_block, max_tokens, lstm.n_layers,
                        lstm.dim, lstm.projection_dim, boundaries=self._token_ids.boundaries)

    def embed_batch(self, batch):
        """Embed a list of token lists; return one array per sentence.

        In stateful mode the batch may hold at most `batch_size` sentences,
        and row k continues the state of row k of the previous call.
        With `pack_sentences`, short sentences share rows (packed end to end,
        each contextualised on its own), so that the LSTMs run on little padding.
        """
        return self._embed_batch(batch, max_tokens=self.max_tokens_per_batch)

    def _embed_batch(self, batch, *, max_tokens, packing=None):
        """`embed_batch` whose packed rows stay within `max_tokens` positions (None: no budget).

        `embed_sentences` passes its own budget, which may differ from the
        embedder's, and its own `packing` (see `_activations`).
        """
        if not batch:
            return []
        if self.stateful and len(batch) > self.batch_size:
            raise ValueError(f"stateful embedding takes at most batch_size={self.batch_size} sentences "
                             f"per batch, got {len(batch)}")
        long = [i for i, s in enumerate(batch) if self._is_long(s, max_tokens)]
        if long:
            rest = [i for i in range(len(batch)) if i not in set(long)]
            results = dict(zip(rest, self._embed_batch([batch[i] for i in rest], max_tokens=max_tokens)))
            results.update((i, self._long_line(batch[i], max_tokens).array()) for i in long)
            return [results[i] for i in range(len(batch))]
        activations, placement = self._activations(batch, max_tokens, packing)
        activations = np.asarray(activations, dtype=np.float32)
        return [np.ascontiguousarray(activations[r, :, offset + 1 : offset + len(s) + 1])
                for (r, offset), s in zip(placement, batch)]

    def _checked_batch_size(self, batch_size):
        """`batch_size` (None: the embedder's), checked before any work."""
        if batch_size is None:
            return self.batch_size
        check_positive_int(batch_size, "batch_size")
        if self.stateful and batch_size > self.batch_size:
            raise ValueError(f"batch_size: a stateful embedder keeps state for at most {self.batch_size} rows "
                             f"(its batch_size); found {batch_size}")
        return batch_size

    def _checked_budget(self, max_tokens_per_batch):
        """`max_tokens_per_batch` (None: the embedder's), checked before any work."""
        if max_tokens_per_batch is None:
            return self.max_tokens_per_batch
        return check_positive_int(max_tokens_per_batch, "max_tokens_per_batch")

    def embed_texts(self, texts, batch_size=None, max_tokens_per_batch=None):
        """Embed untokenised strings, split with the embedder's `tokenizer`; yield in input order.

        >>> embedder = ElmoEmbedder("tests/data/bilm-tf/options.json", "tests/data/bilm-tf/lm_weights.hdf5",
        ...                         tokenizer="punctuation")
        >>> [v.shape for v in embedder.embed_texts(["Hello, world.", ""])]
        [(3, 4, 32), (3, 0, 32)]
        """
        return self.embed_sentences((split_sentence(t, self.tokenizer) for t in texts), batch_size,
                                    max_tokens_per_batch)

    def embed_sentence(self, sentence):
        """Embed one token list; return (n_layers + 1, n_tokens, dim)."""
        return self.embed_batch([sentence])[0]

    def embed_sentences(self, sentences, batch_size=None, max_tokens_per_batch=None):
        """Embed an iterable of token lists lazily, yielding in input order.

        Without state, sentences are read in windows (`SORT_WINDOW_BATCHES`
        batches' worth of sentences, or `WINDOW_MAX_TOKENS` tokens), sorted
        by length and cut into batches of at most `batch_size` sentences and
        `max_tokens_per_batch` padded token positions (None: the embedder's;
        see the class docstring), for speed and bounded memory; the vectors
        do not depend on the batches. With state, batches are `batch_size`
        consecutive sentences in input order, and the budget does not apply.

        >>> embedder = ElmoEmbedder("tests/data/bilm-tf/options.json", "tests/data/bilm-tf/lm_weights.hdf5")
        >>> [v.shape for v in embedder.embed_sentences([["a"] * 300, ["b", "c"]], max_tokens_per_batch=64)]
        [(3, 300, 32), (3, 2, 32)]
        """
        for item in self._embed_items(sentences, batch_size, max_tokens_per_batch):
            yield item.array() if isinstance(item, LongLine) else item

    def _embed_items(self, sentences, batch_size, max_tokens_per_batch):
        """`embed_sentences`, with a `LongLine` (not yet embedded) for each sentence longer than the budget."""
        batch_size = self._checked_batch_size(batch_size)
        budget = self._checked_budget(max_tokens_per_batch)
        window = batch_size if self.stateful else batch_size * SORT_WINDOW_BATCHES
        chunk, tokens = [], 0
        for sentence in sentences:
            chunk.append(list(sentence))
            tokens += len(chunk[-1])
            if len(chunk) == window or (not self.stateful and tokens >= WINDOW_MAX_TOKENS):
                yield from self._embed_chunk(chunk, batch_size, budget)
                chunk, tokens = [], 0
        if chunk:
            yield from self._embed_chunk(chunk, batch_size, budget)

    def sentence_vectors(self, sentences, output_format="all", batch_size=None, max_tokens_per_batch=None):
        """One vector per sentence: each layer's mean over the sentence's tokens.

        Args:
            sentences: an iterable of token lists.
            output_format: `"all"` (every layer), `"top"` or `"average"`
                (the mean of the layers), as in `embed_file`.
            batch_size, max_tokens_per_batch: as in `embed_sentences`.

        Returns float32 (n_sentences, n_layers + 1, 2 * projection_dim), or
        (n_sentences, 2 * projection_dim) for `"top"` and `"average"`, in
        input order; an empty sentence gives zeros.

        >>> embedder = ElmoEmbedder("tests/data/bilm-tf/options.json", "tests/data/bilm-tf/lm_weights.hdf5")
        >>> embedder.sentence_vectors([["a", "b"], [], ["c"]]).shape
        (3, 3, 32)
        """
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format: expected one of {OUTPUT_FORMATS}, found {output_format!r}")
        vectors = [sentence_vector_of(v, output_format)
                   for v in self._embed_items(sentences, batch_size, max_tokens_per_batch)]
        if not vectors:
            shape = (0, self.dim) if output_format != "all" else (0, self.num_layers, self.dim)
            return np.zeros(shape, "float32")
        return np.stack(vectors)

    def _embed_chunk(self, chunk, batch_size, budget):
        if self.stateful:
            for start in range(0, len(chunk), batch_size):
                yield from self._embed_batch(chunk[start : start + batch_size], max_tokens=budget)
            return
        results = [None] * len(chunk)
        lengths = [len(s) for s in chunk]
        if self.pack_sentences and self.token_cache_size:
            plan = [([i for row in rows for i, _ in row], (time, rows))
                    for time, rows in packed_batches(lengths, batch_size, budget)]
        else:
            plan = [(indices, None) for indices in budget_batches(lengths, batch_size, budget)]
        for indices, packing in plan:
            if len(indices) == 1 and self._is_long(chunk[indices[0]], budget):
                results[indices[0]] = self._long_line(chunk[indices[0]], budget)
                continue
            if packing is not None:  # indices into the batch
                local = {i: k for k, i in enumerate(indices)}
                packing = (packing[0], [[(local[i], offset) for i, offset in row] for row in packing[1]])
            batch = [chunk[i] for i in indices]
            for i, emb in zip(indices, self._embed_batch(batch, max_tokens=budget, packing=packing)):
                results[i] = emb
        yield from results

    def embed_file(self, input_file, output_file, output_format="all", batch_size=None,
                   forget_sentences=False, use_sentence_keys=False, progress=True, tokenizer=None,
                   overwrite=False, max_tokens_per_batch=None, sentence_vectors=False):
        """Embed a text file (one sentence a line) to hdf5.

        The hdf5 is the one AllenNLP's `elmo` command writes: one dataset per
        line, named by line index (or by the sentence with
        `use_sentence_keys`), plus `sentence_to_index` (JSON of sentence to
        index) unless `forget_sentences`. Lines are split with `tokenizer`
        (default: the embedder's). An empty line is an empty sentence: its
        dataset has 0 tokens, (layers, 0, dim) or (0, dim).
        With `sentence_vectors`, one dataset `sentence_vectors` instead:
        (lines, layers, dim), or (lines, dim) for `"top"` and `"average"`,
        each line's mean over its tokens (`sentence_vectors()`; zeros for an
        empty line), in line order; not with `use_sentence_keys`.
        `max_tokens_per_batch` (None: the embedder's) bounds the padded
        token positions of a stateless batch, as in `embed_sentences`.

        Arguments and paths are checked before any work. An existing
        `output_file` is a finished output: it is replaced only with
        `overwrite`. Work is saved in chunks in `<output_file>.partial/`
        (`batch_size * SORT_WINDOW_BATCHES` sentences, fewer once a chunk
        holds `WINDOW_MAX_TOKENS` tokens); a re-run after an interruption
        resumes from the finished chunks (it says so, and the progress bar
        starts there). The chunks do not depend on `max_tokens_per_batch`,
        so a run that ran out of memory resumes with a smaller budget. The
        output file appears atomically, and only complete. A failed write
        (a full disk: `OSError` ENOSPC) leaves no partial file: the
        finished chunks and any earlier output stay as they were, and the
        same call resumes once there is room.
        """
        embed_file(self, input_file, output_file, output_format=output_format, batch_size=batch_size,
                   forget_sentences=forget_sentences, use_sentence_keys=use_sentence_keys, progress=progress,
                   tokenizer=tokenizer, overwrite=overwrite, max_tokens_per_batch=max_tokens_per_batch,
                   sentence_vectors=sentence_vectors, sort_window_batches=SORT_WINDOW_BATCHES,
                   window_tokens=WINDOW_MAX_TOKENS)

    def _weights_digest(self):
        """SHA-256 of the weight file, so that resuming never reuses chunks of other weights."""
        if getattr(self, "_weights_sha256", None) is None:
            self._weights_sha256 = file_digest(self.weight_file)
        return self._weights_sha256
