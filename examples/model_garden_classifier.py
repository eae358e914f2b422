"""A sentence classifier with TensorFlow Model Garden on an ELMo SavedModel.

TensorFlow Model Garden (`tf-models-official`) is built on tf_keras (Keras 2),
so its users cannot put elmo_keras' Keras 3 layers in their models. They use
ELMo as TF Hub users did: the SavedModel that `elmo_keras.export_savedmodel`
writes (the bundled model ships one), loaded with
`hub.KerasLayer(path, trainable=True, output_key="default")`. The layer maps
raw sentences to the mean of their ELMo vectors; with `trainable=True` its
mix weights and scale train with the classifier (the biLM stays frozen).

The classifier (tf_keras: the encoder, dropout, a dense layer of logits) is
trained with Model Garden's optimizer factory (`official.modeling.optimization`):
AdamW with weight decay, a linear warm-up and a polynomial decay, the recipe
of Model Garden's BERT fine-tuning. The data is a tiny set of film-review
sentences written for this example, labelled positive or negative. It
reports the training loss before and after, the change of the encoder's mix
weights, held-out accuracy, and (with `--output`) saves the trained
classifier as a SavedModel, loads it back and checks its predictions.

    pip install "elmo-keras[model-garden]"
    python examples/model_garden_classifier.py                  # the bundled model's SavedModel
    python examples/model_garden_classifier.py --options-file options.json --weight-file weights.hdf5
    python examples/model_garden_classifier.py --savedmodel path/to/elmo/1 --steps 100 --output classifier

Keras 3 (through elmo_keras) is used only to export a SavedModel from
original files; no Keras 3 layer goes into the tf_keras model.
"""

import argparse
import json
import os
import sys
import tempfile

LABELS = ("negative", "positive")
TRAIN = [
    ("a wonderful film with a moving story", 1),
    ("the acting was superb and the music beautiful", 1),
    ("i loved every minute of it", 1),
    ("a delightful and clever comedy", 1),
    ("the best film i have seen this year", 1),
    ("warm , funny and very well made", 1),
    ("a brilliant cast and a great script", 1),
    ("we enjoyed it and would happily watch it again", 1),
    ("a dull film with a silly plot", 0),
    ("the acting was poor and the music loud", 0),
    ("i hated every minute of it", 0),
    ("a boring and clumsy comedy", 0),
    ("the worst film i have seen this year", 0),
    ("cold , tedious and badly made", 0),
    ("a weak cast and a terrible script", 0),
    ("we were bored and left before the end", 0),
]
HELD_OUT = [
    ("a beautiful and moving film", 1),
    ("the script was clever and the cast great", 1),
    ("funny , warm and brilliant", 1),
    ("a tedious film with a terrible plot", 0),
    ("the music was dull and the acting clumsy", 0),
    ("silly , boring and poor", 0),
]


def encoder_savedmodel(options_file=None, weight_file=None, work_dir=None):
    """The folder of an ELMo SavedModel (TF Hub ELMo's interface) for `hub.KerasLayer`.

    With original files, they are exported to `work_dir` first; without, the
    bundled default model's SavedModel is used (exported when its folder,
    e.g. one named by `ELMO_KERAS_DEFAULT_MODEL`, has none).
    """
    if options_file is None:
        from elmo_keras.pretrained import default_model_files

        options_file, weight_file = default_model_files()
        shipped = os.path.join(os.path.dirname(options_file), "savedmodel", "1")
        if os.path.isfile(os.path.join(shipped, "saved_model.pb")):
            return shipped
    from elmo_keras import export_savedmodel  # Keras 3 builds the biLM; the SavedModel needs only TensorFlow

    return export_savedmodel(options_file, weight_file, os.path.join(work_dir, "elmo"))["export_dir"]


def optimizer_config(steps, learning_rate, warmup_steps):
    """Model Garden's optimization config: AdamW, linear warm-up, polynomial decay to 0."""
    from official.modeling import optimization

    return optimization.OptimizationConfig({
        "optimizer": {"type": "adamw", "adamw": {"weight_decay_rate": 0.01,
                                                 "exclude_from_weight_decay": ["bias"]}},
        "learning_rate": {"type": "polynomial", "polynomial": {
            "initial_learning_rate": learning_rate, "decay_steps": steps, "end_learning_rate": 0.0}},
        "warmup": {"type": "linear", "linear": {"warmup_steps": warmup_steps}},
    })


def build_classifier(encoder_dir, num_classes=len(LABELS), dropout=0.1):
    """tf_keras model: raw sentences -> ELMo sentence vector (hub.KerasLayer) -> logits."""
    import tensorflow as tf
    import tensorflow_hub as hub
    import tf_keras

    text = tf_keras.Input(shape=[], dtype=tf.string, name="text")
    encoder = hub.KerasLayer(encoder_dir, trainable=True, output_key="default", name="elmo")
    sentence = tf_keras.layers.Dropout(dropout)(encoder(text))
    logits = tf_keras.layers.Dense(num_classes, name="logits")(sentence)
    return tf_keras.Model(text, logits, name="elmo_classifier"), encoder


