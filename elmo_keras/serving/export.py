"""SavedModels for TF Serving and TF Hub users, with the signatures of TF Hub's ELMo.

`export_savedmodel` writes the TF Serving layout `out_dir/<version>/` for a
biLM given by its original files. The SavedModel has the signatures that users
of TF Hub's `google/elmo` know:

- `default` and `serving_default`: `text` tf.string [batch], untokenised
  sentences, split in the graph (on whitespace, as `str.split()`, by default);
- `tokens`: `tokens` tf.string [batch, max_len] padded with "", and
  `sequence_len` int32 [batch];
- `char_ids`: `char_ids` int32 [batch, time, 50], sentence boundaries
  included, as `elmo_keras.batch_to_ids` gives them, for clients that encode
  text themselves.

Every signature returns `word_emb` [batch, len, P] (the char-CNN vector),
`lstm_outputs1` ... `lstm_outputs<n_layers>` [batch, len, 2P], `elmo`
[batch, len, 2P] (a `ScalarMix` of all layers), `default` [batch, 2P] (the
mean of `elmo` over real tokens) and `sequence_len` int32 [batch]. The
sentence boundaries are removed, `len` is the longest sentence of the batch
(`max_len` for `tokens`) and padded positions are exactly 0. The model is
stateless: a sentence's vectors never depend on the rest of the batch or on
earlier calls.

The default export contains only core TensorFlow ops, so it runs in stock TF
Serving. With `tokenizer="whitespace"` or `"punctuation"` the text signatures
split with tensorflow-text instead; the ops that then need `import
tensorflow_text` (or a TF Serving built with them) are returned and written to
`<version>/assets.extra/non_core_ops.json`. TF Serving warm-up requests go to
`<version>/assets.extra/tf_serving_warmup_requests`.

The loaded object is also a Reusable SavedModel (`__call__` on text,
`variables`, `trainable_variables`, `regularization_losses`), so that
`hub.KerasLayer(path, trainable=True)` fine-tunes the mix weights, as TF Hub's
ELMo does with `trainable=True`; the biLM stays frozen.

Example:

>>> import tempfile
>>> import tensorflow as tf
>>> out_dir = tempfile.mkdtemp()
>>> result = export_savedmodel("tests/data/bilm-tf/options.json",
...                            "tests/data/bilm-tf/lm_weights.hdf5", out_dir)
>>> result["signatures"]
['char_ids', 'default', 'serving_default', 'tokens']
>>> result["non_core_ops"]
[]
>>> elmo = tf.saved_model.load(result["export_dir"])
>>> out = elmo.signatures["default"](text=tf.constant(["the cat sat", ""]))
>>> out["elmo"].shape, out["sequence_len"].numpy().tolist()
(TensorShape([2, 3, 32]), [3, 0])

Why not `keras.export.ExportArchive`: it writes every endpoint as a signature
and offers no way to attach a plain `__call__` function and
`regularization_losses`, which `hub.KerasLayer(trainable=True)` requires (it
refuses to fine-tune through a signature). So the functions are attached to a
`tf.train.Checkpoint` root, the object TF Hub's own examples use for Reusable
SavedModels, and saved with `tf.saved_model.save`.

This module builds the served model, checks the arguments and writes the
version directory; the signatures' functions are in
`elmo_keras.serving.signatures`, the warm-up records in
`elmo_keras.serving.warmup` and the op inspection in `elmo_keras.serving.ops`.
"""

import json
import os
import shutil
import tempfile

import keras
import tensorflow as tf

from elmo_keras.arguments import check_non_negative_int
from elmo_keras.io.options import CODE_POINTS
from elmo_keras.models.bilm import get_bilstm
from elmo_keras.models.bilm import get_char_cnn
from elmo_keras.models.bilm_files import load_bilm
from elmo_keras.models.elmo_text_embedder import ElmoTextEmbedder
from elmo_keras.preprocessing.char_dic_ids import model_dictionaries_folder
from elmo_keras.preprocessing.char_dic_ids_tf import char_dic_ids_tf_of_folder
from elmo_keras.preprocessing.char_ids import MAX_CHARACTERS_PER_TOKEN
from elmo_keras.serving.ops import saved_model_non_core_ops, saved_model_op_types
from elmo_keras.serving.signatures import N_CHAR_IDS, TOKENIZERS, sentence_splitter, signature_functions
from elmo_keras.serving.warmup import (WARMUP_FILE, WARMUP_SENTENCES, prediction_log_record, warmup_inputs,
                                       write_warmup_requests)

