"""The forward and backward LSTM stacks of ELMo, run together."""

import keras
from keras import ops

from elmo_keras.layers.initializers import initializer
from elmo_keras.layers.lstm_projection import lstm_projection_step

# Time steps whose input products are computed at once (see `BiLSTM._run_layer`):
# a longer sequence is read in blocks of this many steps.
STEP_BLOCK = 256


def reverse_within_length(x, lengths):
    """Reverse each row of `x` (batch, time, ...) within its own length.

    Positions at or beyond a row's length stay in place, as with
    `tf.reverse_sequence`. Applying it twice gives `x` back.
    """
    steps = ops.arange(ops.shape(x)[1], dtype="int32")[None, :]
    lengths = ops.cast(lengths, "int32")[:, None]
    index = ops.where(steps < lengths, lengths - 1 - steps, steps)
    for _ in range(len(x.shape) - 2):
        index = ops.expand_dims(index, -1)
    return ops.take_along_axis(x, ops.broadcast_to(index, ops.shape(x)), axis=1)


def backward_order(mask):
    """The backward direction's reading order for any mask.

    The backward LSTM reads each row's real positions (mask True) from the
    last to the first, then the padded ones. Returns `(order, index)`, both
    int32 (batch, time): `order[b, k]` is the position read at step k and
    `index[b, t]` the step at which position t is read (the inverse), so
    `take_along_axis(x, order)` gives the reading order and
    `take_along_axis(y, index)` puts outputs back. For a mask whose real
    positions come first (right padding), both equal the reversal within
    the row's length, as `reverse_within_length` does.
    """
    mask = ops.cast(mask, "int32")
    seen = ops.cumsum(mask, axis=1)  # real positions up to and including t
    lengths = seen[:, -1:]
    steps = ops.arange(ops.shape(mask)[1], dtype="int32")[None, :]
    # Real position t: read after the real positions that follow it; padded
    # position t: after every real one and the padded ones before it.
    index = ops.where(mask > 0, lengths - seen, lengths + steps - seen)
    order = ops.cast(ops.argsort(index, axis=1), "int32")
    return order, index


def _gather_time(x, index):
    """`x` (batch, time, ...) with position `index[b, t]` of row b at time t."""
    for _ in range(len(x.shape) - 2):
        index = ops.expand_dims(index, -1)
    return ops.take_along_axis(x, ops.broadcast_to(index, ops.shape(x)), axis=1)


def segment_starts(segment_ids):
    """True at real positions (id > 0) whose id differs from the previous position's.

    The first position of a row is never a start: it continues the row's
    initial state (zeros, or the carried state when stateful). Padding never
    starts anything, so the state after a row's last real token is kept.
    """
    previous = ops.pad(segment_ids[:, :-1], ((0, 0), (1, 0)))
    first = ops.arange(ops.shape(segment_ids)[1])[None, :] == 0
    return ops.logical_and(ops.logical_and(ops.not_equal(segment_ids, previous), segment_ids > 0),
                           ops.logical_not(first))


