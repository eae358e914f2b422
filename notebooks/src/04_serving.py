# %% [markdown]
# # Serving ELMo: TF Serving and TF Hub-style use
#
# `elmo_keras.serving.export.export_savedmodel` turns a biLM (its `options.json` + weights `.hdf5`) into a
# TensorFlow SavedModel with the signatures of TF Hub's `google/elmo`. Loading and serving it needs only
# TensorFlow: not `elmo_keras`, not Keras. This notebook exports the package's bundled model, looks at the
# SavedModel as TF Serving and `saved_model_cli` see it, calls its signatures as a client would, and uses it
# through `tensorflow_hub`. The details are in `docs/serving.md`.

# %% setup

# %%
os.environ["KERAS_BACKEND"] = "tensorflow"  # the export traces the model with TensorFlow
import json
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from elmo_keras import batch_to_ids
from elmo_keras.serving.export import export_savedmodel

tf.get_logger().setLevel("WARNING")  # no "Assets written to ..." from tf.saved_model.save

WORK = pathlib.Path(tempfile.mkdtemp(prefix="elmo_keras_serving_"))
result = export_savedmodel(MODEL_OPTIONS, MODEL_WEIGHTS, WORK / "elmo")
export_dir = pathlib.Path(result["export_dir"])
print(json.dumps({key: str(pathlib.Path(value).relative_to(WORK)) if key in ("export_dir", "warmup_requests")
                  else value for key, value in result.items()}, indent=1))
for path in sorted(export_dir.rglob("*")):
    print("  ", path.relative_to(WORK), "" if path.is_dir() else f"({path.stat().st_size} bytes)")

# %% [markdown]
# The layout is TF Serving's: a model base path (`elmo/`) with one folder per version (`1/`). TF Serving
# runs the warm-up requests in `assets.extra/` once after loading. `non_core_ops` is empty: the graph uses
# only core TensorFlow ops (the text is split on whitespace in the graph), so stock TF Serving runs it.
#
# ## `saved_model_cli show`
#
# What TF Serving will offer: four signatures (`serving_default` is `default`), their inputs and outputs.
# In a terminal: `saved_model_cli show --all --dir elmo/1`.

# %%
import subprocess

