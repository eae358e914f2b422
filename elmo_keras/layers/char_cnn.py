"""The character CNN that turns each token's character ids into a vector."""

import keras
from keras import ops

from elmo_keras.layers.highway import Highway
from elmo_keras.layers.initializers import initializer
from elmo_keras.preprocessing.char_ids import N_CHARACTER_CODES


@keras.saving.register_keras_serializable(package="elmo_keras")
class CharCNN(keras.layers.Layer):
    """Character embedding, convolutions, max-pool, highway, projection.

    Args:
        filters: list of `[width, num_filters]` pairs, one convolution each.
        embedding_dim: int. Size of each character's embedding.
        n_highway: int. Number of `Highway` layers after the convolutions.
        projection_dim: int. Output size. The projection is applied only when
            it differs from the total number of filters, as in bilm-tf.
        activation: `"relu"` or `"tanh"`, applied after the max over characters.
        max_characters_per_token: int. Character slots per token.
        n_characters: int. Rows of the character embedding: bilm-tf's 261
            byte and marker codes, or the size of an ELMoForManyLangs
            model's character dictionary.
        word_dim: int. 0 (bilm-tf), or the size of a word embedding
            (ELMoForManyLangs) put before the highway output, the projection
            then reading both: `[word_embedding ; highway(char_cnn)]`.
        n_words: int. Rows of the word embedding (with `word_dim`).
        **kwargs: standard layer arguments.

    Call arguments:
        char_ids: int tensor (batch, tokens, max_characters_per_token) of
            shifted ids (0 = padding, 1..n_characters = raw codes + 1). Fewer
            slots than `max_characters_per_token` are read as well; cut with
            `trim_padding_characters` they give the same output. With
            `word_dim`, one more slot at the end holds the shifted word id
            (word id + 1), so that an all-zero row is still batch padding
            and the biLM's mask ("any id > 0") holds for both embedders.

    Returns (batch, tokens, projection_dim). All-zero (padding) tokens give a
    value that is not zero; the biLM masks them out.

    Example:

    >>> import numpy as np
    >>> cnn = CharCNN(filters=[[1, 4], [2, 8]], embedding_dim=4, n_highway=1, projection_dim=6)
    >>> tuple(cnn(np.ones((2, 3, 50), "int32")).shape)
    (2, 3, 6)

    Reference: Kim et al., 2016, "Character-Aware Neural Language Models";
    Peters et al., 2018, "Deep contextualized word representations".
    """

    def __init__(self, filters, embedding_dim=16, n_highway=0, projection_dim=512, activation="relu",
                 max_characters_per_token=50, n_characters=N_CHARACTER_CODES, word_dim=0, n_words=0, **kwargs):
        super().__init__(**kwargs)
        if activation not in ("relu", "tanh"):
            raise ValueError(f"CharCNN: activation must be 'relu' or 'tanh', got {activation!r}")
        self.filters = [list(map(int, f)) for f in filters]
        self.embedding_dim = embedding_dim
        self.n_highway = n_highway
        self.projection_dim = projection_dim
        self.activation = activation
        self.max_characters_per_token = max_characters_per_token
        self.n_characters = n_characters
        self.word_dim = word_dim
        self.n_words = n_words
        self.n_filters = sum(n for _, n in self.filters)
        # ELMoForManyLangs always projects (a Linear layer), even where the sizes agree.
        self.use_projection = self.n_filters != projection_dim or word_dim > 0
        self.highways = [Highway(name=f"highway_{k}") for k in range(n_highway)]

    def build(self, input_shape):
        self.char_embed = self.add_weight(
            name="char_embed", shape=(self.n_characters, self.embedding_dim),
            initializer=initializer(keras.initializers.RandomUniform(-1.0, 1.0)))
        self.conv_kernels, self.conv_biases = [], []
        for i, (width, num) in enumerate(self.filters):
            self.conv_kernels.append(self.add_weight(
                name=f"conv_{i}_kernel", shape=(width, self.embedding_dim, num),
                initializer=initializer("glorot_uniform")))
            self.conv_biases.append(self.add_weight(
                name=f"conv_{i}_bias", shape=(num,), initializer=initializer("zeros")))
        for highway in self.highways:
            highway.build((None, self.n_filters))
        if self.word_dim:
            self.word_embed = self.add_weight(
                name="word_embed", shape=(self.n_words, self.word_dim),
                initializer=initializer(keras.initializers.RandomUniform(-0.25, 0.25)))
        if self.use_projection:
            self.projection_kernel = self.add_weight(
                name="projection_kernel", shape=(self.word_dim + self.n_filters, self.projection_dim),
                initializer=initializer("glorot_uniform"))
            self.projection_bias = self.add_weight(
                name="projection_bias", shape=(self.projection_dim,), initializer=initializer("zeros"))

    def call(self, char_ids):
        batch, tokens = ops.shape(char_ids)[0], ops.shape(char_ids)[1]
        flat_ids = ops.reshape(char_ids, (-1, ops.shape(char_ids)[2]))
        # No token at all (a batch of 0 rows): run on one padding token and
        # cut it off after. TensorFlow's eager max refuses empty tensors, and
        # oneDNN's convolution returns a wrong shape on 0 rows. Batches with
        # tokens run unchanged (in a graph the filler has 0 rows).
        n_flat = ops.shape(flat_ids)[0]
        # Known sizes decide now; a size known only at run time (a graph
        # tensor) gets the filler of max(1 - n, 0) rows. A symbolic size
        # while Keras infers shapes (JAX) is neither: nothing runs then.
        maybe_empty = n_flat == 0 if isinstance(n_flat, int) else ops.is_tensor(n_flat)
        if maybe_empty:
            n_filler = max(1 - n_flat, 0) if isinstance(n_flat, int) else ops.maximum(1 - n_flat, 0)
            filler = ops.zeros((n_filler, ops.shape(flat_ids)[1]), dtype=flat_ids.dtype)
            flat_ids = ops.concatenate([flat_ids, filler], axis=0)
        if self.word_dim:
            word_ids, flat_ids = flat_ids[:, -1], flat_ids[:, :-1]
        table = ops.concatenate(
            [ops.zeros((1, self.embedding_dim), dtype=self.char_embed.dtype), self.char_embed], axis=0)
        chars = ops.take(table, flat_ids, axis=0)
        activation = ops.relu if self.activation == "relu" else ops.tanh
        pooled = []
        for kernel, bias in zip(self.conv_kernels, self.conv_biases):
            conv = ops.conv(chars, kernel, strides=1, padding="valid")
            # Max before the activation and bias after the max: both commute
            # with max, and this order is the original's.
            pooled.append(activation(ops.max(conv, axis=1) + bias))
        x = ops.concatenate(pooled, axis=-1)
        for highway in self.highways:
            x = highway(x)
        if self.word_dim:
            words = ops.concatenate(
                [ops.zeros((1, self.word_dim), dtype=self.word_embed.dtype), self.word_embed], axis=0)
            x = ops.concatenate([ops.take(words, word_ids, axis=0), x], axis=-1)
        if self.use_projection:
            x = ops.matmul(x, self.projection_kernel) + self.projection_bias
        if maybe_empty:
            x = x[:n_flat]
        return ops.reshape(x, (batch, tokens, self.projection_dim))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2]) + (self.projection_dim,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "embedding_dim": self.embedding_dim,
            "n_highway": self.n_highway,
            "projection_dim": self.projection_dim,
            "activation": self.activation,
            "max_characters_per_token": self.max_characters_per_token,
        })
        # Only where used: a bilm-tf char-CNN's config stays as it was.
        if self.n_characters != N_CHARACTER_CODES or self.word_dim:
            config.update({"n_characters": self.n_characters, "word_dim": self.word_dim, "n_words": self.n_words})
        return config