def run(encoder_dir, steps=150, batch_size=8, learning_rate=0.02, warmup_steps=10, seed=0, output=None):
    """Train the classifier; return a dict of what happened (JSON-serialisable)."""
    import numpy as np
    import tensorflow as tf
    import tf_keras
    from official.modeling import optimization

    tf_keras.utils.set_random_seed(seed)
    model, encoder = build_classifier(encoder_dir)
    factory = optimization.OptimizerFactory(optimizer_config(steps, learning_rate, warmup_steps))
    optimizer = factory.build_optimizer(factory.build_learning_rate())
    model.compile(optimizer=optimizer, loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])

    texts = tf.constant([text for text, _ in TRAIN])
    labels = np.array([label for _, label in TRAIN], dtype="int32")
    held_out_texts = tf.constant([text for text, _ in HELD_OUT])
    held_out_labels = np.array([label for _, label in HELD_OUT], dtype="int32")
    mix_before = {w.name: w.numpy().tolist() for w in encoder.trainable_weights}
    loss_before, accuracy_before = model.evaluate(texts, labels, verbose=0)

    data = (tf.data.Dataset.from_tensor_slices((texts, labels)).shuffle(len(TRAIN), seed=seed).repeat()
            .batch(batch_size))
    history = model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    loss_after, accuracy_after = model.evaluate(texts, labels, verbose=0)
    _, held_out_accuracy = model.evaluate(held_out_texts, held_out_labels, verbose=0)
    mix_after = {w.name: w.numpy().tolist() for w in encoder.trainable_weights}
    result = {
        "encoder": str(encoder_dir),
        "optimizer": type(optimizer).__name__,
        "learning_rate_schedule": type(optimizer.learning_rate).__name__,
        "steps": int(optimizer.iterations.numpy()),
        "loss_before": float(loss_before), "loss_after": float(loss_after),
        "fit_loss": float(history.history["loss"][-1]),
        "train_accuracy_before": float(accuracy_before), "train_accuracy_after": float(accuracy_after),
        "held_out_accuracy": float(held_out_accuracy),
        "encoder_trainable_weights": {name: {"before": mix_before[name], "after": value}
                                      for name, value in mix_after.items()},
        "encoder_weights_change": max((float(np.max(np.abs(np.subtract(mix_after[n], mix_before[n]))))
                                       for n in mix_after), default=0.0),
        "encoder_frozen_weights": len(encoder.non_trainable_weights),
    }
    if output:
        # The trained classifier as a SavedModel (tf_keras format), loaded back.
        import tensorflow_hub as hub

        model.save(output, include_optimizer=False)
        reloaded = tf_keras.models.load_model(output, custom_objects={"KerasLayer": hub.KerasLayer})
        before = model.predict(held_out_texts, verbose=0)
        after = reloaded.predict(held_out_texts, verbose=0)
        result["saved"] = str(output)
        result["reloaded_max_difference"] = float(np.max(np.abs(before - after)))
    result["held_out_predictions"] = [
        {"text": text, "predicted": LABELS[int(np.argmax(p))], "label": LABELS[label]}
        for (text, label), p in zip(HELD_OUT, model.predict(held_out_texts, verbose=0))]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--savedmodel", help="an ELMo SavedModel folder (default: the bundled model's)")
    parser.add_argument("--options-file", help="original options.json to export first (with --weight-file)")
    parser.add_argument("--weight-file", help="original weights .hdf5 to export first")
    parser.add_argument("--steps", type=int, default=150, help="training steps (default 150)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=0.02, help="peak learning rate (default 0.02)")
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="save the trained classifier here (SavedModel) and reload it")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)
    if (args.options_file is None) != (args.weight_file is None):
        parser.error("--options-file and --weight-file go together")
    if args.savedmodel and args.options_file:
        parser.error("give --savedmodel or --options-file/--weight-file, not both")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="elmo_model_garden_") as work_dir:
        encoder_dir = args.savedmodel or encoder_savedmodel(args.options_file, args.weight_file, work_dir)
        result = run(encoder_dir, steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
                     warmup_steps=args.warmup_steps, seed=args.seed, output=args.output)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"encoder: {result['encoder']}")
    print(f"{result['optimizer']} with {result['learning_rate_schedule']}, {result['steps']} steps")
    print(f"training loss {result['loss_before']:.4f} -> {result['loss_after']:.4f}; training accuracy "
          f"{result['train_accuracy_before']:.2f} -> {result['train_accuracy_after']:.2f}")
    print(f"encoder mix weights changed by up to {result['encoder_weights_change']:.4f} "
          f"({result['encoder_frozen_weights']} biLM variables frozen)")
    print(f"held-out accuracy {result['held_out_accuracy']:.2f} on {len(HELD_OUT)} sentences:")
    for row in result["held_out_predictions"]:
        print(f"  {row['predicted']:8s} ({row['label']}) {row['text']}")
    if "saved" in result:
        print(f"saved to {result['saved']}; reloaded predictions differ by {result['reloaded_max_difference']:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