cli = shutil.which("saved_model_cli") or str(pathlib.Path(sys.executable).with_name("saved_model_cli"))
shown = subprocess.run([cli, "show", "--all", "--dir", str(export_dir)], capture_output=True, text=True,
                       check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
print(shown.stdout)

# %% [markdown]
# ## The signatures, from Python
#
# `tf.saved_model.load` loads what TF Serving serves; its signatures are what a client calls. `default`
# takes untokenised sentences (`text`, a string per sentence); `tokens` takes sentences already split,
# padded with `""`, and their lengths; `char_ids` takes the character ids of `elmo_keras.batch_to_ids`.
# All return the same outputs: `word_emb` (the char-CNN vector), `lstm_outputs1`, `lstm_outputs2`, `elmo`
# (a learned mix of the three layers), `default` (the mean of `elmo` over the sentence's tokens) and
# `sequence_len`.

# %%
elmo = tf.saved_model.load(str(export_dir))
print("signatures:", sorted(elmo.signatures))
sentences = ["the cat sat on the mat", "the bank raised rates"]
by_text = elmo.signatures["default"](text=tf.constant(sentences))
for key, value in sorted(by_text.items()):
    print(f"  {key:14s} {value.dtype.name:8s} {tuple(value.shape)}")

# %%
tokens = [s.split() for s in sentences]
max_len = max(len(t) for t in tokens)
by_tokens = elmo.signatures["tokens"](
    tokens=tf.constant([t + [""] * (max_len - len(t)) for t in tokens]),
    sequence_len=tf.constant([len(t) for t in tokens], dtype=tf.int32))
by_char_ids = elmo.signatures["char_ids"](char_ids=tf.constant(batch_to_ids(tokens)))
print("tokens signature:", {key: tuple(value.shape) for key, value in sorted(by_tokens.items())})
print("tokens and char_ids signatures give the text signature's vectors:",
      all(np.allclose(by_text[key], other[key], atol=1e-6) for key in by_text for other in (by_tokens, by_char_ids)))
print("sequence_len:", by_text["sequence_len"].numpy().tolist(),
      "; padding is 0:", bool(np.all(by_text["elmo"].numpy()[1, 4:] == 0)))

# %% [markdown]
# ## TF Serving's REST API
#
# Serve the base path with the TF Serving container (not run here):
#
# ```bash
# docker run -p 8501:8501 -v $PWD/elmo:/models/elmo -e MODEL_NAME=elmo tensorflow/serving
# ```
#
# A client POSTs JSON to `http://localhost:8501/v1/models/elmo:predict`, e.g. with
# `requests.post(url, json=request).json()`. The request, in TF Serving's "row" format (one instance per
# sentence):

# %%
request = {"signature_name": "default", "instances": ["the cat sat"]}
print(json.dumps(request))

# %% [markdown]
# The server runs the `default` signature and answers one object per instance, with every output for
# that sentence (its row of each output). The same computation through the loaded SavedModel, written in
# the server's response format (rounded to 4 decimals; the server sends full precision). Printed here with
# the first 3 values of each vector and a note of how many the server sends:

# %%
def rest_response(signature, request, decimals=4):
    """TF Serving's row-format answer to `request`, computed with a loaded signature."""
    outputs = signature(text=tf.constant(request["instances"]))
    rows = [{key: np.round(value[k].numpy().astype(np.float64), decimals).tolist()
             if value.dtype.is_floating else value[k].numpy().tolist() for key, value in sorted(outputs.items())}
            for k in range(len(request["instances"]))]
    return {"predictions": rows}


def to_json(value, indent=0, max_values=3):
    """JSON with each innermost list on one line (as in docs/serving.md), cut to its first `max_values`."""
    pad = " " * indent
    if isinstance(value, dict):
        items = [f'{pad}  "{key}": {to_json(item, indent + 2, max_values)}' for key, item in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value and isinstance(value[0], (list, dict)):
        return ("[\n" + ",\n".join(f"{pad}  {to_json(item, indent + 2, max_values)}" for item in value)
                + f"\n{pad}]")
    if isinstance(value, list) and len(value) > max_values:
        return json.dumps(value[:max_values])[:-1] + f", ... {len(value)} values]"
    return json.dumps(value)


response = rest_response(elmo.signatures["default"], request)
print(to_json(response))
row = response["predictions"][0]
print("shapes:", {key: np.shape(value) for key, value in row.items()})

# %% [markdown]
# The package ships this model's SavedModel too, exported when the model was trained (next to its
# `options.json`, in `savedmodel/1/`). The export made here gives the same answer:

# %%
shipped = tf.saved_model.load(str(MODEL_DIR / "savedmodel" / "1"))
shipped_response = rest_response(shipped.signatures["default"], request)["predictions"][0]
difference = max(float(np.max(np.abs(np.subtract(row[key], shipped_response[key])))) for key in row)
print(f"largest difference to the shipped SavedModel: {difference:.1e}")
assert difference <= 1e-4

# %% [markdown]
# The `tokens` signature takes two inputs per instance; the "columnar" format sends each input whole:

# %%
tokens_request = {"signature_name": "tokens",
                  "inputs": {"tokens": [["the", "cat", "sat"], ["ELMo", "", ""]], "sequence_len": [3, 1]}}
outputs = elmo.signatures["tokens"](tokens=tf.constant(tokens_request["inputs"]["tokens"]),
                                    sequence_len=tf.constant(tokens_request["inputs"]["sequence_len"]))
print(json.dumps(tokens_request))
print("answer: {\"outputs\": {" + ", ".join(f'"{key}": <{list(value.shape)} values>'
                                             for key, value in sorted(outputs.items())) + "}}")

# %% [markdown]
# ## TF Hub users
#
# Code written for TF Hub's ELMo works with the exported folder in place of the hub address.
# `hub.KerasLayer` is built on tf_keras (Keras 2), which `tensorflow_hub` installs: use it in tf_keras
# models.

# %%
import tensorflow_hub as hub

layer = hub.KerasLayer(str(export_dir), signature="default", output_key="elmo")
vectors = layer(tf.constant(sentences))
print("hub.KerasLayer(..., signature='default', output_key='elmo'):", tuple(vectors.shape))
print("same as the signature:", bool(np.allclose(vectors, by_text["elmo"], atol=1e-6)))

# %% [markdown]
# In a tf_keras model on raw strings, e.g. a sentence classifier on the `default` (mean) vector:

# %%
import tf_keras

text = tf_keras.Input(shape=[], dtype=tf.string, name="text")
sentence_vector = hub.KerasLayer(str(export_dir), signature="default", output_key="default")(text)
classifier = tf_keras.Model(text, tf_keras.layers.Dense(2, activation="softmax")(sentence_vector))
classifier.summary()
print(classifier.predict(tf.constant(sentences), verbose=0).shape)

# %% [markdown]
# `hub.KerasLayer(path, trainable=True, output_key="default")` (no `signature`) also trains the mix
# weights and scale of `elmo`, as `trainable=True` did with TF Hub's ELMo; the biLM stays frozen. A
# downstream Keras 3 model on `char_ids` (e.g. the classifier of `02_finetune.ipynb`) is exported with text
# input by `elmo_keras.serving.export.export_with_text_input(model, out_dir)`.