# The serving API, kept importable from here as before the split into
# signatures, warm-up requests and op inspection.
__all__ = ["N_CHAR_IDS", "NON_CORE_OPS_FILE", "TOKENIZERS", "WARMUP_FILE", "WARMUP_SENTENCES", "build_hub_elmo",
           "export_bilm", "export_savedmodel", "export_with_text_input", "prediction_log_record",
           "saved_model_non_core_ops", "saved_model_op_types", "sentence_splitter", "warmup_inputs",
           "write_warmup_requests"]

NON_CORE_OPS_FILE = os.path.join("assets.extra", "non_core_ops.json")


def build_hub_elmo(bilm, scalar_mix_weights=None, name="hub_elmo"):
    """Wrap a biLM into a Keras model with the outputs of TF Hub's ELMo.

    Args:
        bilm: a stateless biLM model from `elmo_keras.build_bilm` or
            `elmo_keras.load_bilm`.
        scalar_mix_weights: list of `n_layers + 1` floats or None. Start
            values of the mix weights before the softmax (default 0: equal
            weights). They and the scale (start 1) stay trainable.
        name: str. Model name.

    Returns an `ElmoTextEmbedder` with `hub_outputs=True`: it takes
    `char_ids` int32 (batch, time, 50) with sentence boundaries and returns a
    dict: `word_emb`, `lstm_outputs1` ..., `elmo`, `default` and
    `sequence_len` (see the module docstring). Only the head (layer
    `elmo_head`, an `ElmoHead` with one mix) is new and trainable; the biLM
    is shared, not copied, and frozen: no gradient flows into it.

    Example:

    >>> from elmo_keras import batch_to_ids, load_bilm
    >>> bilm = load_bilm("tests/data/bilm-tf/options.json", "tests/data/bilm-tf/lm_weights.hdf5")
    >>> out = build_hub_elmo(bilm)(batch_to_ids([["a", "b"], ["c"]]))
    >>> tuple(out["word_emb"].shape), out["sequence_len"].numpy().tolist()
    ((2, 2, 16), [2, 1])
    """
    bilstm = get_bilstm(bilm)
    if bilstm.stateful:
        raise ValueError("build_hub_elmo needs a stateless biLM: a served model must not carry LSTM "
                         "state from one request to the next. Load it with stateful=False (the default).")
    # The biLM is frozen, as in TF Hub's ELMo. Cutting the gradient (the
    # head's stop_gradient) also keeps fine-tuning through the loaded
    # SavedModel (hub.KerasLayer, trainable=True, inside model.fit) from
    # differentiating the restored LSTM loop, which TF 2.20 cannot do in
    # graph mode ("Tried to take gradients (or similar) of a variable without
    # handle data").
    return ElmoTextEmbedder(bilm, scalar_mix_weights=scalar_mix_weights, hub_outputs=True, name=name)


def _tf_variables(variables):
    """The tf.Variables inside Keras variables.

    The traced functions read the wrapped tf.Variable. Saving the Keras
    wrapper would save a copy of it instead, which TF2 loading links back
    but TF1-style loaders (TF Serving, saved_model_cli run) leave
    uninitialised: "Could not find variable ...".
    """
    return [v.value if isinstance(v, keras.Variable) else v for v in variables]


def _servable(char_ids_fn, variables, trainable_variables, tokenizer, max_chars, token_ids=None):
    """Return the object to save and its signatures.

    The object follows TF Hub's Reusable SavedModel interface: `__call__`
    (the `default` function), `variables`, `trainable_variables` and
    `regularization_losses`. The variable lists also make every captured
    variable part of the SavedModel.
    """
    functions = signature_functions(char_ids_fn, sentence_splitter(tokenizer), max_chars, token_ids)
    root = tf.train.Checkpoint()
    if token_ids is not None:
        root.token_ids = token_ids  # its lookup tables go into the SavedModel
    root.__call__ = functions["default"]
    root.variables = _tf_variables(variables)
    root.trainable_variables = _tf_variables(trainable_variables)
    root.regularization_losses = []
    signatures = {name: function.get_concrete_function() for name, function in functions.items()}
    signatures["serving_default"] = signatures["default"]
    return root, signatures


