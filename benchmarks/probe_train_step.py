"""Where a pretraining step's time goes on TensorFlow: the optimizer, and the char-CNN beside bilm-tf's layout.

    python benchmarks/probe_train_step.py            # small size, batch 32 x 20, 1,024 negatives

Prints, each the fastest of `--repeats` calls after warm-up calls:

- `train_on_batch` of `LanguageModel` with bilm-tf's optimizer (Adagrad 0.2,
  initial accumulator 1, global clip 10: `elmo_keras.training.train.build_optimizer`),
  with Adagrad without the clip, and with plain SGD;
- the char-CNN's forward and backward pass over one step's tokens (both
  directions: 2 x batch x unroll tokens): the package's `CharCNN` and the
  same computation written as bilm-tf writes it (`conv2d` NHWC with
  `[1, width]` kernels, `reduce_max`, highway, projection), each in a
  `tf.function` with a `GradientTape`.

Random char ids (12 characters a token, the rest padding) and random targets;
the same for every variant. TensorFlow only. Prints; appends nothing.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from configs import get_options  # noqa: E402

N_CHARACTERS = 261  # training: bilm-tf's 261


def fastest(function, repeats):
    for _ in range(2):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def char_ids(rng, rows, unroll, width):
    ids = rng.integers(1, N_CHARACTERS, size=(rows, unroll, width)).astype("int32")
    ids[..., 12:] = 0
    return ids


def train_steps(args, rng):
    import keras

    from elmo_keras.models.language_model import LanguageModel
    from elmo_keras.training.options import TrainingOptions
    from elmo_keras.training.train import build_optimizer

    options = get_options(args.config)
    options["char_cnn"]["n_characters"] = N_CHARACTERS
    options.update({"bidirectional": True, "dropout": 0.1, "all_clip_norm_val": 10.0, "n_epochs": 1,
                    "batch_size": args.batch_size, "unroll_steps": args.unroll_steps,
                    "n_negative_samples_batch": args.negatives, "n_tokens_vocab": args.vocab,
                    "n_train_tokens": args.batch_size * args.unroll_steps * 1000})
    options = TrainingOptions.from_dict(options, n_tokens_vocab=args.vocab)
    ids = char_ids(rng, args.batch_size, args.unroll_steps, options.char_cnn.max_characters_per_token)
    targets = rng.integers(0, args.vocab, size=(2, args.batch_size, args.unroll_steps)).astype("int32")
    x = {"char_ids": ids, "char_ids_reverse": ids[:, ::-1].copy(), "next_token_id": targets[0],
         "next_token_id_reverse": targets[1], "weights": np.ones((args.batch_size, args.unroll_steps), "float32")}
    optimizers = {"bilm-tf's optimizer (Adagrad, global clip 10)": lambda: build_optimizer(options),
                  "Adagrad without the clip": lambda: keras.optimizers.Adagrad(
                      options.learning_rate, initial_accumulator_value=1.0),
                  "SGD": lambda: keras.optimizers.SGD(0.01)}
    for name, make in optimizers.items():
        model = LanguageModel(options, batch_size=args.batch_size)
        model.compile(optimizer=make())
        print(f"train_on_batch, {name}: {fastest(lambda: model.train_on_batch(x), args.repeats):.3f} s", flush=True)
    return options


def char_cnn_passes(args, rng, options):
    import tensorflow as tf

    from elmo_keras.layers.char_cnn import CharCNN

    cnn_options = options.char_cnn
    filters = [list(f) for f in cnn_options.filters]
    width = cnn_options.max_characters_per_token
    ids = tf.constant(char_ids(rng, 2 * args.batch_size, args.unroll_steps, width))
    projection_dim = options.lstm.projection_dim
    n_filters = sum(n for _, n in filters)

    cnn = CharCNN(filters, embedding_dim=cnn_options.embedding_dim, n_highway=cnn_options.n_highway,
                  projection_dim=projection_dim, activation=cnn_options.activation, n_characters=N_CHARACTERS)
    cnn.build((None, None, width))

    @tf.function
    def package(x):
        with tf.GradientTape() as tape:
            y = cnn(x)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, cnn.trainable_variables)

    def variable(*shape, scale=0.05):
        return tf.Variable(rng.normal(size=shape).astype("float32") * scale)

    embedding = variable(N_CHARACTERS + 1, cnn_options.embedding_dim, scale=1.0)
    kernels = [variable(1, w, cnn_options.embedding_dim, n) for w, n in filters]
    biases = [tf.Variable(np.zeros(n, "float32")) for _, n in filters]
    highways = [variable(n_filters, 2 * n_filters, scale=0.01) for _ in range(cnn_options.n_highway)]
    projection = variable(n_filters, projection_dim, scale=0.01)
    weights = [embedding, projection, *kernels, *biases, *highways]
    activation = tf.nn.relu if cnn_options.activation == "relu" else tf.tanh

    @tf.function
    def bilm_tf_layout(x):
        with tf.GradientTape() as tape:
            chars = tf.nn.embedding_lookup(embedding, x)  # (rows, unroll, characters, dim): NHWC
            pooled = [activation(tf.reduce_max(tf.nn.conv2d(chars, k, strides=[1, 1, 1, 1], padding="VALID")
                                               + b, 2)) for k, b in zip(kernels, biases)]
            h = tf.reshape(tf.concat(pooled, 2), (-1, n_filters))
            for w in highways:
                nonlinear, gate = tf.split(tf.matmul(h, w), 2, axis=1)
                carry = tf.sigmoid(gate)
                h = carry * tf.nn.relu(nonlinear) + (1 - carry) * h
            y = tf.matmul(h, projection)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, weights)

    tokens = 2 * args.batch_size * args.unroll_steps
    for name, function in (("CharCNN", package), ("bilm-tf's layout", bilm_tf_layout)):
        seconds = fastest(lambda: [tf.convert_to_tensor(g).numpy() for g in function(ids)], args.repeats)
        print(f"char-CNN forward + backward, {tokens:,} tokens, {name}: {seconds:.3f} s", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="small", choices=["tiny", "small", "original"])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--unroll-steps", type=int, default=20)
    p.add_argument("--negatives", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=55571, help="softmax size (default: the WordNet corpus')")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    options = train_steps(args, rng)
    char_cnn_passes(args, rng, options)


if __name__ == "__main__":
    main()