@keras.saving.register_keras_serializable(package="elmo_keras")
class BiLSTM(keras.layers.Layer):
    """ELMo's forward and backward stacks of `LSTMCellWithProjection`.

    Both directions run in one loop over time (batched matrix products over
    the direction axis); the input projection of every step is one matrix
    product before the loop. The backward direction reads each row's real
    positions from the last to the first, so it starts at the row's last
    real token and never reads padding. Padded steps leave the state
    unchanged and output 0. Any mask works (padding on the right, on the
    left or in the middle): the outputs at real positions are those of the
    same tokens given contiguously, and padded positions give 0.

    Args:
        units: int. LSTM cells per layer (options `lstm.dim`).
        projection_dim: int. Projected output size (options `lstm.projection_dim`).
        n_layers: int. Layers per direction.
        cell_clip: float or None. Clip of the cell state.
        proj_clip: float or None. Clip of the projected output.
        use_skip_connections: bool. Add each layer's input to its output for
            layers >= 1 (bilm-tf's ResidualWrapper); the recurrent state stays
            the cell's own output.
        dropout: float. Dropout on each layer's input while training.
        stateful: bool. Carry the final state of each batch row into the same
            row of the next call, as bilm-tf does at prediction time.
        max_batch_size: int. Rows of state kept when `stateful`. A call with
            more rows raises `ValueError` naming both sizes where the batch
            size is known when the call is traced (eager calls, JAX, XLA,
            and TensorFlow graphs of a fixed batch size). In a TensorFlow
            graph traced with an unknown batch size it fails when run, with
            TensorFlow's `InvalidArgumentError` from the op
            `.../stateful_batch_larger_than_max_batch_size_<N>/...`.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: float (batch, time, projection_dim): the token vectors.
        mask: bool (batch, time), True for real tokens, anywhere in the row.
            None means all real (or `segment_ids > 0`).
        training: bool.
        segment_ids: None or int (batch, time): several sequences packed in
            one row, each a run of equal positive ids, 0 for padding. Each
            sequence starts from a zero state in both directions, exactly as
            if it had a row of its own; the backward direction reads the
            row's real positions reversed, hence each sequence reversed.
            Runs are taken over the real positions only: padding between
            two positions of the same id does not start a new sequence.
        initial_state: None or `(h, c)`, (n_layers, 2, batch,
            projection_dim) and (n_layers, 2, batch, units), direction 0
            forward and 1 backward: the state before each row's first
            token. None: zeros, or when `stateful` the carried state (which
            then receives the final state; an explicit one leaves it alone).
        return_state: bool. Also return the final state, as Keras'
            `RNN(return_state=True)`.

    Returns (batch, n_layers, time, 2 * projection_dim): for each layer the
    forward and backward outputs concatenated; 0 at padded positions. With
    `return_state`, `(outputs, h, c)`: the state after each row's last real
    token (forward) and after its first (backward), shaped as `initial_state`.
    The carried state of a `stateful` layer is kept only here, in
    `state_variables`; `LanguageModel` carries its state in its `BiLSTM`.

    Example:

    >>> import numpy as np
    >>> lstm = BiLSTM(units=8, projection_dim=4, n_layers=2, cell_clip=3.0, proj_clip=3.0)
    >>> tuple(lstm(np.ones((2, 5, 4), "float32")).shape)
    (2, 2, 5, 8)

    Reference: Peters et al., 2018, "Deep contextualized word representations".
    """

    def __init__(self, units, projection_dim, n_layers=2, cell_clip=None, proj_clip=None,
                 use_skip_connections=False, dropout=0.0, stateful=False, max_batch_size=64, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.projection_dim = projection_dim
        self.n_layers = n_layers
        self.cell_clip = cell_clip
        self.proj_clip = proj_clip
        self.use_skip_connections = use_skip_connections
        self.dropout = dropout
        self.stateful = stateful
        self.max_batch_size = max_batch_size
        self.supports_masking = True
        self.dropout_layer = keras.layers.Dropout(dropout) if dropout else None

    def build(self, input_shape):
        d, p = self.units, self.projection_dim
        # Weights are stacked over the direction axis (0 forward, 1 backward)
        # so that both directions run as one batched product.
        self.kernels, self.recurrent_kernels, self.biases, self.projections = [], [], [], []
        for layer in range(self.n_layers):
            self.kernels.append(self.add_weight(
                name=f"layer_{layer}_kernel", shape=(2, p, 4 * d), initializer=initializer("glorot_uniform")))
            self.recurrent_kernels.append(self.add_weight(
                name=f"layer_{layer}_recurrent_kernel", shape=(2, p, 4 * d), initializer=initializer("glorot_uniform")))
            self.biases.append(self.add_weight(
                name=f"layer_{layer}_bias", shape=(2, 4 * d), initializer=initializer("zeros")))
            self.projections.append(self.add_weight(
                name=f"layer_{layer}_projection", shape=(2, d, p), initializer=initializer("glorot_uniform")))
        if self.stateful:
            # The carried state: float32 under any dtype policy, and an on-read
            # variable, so that under tf.distribute every replica keeps the
            # rows of its own batches (elsewhere an ordinary variable).
            # `add_weight` takes no `synchronization`.
            self.state_h, self.state_c = (
                keras.Variable("zeros", shape=(self.n_layers, 2, self.max_batch_size, size), dtype="float32",
                               trainable=False, autocast=False, synchronization="on_read", aggregation="mean",
                               name=name)
                for name, size in (("state_h", p), ("state_c", d)))

    @property
    def state_variables(self):
        """The carried state (stateful mode): `[state_h, state_c]`, float32
        (n_layers, 2, max_batch_size, projection_dim | units); else `[]`."""
        return [self.state_h, self.state_c] if self.stateful else []

    def reset_states(self):
        """Zero the carried state of every row (stateful mode)."""
        for variable in self.state_variables:
            variable.assign(ops.zeros(variable.shape, dtype=variable.dtype))

    def _run_layer(self, layer, inputs, step_mask, h0, c0, step_reset=None):
        """Run layer `layer` of both directions over time.

        inputs: (2, batch, time, p), each direction in its reading order.
        step_mask: (time, 2, batch, 1) bool. step_reset: None or like
        step_mask, True where the state is zeroed before the step.
        h0, c0: (2, batch, p|d).
        Returns outputs (2, batch, time, p) and the final (h, c).

        The input products (4 * units floats per step, row and direction)
        are computed a block of at most `STEP_BLOCK` steps at a time, inside
        the loop, so that a sequence of any length holds one block of them
        (at the original size 32 MB a row), not all of them (128 KB a step
        and row). A sequence of at most `STEP_BLOCK` steps is one block: the
        products of all its steps in one matrix product, as before the loop.
        """
        # Time-major before the product: transposing the projection-wide
        # input is cheaper than transposing the 4 * units-wide gates.
        x = ops.transpose(inputs, (2, 0, 1, 3))
        time = ops.shape(x)[0]
        if isinstance(time, int):
            block = max(1, min(time, STEP_BLOCK))
        else:  # a TensorFlow graph of unknown length
            block = ops.maximum(ops.minimum(time, STEP_BLOCK), 1)
        n_blocks = (time + block - 1) // block
        padding = n_blocks * block - time
        # Padded steps are masked: they leave the state alone and output 0.
        x = ops.reshape(ops.pad(x, ((0, padding), (0, 0), (0, 0), (0, 0))),
                        (n_blocks, block) + tuple(ops.shape(x)[1:]))
        step_mask = ops.reshape(ops.pad(step_mask, ((0, padding), (0, 0), (0, 0), (0, 0))),
                                (n_blocks, block) + tuple(ops.shape(step_mask)[1:]))
        if step_reset is not None:
            step_reset = ops.reshape(ops.pad(step_reset, ((0, padding), (0, 0), (0, 0), (0, 0))),
                                     (n_blocks, block) + tuple(ops.shape(step_reset)[1:]))
        kernel, bias = self.kernels[layer], self.biases[layer][:, None, :]
        recurrent_kernel = self.recurrent_kernels[layer]
        projection = self.projections[layer]

        def run_block(carry, x_block):
            h_prev, c_prev, k, _ = carry
            block_mask = ops.take(step_mask, k, axis=0)
            block_reset = None if step_reset is None else ops.take(step_reset, k, axis=0)

            def step(carry, gates_t):
                h_prev, c_prev, t = carry
                mask_t = ops.take(block_mask, t, axis=0)
                if block_reset is not None:
                    reset_t = ops.take(block_reset, t, axis=0)
                    h_prev = ops.where(reset_t, ops.zeros_like(h_prev), h_prev)
                    c_prev = ops.where(reset_t, ops.zeros_like(c_prev), c_prev)
                gates = gates_t + ops.matmul(h_prev, recurrent_kernel)
                h, c = lstm_projection_step(gates, c_prev, projection, self.cell_clip, self.proj_clip)
                h = ops.where(mask_t, h, h_prev)
                c = ops.where(mask_t, c, c_prev)
                # The TensorFlow backend's scan needs outputs shaped like the carry,
                # and takes a single sequence when the time length is unknown.
                return (h, c, t + 1), (h, c, t)

            gates_in = ops.matmul(x_block, kernel) + bias
            (h, c, _), (h_all, _, _) = ops.scan(
                step, (h_prev, c_prev, ops.convert_to_tensor(0, dtype="int32")), gates_in)
            carry = (h, c, k + 1, h_all)
            return carry, carry

        h_block = ops.zeros((block,) + tuple(ops.shape(h0)), dtype=h0.dtype)
        (h_last, c_last, _, _), (_, _, _, h_blocks) = ops.scan(
            run_block, (h0, c0, ops.convert_to_tensor(0, dtype="int32"), h_block), x)
        h_all = ops.reshape(h_blocks, (n_blocks * block,) + tuple(ops.shape(h0)))[:time]
        step_mask = ops.reshape(step_mask, (n_blocks * block,) + tuple(ops.shape(step_mask)[2:]))[:time]
        outputs = ops.transpose(h_all, (1, 2, 0, 3)) * ops.cast(
            ops.transpose(step_mask, (1, 2, 0, 3)), h_all.dtype)
        return outputs, h_last, c_last

    def run_directions(self, forward_inputs, backward_inputs, mask, initial_state=None, training=None,
                       reset=None):
        """Run both stacks on inputs given in each direction's reading order.

        Pretraining feeds the backward LM its own reversed stream; `call`
        builds that order by reversing within length.

        Args:
            forward_inputs, backward_inputs: (batch, time, projection_dim).
            mask: bool (2, batch, time), per direction.
            initial_state: None or `(h, c)` of shapes
                (n_layers, 2, batch, projection_dim) and (n_layers, 2, batch, units).
                None: zeros, or in stateful mode the carried state of rows
                [:batch], which then receive the final state.
            training: bool.
            reset: None or bool (2, batch, time), per direction: True where
                a new sequence starts, so the state is zeroed before that step.

        Returns `(outputs, (h, c))`: outputs a list over layers of
        (2, batch, time, projection_dim) in reading order, and the final states.
        """
        # The state takes the compute dtype, as the products do (also without autocast).
        x = ops.cast(ops.stack([forward_inputs, backward_inputs], axis=0), self.compute_dtype)
        step_mask = ops.transpose(mask, (2, 0, 1))[..., None]
        step_reset = None if reset is None else ops.transpose(reset, (2, 0, 1))[..., None]
        batch = ops.shape(forward_inputs)[0]
        carried = self.stateful and initial_state is None
        if carried:
            self._check_batch(forward_inputs)
            initial_state = (self._carried(self.state_h, batch), self._carried(self.state_c, batch))
        outputs, final_h, final_c = [], [], []
        for layer in range(self.n_layers):
            if initial_state is None:
                h0 = ops.zeros((2, batch, self.projection_dim), dtype=x.dtype)
                c0 = ops.zeros((2, batch, self.units), dtype=x.dtype)
            else:
                h0, c0 = (ops.cast(s[layer], x.dtype) for s in initial_state)
            layer_input = self.dropout_layer(x, training=training) if self.dropout_layer else x
            y, h, c = self._run_layer(layer, layer_input, step_mask, h0, c0, step_reset)
            if self.use_skip_connections and layer > 0:
                # bilm-tf wraps the residual cell in the dropout: it adds the dropped input.
                y = y + layer_input
            outputs.append(y)
            final_h.append(h)
            final_c.append(c)
            x = y
        final_state = (ops.stack(final_h), ops.stack(final_c))
        if carried:
            for variable, value in zip(self.state_variables, final_state):
                variable.assign(ops.concatenate([ops.cast(value, variable.dtype),
                                                 ops.convert_to_tensor(variable)[:, :, batch:]], axis=2))
        return outputs, final_state

    def _check_batch(self, inputs):
        batch = inputs.shape[0]
        if self.stateful and batch is not None and batch > self.max_batch_size:
            raise ValueError(f"BiLSTM '{self.name}' is stateful with max_batch_size={self.max_batch_size} rows "
                             f"of carried state, but was called on a batch of {batch} rows; build it with "
                             f"max_batch_size >= {batch} or call it on at most {self.max_batch_size} rows")

    def _carried(self, variable, batch):
        """Rows [:batch] of a state variable, (n_layers, 2, batch, size)."""
        # Where the batch size is unknown when traced (TensorFlow graphs), the
        # slice is the check: unlike `[:, :, :batch]`, which would cut to the
        # rows kept, it fails when asked for more, and TensorFlow's message
        # names this scope. A copy: the value as read, as TensorFlow and JAX
        # read a variable. On PyTorch the slice would be a view of the
        # variable, which the final state then overwrites in place while
        # autograd still needs the values read (for the gradient of the
        # first step's recurrent kernel and forget gate).
        with keras.name_scope(f"stateful_batch_larger_than_max_batch_size_{self.max_batch_size}"):
            return ops.copy(ops.slice(ops.convert_to_tensor(variable), (0, 0, 0, 0),
                                      (self.n_layers, 2, batch, variable.shape[-1])))

    def call(self, inputs, mask=None, training=None, segment_ids=None, initial_state=None, return_state=False):
        batch, time = ops.shape(inputs)[0], ops.shape(inputs)[1]
        if segment_ids is not None:
            segment_ids = ops.cast(segment_ids, "int32")
            if mask is None:
                mask = segment_ids > 0
        if mask is None:
            mask = ops.ones((batch, time), dtype="bool")
        mask = ops.cast(mask, "bool")
        # The forward direction reads the row as it is: padded steps leave the
        # state alone, wherever they are. The backward one reads the real
        # positions last to first, then the padding: a prefix mask.
        order, index = backward_order(mask)
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
        backward_mask = ops.arange(time, dtype="int32")[None, :] < lengths[:, None]
        reset = None
        if segment_ids is not None:
            backward_ids = _gather_time(segment_ids, order)
            # Sequence starts over the real positions only, in reading order;
            # the forward ones go back to the positions they were found at.
            forward_starts = segment_starts(reverse_within_length(backward_ids, lengths))
            compact_index = ops.maximum(ops.cumsum(ops.cast(mask, "int32"), axis=1) - 1, 0)
            forward_reset = ops.logical_and(ops.take_along_axis(forward_starts, compact_index, axis=1), mask)
            reset = ops.stack([forward_reset, segment_starts(backward_ids)])
        outputs, (h, c) = self.run_directions(
            inputs, _gather_time(inputs, order), ops.stack([mask, backward_mask]),
            initial_state=initial_state, training=training, reset=reset)
        layers = ops.stack([ops.concatenate([y[0], _gather_time(y[1], index)], axis=-1) for y in outputs], axis=1)
        return (layers, h, c) if return_state else layers

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_layers, input_shape[1], 2 * self.projection_dim)

    def compute_output_spec(self, inputs, return_state=False, **kwargs):
        outputs = keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=self.compute_dtype)
        if not return_state:
            return outputs
        rows = (self.n_layers, 2, inputs.shape[0])
        return (outputs, keras.KerasTensor(rows + (self.projection_dim,), dtype=self.compute_dtype),
                keras.KerasTensor(rows + (self.units,), dtype=self.compute_dtype))

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "projection_dim": self.projection_dim,
            "n_layers": self.n_layers,
            "cell_clip": self.cell_clip,
            "proj_clip": self.proj_clip,
            "use_skip_connections": self.use_skip_connections,
            "dropout": self.dropout,
            "stateful": self.stateful,
            "max_batch_size": self.max_batch_size,
        })
        return config