def _prepare(out_dir, version, tokenizer, overwrite):
    """Check the arguments before any work; return out_dir/<version>."""
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"SavedModel export traces the model with TensorFlow; run it with "
                         f"KERAS_BACKEND=tensorflow (the backend is {keras.backend.backend()!r})")
    sentence_splitter(tokenizer)
    try:
        check_non_negative_int(version, "version")
    except ValueError:
        # Names what the number is for: TF Serving's version directory.
        raise ValueError(f"version must be a non-negative integer (TF Serving's version directory), "
                         f"got {version!r}") from None
    path = os.path.join(os.fspath(out_dir), str(int(version)))
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; TF Serving may be serving it. Export a new "
                              f"version, or pass overwrite=True (--overwrite).")
    return path


def _write_servable(root, signatures, final_dir, tokenizer, max_chars, warmup, token_ids=None):
    """Save, add assets.extra, then move into place; return the non-core ops.

    TF Serving loads any new all-digit directory under its base path, so the
    export is written to a hidden sibling and renamed only when complete.
    """
    parent = os.path.dirname(final_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(final_dir)}.partial-", dir=parent)
    try:
        # mkdtemp makes the directory private (0700); the server may run as
        # another user.
        os.chmod(staging, 0o755)
        tf.saved_model.save(root, staging, signatures=signatures)
        os.makedirs(os.path.join(staging, "assets.extra"), exist_ok=True)
        non_core = saved_model_non_core_ops(staging)
        with open(os.path.join(staging, NON_CORE_OPS_FILE), "w", encoding="utf-8") as f:
            json.dump({"tokenizer": tokenizer, "non_core_ops": non_core}, f, indent=1)
        if warmup:
            write_warmup_requests(os.path.join(staging, WARMUP_FILE), max_chars, token_ids=token_ids)
        if os.path.exists(final_dir):
            shutil.rmtree(final_dir)
        os.rename(staging, final_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return non_core


def _export(char_ids_fn, variables, trainable_variables, final_dir, tokenizer, max_chars, warmup, token_ids=None):
    root, signatures = _servable(char_ids_fn, variables, trainable_variables, tokenizer, max_chars, token_ids)
    non_core = _write_servable(root, signatures, final_dir, tokenizer, max_chars, warmup, token_ids)
    return {
        "export_dir": final_dir,
        "version": int(os.path.basename(final_dir)),
        "tokenizer": tokenizer,
        "signatures": sorted(signatures),
        "non_core_ops": non_core,
        "warmup_requests": os.path.join(final_dir, WARMUP_FILE) if warmup else None,
    }


def export_bilm(bilm, out_dir, version=1, tokenizer="core", scalar_mix_weights=None, warmup=True,
                overwrite=False, token_ids=None):
    """Export a loaded biLM as a SavedModel with TF Hub ELMo's signatures.

    Args:
        bilm: a stateless biLM model (`elmo_keras.load_bilm`).
        out_dir: str. TF Serving's model base path; the export goes to
            `out_dir/<version>/`.
        version: int. The version directory.
        tokenizer: "core", "whitespace" or "punctuation": how the text
            signatures split sentences (see `sentence_splitter`).
        scalar_mix_weights: list of floats or None. Start values of the
            `elmo` mix weights (see `build_hub_elmo`).
        warmup: bool. Write TF Serving warm-up requests.
        overwrite: bool. Replace an existing `out_dir/<version>`.
        token_ids: None, or for an imported ELMoForManyLangs model the
            `CharDicIdsTF` of its dictionaries (`export_savedmodel` reads
            them beside the options file), which the text signatures use.

    Returns a dict: `export_dir`, `version`, `tokenizer`, `signatures`,
    `non_core_ops` (empty for "core") and `warmup_requests` (path or None).

    Raises:
        FileExistsError: the version exists and `overwrite` is False.
        ValueError: a stateful biLM, a bad version or tokenizer, a Keras
            backend other than TensorFlow.
        ImportError: a tensorflow-text tokenizer without tensorflow-text.
    """
    trainable = bilm.trainable
    try:
        # An ElmoTextEmbedder: its trainable variables are the mix's only.
        model = build_hub_elmo(bilm, scalar_mix_weights)
        cnn = get_char_cnn(bilm)
        if getattr(cnn, "word_dim", 0) and token_ids is None:
            raise ValueError("export_bilm: this biLM reads ELMoForManyLangs' ids (a word embedding): pass "
                             "token_ids, the CharDicIdsTF of its char.dic and word.dic")
        return export_with_text_input(model, out_dir, version=version, tokenizer=tokenizer, warmup=warmup,
                                      overwrite=overwrite, max_characters_per_token=cnn.max_characters_per_token,
                                      token_ids=token_ids)
    finally:
        bilm.trainable = trainable  # the embedder froze the caller's biLM


def export_savedmodel(options_file, weight_file, out_dir, version=1, tokenizer="core",
                      scalar_mix_weights=None, warmup=True, overwrite=False):
    """Export the biLM of the original files; see `export_bilm` for the arguments.

    Example:

        export_savedmodel("options.json", "weights.hdf5", "savedmodels/elmo")
        # then: docker run -p 8501:8501 \\
        #   -v $PWD/savedmodels/elmo:/models/elmo -e MODEL_NAME=elmo tensorflow/serving
    """
    _prepare(out_dir, version, tokenizer, overwrite)  # Fail before loading the weights.
    bilm = load_bilm(options_file, weight_file)
    token_ids = None
    if bilm.options.char_cnn.characters == CODE_POINTS:  # an imported ELMoForManyLangs model
        token_ids = char_dic_ids_tf_of_folder(model_dictionaries_folder(options_file),
                                              bilm.options.char_cnn.max_characters_per_token)
    return export_bilm(bilm, out_dir, version=version, tokenizer=tokenizer,
                       scalar_mix_weights=scalar_mix_weights, warmup=warmup, overwrite=overwrite,
                       token_ids=token_ids)


def _named_outputs(outputs, names):
    """A model's outputs as the dict a signature returns."""
    if isinstance(outputs, dict):
        return dict(outputs)
    flat = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    if not names or len(names) != len(flat):
        names = [f"output_{k}" for k in range(len(flat))]
    return dict(zip(names, flat))


def export_with_text_input(model, out_dir, version=1, tokenizer="core", warmup=True, overwrite=False,
                           max_characters_per_token=MAX_CHARACTERS_PER_TOKEN, token_ids=None):
    """Export a downstream Keras model on char ids so that it takes raw text.

    The model (e.g. an `Elmo` layer and a classifier) takes `char_ids` int32
    (batch, time, 50) with sentence boundaries, as `batch_to_ids` gives. The
    SavedModel gets the `default`/`serving_default` (text), `tokens` and
    `char_ids` signatures of `export_bilm`, with the character encoding in
    the graph; their outputs are the model's, named after its outputs.
    The model runs in inference mode (no dropout).

    Args:
        model: a Keras model taking char ids.
        out_dir, version, tokenizer, warmup, overwrite: as in `export_bilm`.
        max_characters_per_token: int. The model's characters per token.
        token_ids: None, or the `CharDicIdsTF` of an ELMoForManyLangs model
            (its ids have one more slot, the word id).

    Returns the dict of `export_bilm`.

    Example:

    >>> import keras, tempfile
    >>> from elmo_keras import Elmo
    >>> char_ids = keras.Input((None, 50), dtype="int32")
    >>> elmo = Elmo.from_files("tests/data/bilm-tf/options.json", "tests/data/bilm-tf/lm_weights.hdf5")
    >>> out = elmo(char_ids)
    >>> pooled = keras.layers.GlobalAveragePooling1D()(out["elmo_representations"][0], mask=out["mask"])
    >>> model = keras.Model(char_ids, keras.layers.Dense(2, name="label")(pooled))
    >>> export_with_text_input(model, tempfile.mkdtemp())["signatures"]
    ['char_ids', 'default', 'serving_default', 'tokens']
    """
    final_dir = _prepare(out_dir, version, tokenizer, overwrite)
    names = getattr(model, "output_names", None)

    def char_ids_fn(char_ids):
        return _named_outputs(model(char_ids, training=False), names)

    return _export(char_ids_fn, model.variables, model.trainable_variables, final_dir, tokenizer,
                   max_characters_per_token, warmup, token_ids)
