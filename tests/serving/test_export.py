"""SavedModel export: TF Hub ELMo's signatures, TF Serving layout, use without elmo_keras.

Each SavedModel is exported once per module. The checks that must not see
elmo_keras (loading, calling every signature, walking the graph's ops) run in
one fresh interpreter; `saved_model_cli` runs beside it.
"""

import contextlib
import io
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS  # noqa: E402
from reference_bilm import batching_tolerance  # noqa: E402

from elmo_keras import ElmoEmbedder, batch_to_ids  # noqa: E402
from elmo_keras.cli import main  # noqa: E402
from elmo_keras.models.bilm_files import load_bilm  # noqa: E402
from elmo_keras.preprocessing.tokenize import tokenize_punctuation  # noqa: E402
from elmo_keras.serving import export  # noqa: E402

DOC = pathlib.Path(__file__).parents[2] / "docs" / "serving.md"
P = 16  # projection_dim of the fixture model

# Text where serving can go wrong: an empty sentence, runs of whitespace,
# non-ASCII, a 60-byte token, a 49-byte token cut inside "é", literal <S>.
TEXTS = [
    "the cat sat",
    "",
    "  multiple   spaces\tand\ttabs  ",
    "café naïve 日本語 😀",
    "x" * 60 + " " + "a" * 47 + "é end",
    "<S> literal </S>",
]
TOKENS = [text.split() for text in TEXTS]
# SavedModel against ElmoEmbedder: two float32 evaluations of the fixture model, in other graphs and
# shapes: batching_tolerance (10x the reference's float32 drift) on these sentences, ~3e-6.
ATOL = batching_tolerance(FIXTURE_OPTIONS, FIXTURE_WEIGHTS,
                          (*map(tuple, TOKENS), tuple("the cat sat on the mat".split()), ("a", "dog")))
# ASCII only: here the tensorflow-text split and tokenize_punctuation agree.
PUNCTUATION_TEXTS = ["Hello, world!", "don't (stop)", ""]
SIGNATURES = ["char_ids", "default", "serving_default", "tokens"]


def padded(sentences):
    """[batch, max_len] tokens padded with "" and the lengths, as plain lists."""
    max_len = max(len(s) for s in sentences)
    return [s + [""] * (max_len - len(s)) for s in sentences], [len(s) for s in sentences]


@pytest.fixture(scope="module")
def core_export(tmp_path_factory):
    """The default export, made through the `elmo-keras export` command."""
    out_dir = tmp_path_factory.mktemp("savedmodels") / "elmo"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["export", "--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS,
                     str(out_dir), "--version", "3"])
    assert code == 0
    return json.loads(stdout.getvalue())


@pytest.fixture(scope="module")
def text_export(tmp_path_factory):
    pytest.importorskip("tensorflow_text")
    out_dir = tmp_path_factory.mktemp("savedmodels") / "elmo_punctuation"
    return export.export_savedmodel(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, str(out_dir), tokenizer="punctuation")


@pytest.fixture(scope="module")
def embedder():
    return ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)


@pytest.fixture(scope="module")
def loaded(core_export):
    return tf.saved_model.load(core_export["export_dir"])


# Runs in a fresh interpreter where elmo_keras cannot be imported, as on a
# serving machine: load the SavedModels, call every signature, list the ops.
FRESH_SCRIPT = r"""
import json, sys
sys.modules["elmo_keras"] = None  # every `import elmo_keras` now fails
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

core_dir, text_dir, spec_path, out_prefix = sys.argv[1:]
with open(spec_path) as f:
    spec = json.load(f)
report, outputs = {}, {}
try:
    import elmo_keras
    report["elmo_keras_importable"] = True
except ImportError:
    report["elmo_keras_importable"] = False


def op_types(export_dir):
    saved_model = saved_model_pb2.SavedModel()
    with open(export_dir + "/saved_model.pb", "rb") as f:
        saved_model.ParseFromString(f.read())
    types, functions = set(), set()
    for meta_graph in saved_model.meta_graphs:
        types.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            functions.add(function.signature.name)
            types.update(node.op for node in function.node_def)
    types -= functions
    return sorted(types), sorted(t for t in types if not hasattr(tf.raw_ops, t))


def keep(prefix, result):
    for name, value in result.items():
        outputs[prefix + "__" + name] = value.numpy()


elmo = tf.saved_model.load(core_dir)
report["signatures"] = sorted(elmo.signatures)
report["core_ops"], report["core_non_core_ops"] = op_types(core_dir)
text = tf.constant(spec["texts"])
keep("default", elmo.signatures["default"](text=text))
keep("default_again", elmo.signatures["default"](text=text))
keep("serving_default", elmo.signatures["serving_default"](text=text))
keep("call", elmo(text))
keep("tokens", elmo.signatures["tokens"](tokens=tf.constant(spec["tokens"]),
                                          sequence_len=tf.constant(spec["sequence_len"], tf.int32)))
keep("char_ids", elmo.signatures["char_ids"](char_ids=tf.constant(spec["char_ids"], tf.int32)))
if text_dir:
    try:
        tf.saved_model.load(text_dir)
        report["text_load_without_tensorflow_text"] = "loaded"
    except Exception as error:
        report["text_load_without_tensorflow_text"] = type(error).__name__ + ": " + str(error)
    import tensorflow_text  # registers the ops the export lists
    text_model = tf.saved_model.load(text_dir)
    report["text_non_core_ops"] = op_types(text_dir)[1]
    keep("text_default", text_model.signatures["default"](text=tf.constant(spec["punctuation_texts"])))
np.savez(out_prefix + ".npz", **outputs)
with open(out_prefix + ".json", "w") as f:
    json.dump(report, f)
"""


def _start(args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process, timeout=240):
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]
    return stdout


@pytest.fixture(scope="module")
def outside(core_export, text_export, tmp_path_factory):
    """Results of the fresh interpreter and of `saved_model_cli`, run in parallel."""
    work = tmp_path_factory.mktemp("outside")
    tokens, lengths = padded(TOKENS)
    spec = {"texts": TEXTS, "tokens": tokens, "sequence_len": lengths,
            "char_ids": batch_to_ids(TOKENS).tolist(), "punctuation_texts": PUNCTUATION_TEXTS}
    (work / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    core_dir, text_dir = core_export["export_dir"], text_export["export_dir"]
    # -I: no PYTHONPATH, no user site, no cwd on sys.path; cwd outside the repository.
    fresh = _start([sys.executable, "-I", "-c", FRESH_SCRIPT, core_dir, text_dir, str(work / "spec.json"),
                    str(work / "fresh")], cwd=work)
    show = _start(["saved_model_cli", "show", "--all", "--dir", core_dir], cwd=work)
    run = _start(["saved_model_cli", "run", "--dir", core_dir, "--tag_set", "serve", "--signature_def",
                  "default", "--input_exprs", 'text=["a b c"]'], cwd=work)
    results = {"show": _finish(show), "run": _finish(run)}
    _finish(fresh)
    results["report"] = json.loads((work / "fresh.json").read_text())
    with np.load(work / "fresh.npz") as data:
        results["outputs"] = {key: data[key] for key in data.files}
    return results


def outputs_of(results, prefix):
    return {key.split("__", 1)[1]: value for key, value in results["outputs"].items()
            if key.startswith(prefix + "__")}


def expected_outputs(embedder, sentences):
    """TF Hub ELMo outputs built from ElmoEmbedder's layers, zero-padded."""
    max_len = max(len(s) for s in sentences)
    batch = len(sentences)
    expected = {"word_emb": np.zeros((batch, max_len, P), np.float32),
                "lstm_outputs1": np.zeros((batch, max_len, 2 * P), np.float32),
                "lstm_outputs2": np.zeros((batch, max_len, 2 * P), np.float32),
                "elmo": np.zeros((batch, max_len, 2 * P), np.float32),
                "default": np.zeros((batch, 2 * P), np.float32),
                "sequence_len": np.array([len(s) for s in sentences], np.int32)}
    for k, sentence in enumerate(sentences):
        n = len(sentence)
        layers = embedder.embed_sentence(sentence)
        expected["word_emb"][k, :n] = layers[0, :, :P]
        expected["lstm_outputs1"][k, :n] = layers[1]
        expected["lstm_outputs2"][k, :n] = layers[2]
        # softmax(0, 0, 0) = 1/3 each, scale 1.
        expected["elmo"][k, :n] = layers.mean(axis=0)
        if n:
            expected["default"][k] = layers.mean(axis=0).mean(axis=0)
    return expected


def assert_hub_outputs(got, expected, lengths):
    assert sorted(got) == sorted(expected)
    for name, want in expected.items():
        value = np.asarray(got[name])
        assert value.shape == want.shape, name
        if name == "sequence_len":
            assert value.dtype == np.int32
            np.testing.assert_array_equal(value, want)
            continue
        np.testing.assert_allclose(value, want, rtol=0, atol=ATOL, err_msg=name)
        if value.ndim == 3:
            for k, n in enumerate(lengths):
                assert np.all(value[k, n:] == 0), f"{name}: row {k} padding is not exactly 0"


@pytest.mark.slow
def test_fresh_interpreter_matches_embedder(outside, embedder):
    report = outside["report"]
    assert report["elmo_keras_importable"] is False
    assert report["signatures"] == SIGNATURES
    got = outputs_of(outside, "default")
    assert got["elmo"].shape == (len(TEXTS), max(len(t) for t in TOKENS), 2 * P)
    assert_hub_outputs(got, expected_outputs(embedder, TOKENS), [len(t) for t in TOKENS])


@pytest.mark.slow
def test_all_signatures_agree_and_calls_are_deterministic(outside):
    default = outputs_of(outside, "default")
    # char_ids from numpy batch_to_ids give what the in-graph encoder gives.
    for prefix in ["default_again", "serving_default", "call", "tokens", "char_ids"]:
        other = outputs_of(outside, prefix)
        assert sorted(other) == sorted(default), prefix
        for name in default:
            np.testing.assert_array_equal(other[name], default[name], err_msg=f"{prefix}/{name}")


@pytest.mark.slow
def test_default_export_has_only_core_ops(outside, core_export):
    report = outside["report"]
    # The walk covers function bodies (string splitting, the LSTM loop), not
    # just the top-level graph.
    assert {"StringSplitV2", "DecodePaddedRaw", "EnsureShape", "While", "Conv2D"} <= set(report["core_ops"])
    assert report["core_non_core_ops"] == []
    assert core_export["non_core_ops"] == []
    assert export.saved_model_non_core_ops(core_export["export_dir"]) == []
    recorded = json.loads((pathlib.Path(core_export["export_dir"]) / export.NON_CORE_OPS_FILE).read_text())
    assert recorded == {"tokenizer": "core", "non_core_ops": []}


@pytest.mark.slow
def test_tensorflow_text_export_lists_its_ops_and_loads_after_import(outside, text_export, embedder):
    report = outside["report"]
    assert text_export["non_core_ops"] == ["RegexSplitWithOffsets"]
    assert report["text_non_core_ops"] == ["RegexSplitWithOffsets"]
    recorded = json.loads((pathlib.Path(text_export["export_dir"]) / export.NON_CORE_OPS_FILE).read_text())
    assert recorded == {"tokenizer": "punctuation", "non_core_ops": ["RegexSplitWithOffsets"]}
    assert "RegexSplitWithOffsets" in report["text_load_without_tensorflow_text"]
    sentences = [tokenize_punctuation(text) for text in PUNCTUATION_TEXTS]
    assert_hub_outputs(outputs_of(outside, "text_default"), expected_outputs(embedder, sentences),
                       [len(s) for s in sentences])


@pytest.mark.slow
def test_saved_model_cli_show_and_run(outside):
    show = outside["show"]
    for name in ["signature_def['default']", "signature_def['serving_default']", "signature_def['tokens']",
                 "signature_def['char_ids']", "inputs['text']", "inputs['sequence_len']",
                 "outputs['word_emb']", "outputs['lstm_outputs1']", "outputs['lstm_outputs2']",
                 "outputs['elmo']", "outputs['default']", "outputs['sequence_len']"]:
        assert name in show, name
    run = outside["run"]
    for name in ["word_emb", "lstm_outputs1", "lstm_outputs2", "elmo", "default", "sequence_len"]:
        assert f"Result for output key {name}:" in run
    assert re.search(r"Result for output key sequence_len:\s*\[3\]", run)


def test_version_layout(core_export):
    export_dir = pathlib.Path(core_export["export_dir"])
    assert export_dir.name == "3" and core_export["version"] == 3
    assert (export_dir / "saved_model.pb").is_file() and (export_dir / "variables").is_dir()
    assert (export_dir / export.WARMUP_FILE).is_file()
    # Nothing half-written is left beside the version TF Serving watches.
    assert [p.name for p in export_dir.parent.iterdir()] == ["3"]
    assert export_dir.stat().st_mode & 0o777 == 0o755


def test_existing_version_is_refused(core_export, capsys):
    out_dir = str(pathlib.Path(core_export["export_dir"]).parent)
    code = main(["export", "--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS, out_dir,
                 "--version", "3"])
    assert code == 1
    assert "3 already exists" in capsys.readouterr().err


def _signature_inputs():
    return {
        "text wrong dtype": ("default", lambda: {"text": tf.constant([1, 2])},
                             "expected to be a string tensor but is a int32 tensor"),
        "text rank 2": ("default", lambda: {"text": tf.constant([["a b"]])},
                        r"Shape of tensor text \[1,1\] is not compatible with expected shape \[\?\]"),
        "text scalar": ("default", lambda: {"text": tf.constant("a b")},
                        r"Shape of tensor text \[\] is not compatible with expected shape \[\?\]"),
        "tokens rank 1": ("tokens", lambda: {"tokens": tf.constant(["a", "b"]),
                                             "sequence_len": tf.constant([2])},
                          r"Shape of tensor tokens \[2\] is not compatible with expected shape \[\?,\?\]"),
        "sequence_len too long": ("tokens", lambda: {"tokens": tf.constant([["a", "b"]]),
                                                     "sequence_len": tf.constant([3])},
                                  "sequence_len must be <= max_len"),
        "sequence_len negative": ("tokens", lambda: {"tokens": tf.constant([["a"]]),
                                                     "sequence_len": tf.constant([-1])},
                                  "sequence_len must be >= 0"),
        "sequence_len batch": ("tokens", lambda: {"tokens": tf.constant([["a"], ["b"]]),
                                                  "sequence_len": tf.constant([1])},
                               "sequence_len must have one entry per row"),
        "sequence_len int64": ("tokens", lambda: {"tokens": tf.constant([["a"]]),
                                                  "sequence_len": tf.constant([1], tf.int64)},
                               "expected to be a int32 tensor but is a int64 tensor"),
        "char_ids width": ("char_ids", lambda: {"char_ids": tf.ones([1, 3, 49], tf.int32)},
                           r"Shape of tensor char_ids \[1,3,49\] is not compatible with expected shape "
                           r"\[\?,\?,50\]"),
        "char_ids range": ("char_ids", lambda: {"char_ids": tf.fill([1, 3, 50], 300)},
                           r"char_ids must be in \[0, 262\)"),
        "char_ids negative": ("char_ids", lambda: {"char_ids": tf.fill([1, 3, 50], -1)},
                              r"char_ids must be in \[0, 262\)"),
        "char_ids no boundaries": ("char_ids", lambda: {"char_ids": tf.ones([1, 1, 50], tf.int32)},
                                   r"time >= 2"),
    }


@pytest.mark.parametrize("case", sorted(_signature_inputs()))
def test_bad_input_is_a_clear_error_and_the_model_keeps_working(loaded, case):
    signature, make_inputs, message = _signature_inputs()[case]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures[signature](**make_inputs())
    after = loaded.signatures["default"](text=tf.constant(["still fine"]))
    assert after["sequence_len"].numpy().tolist() == [2]


def test_empty_batch_and_all_empty_sentences(loaded):
    empty = loaded.signatures["default"](text=tf.constant([], tf.string))
    assert empty["elmo"].shape == (0, 0, 2 * P) and empty["default"].shape == (0, 2 * P)
    blank = loaded.signatures["default"](text=tf.constant(["", " \t "]))
    assert blank["word_emb"].shape == (2, 0, P) and blank["sequence_len"].numpy().tolist() == [0, 0]
    assert np.all(blank["default"].numpy() == 0)  # no token to average: 0, not NaN


def _prediction_log_class():
    """PredictionLog, declared here from the TF Serving .proto field numbers.

    Independent of the hand encoder in `export`: protobuf itself parses.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from tensorflow.core.framework import tensor_pb2

    pool, added = descriptor_pool.DescriptorPool(), set()

    def add(file_descriptor):
        for dependency in file_descriptor.dependencies:
            add(dependency)
        if file_descriptor.name not in added:
            proto = descriptor_pb2.FileDescriptorProto()
            file_descriptor.CopyToProto(proto)
            pool.Add(proto)
            added.add(file_descriptor.name)

    add(tensor_pb2.TensorProto.DESCRIPTOR.file)
    field = descriptor_pb2.FieldDescriptorProto
    optional, repeated = field.LABEL_OPTIONAL, field.LABEL_REPEATED
    proto = descriptor_pb2.FileDescriptorProto(name="test/prediction_log.proto", package="tensorflow.serving",
                                               syntax="proto3",
                                               dependency=["tensorflow/core/framework/tensor.proto"])
    spec = proto.message_type.add(name="ModelSpec")
    spec.field.add(name="name", number=1, type=field.TYPE_STRING, label=optional)
    spec.field.add(name="signature_name", number=3, type=field.TYPE_STRING, label=optional)
    request = proto.message_type.add(name="PredictRequest")
    request.field.add(name="model_spec", number=1, type=field.TYPE_MESSAGE, label=optional,
                      type_name=".tensorflow.serving.ModelSpec")
    entry = request.nested_type.add(name="InputsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=optional)
    entry.field.add(name="value", number=2, type=field.TYPE_MESSAGE, label=optional,
                    type_name=".tensorflow.TensorProto")
    request.field.add(name="inputs", number=2, type=field.TYPE_MESSAGE, label=repeated,
                      type_name=".tensorflow.serving.PredictRequest.InputsEntry")
    log = proto.message_type.add(name="PredictLog")
    log.field.add(name="request", number=1, type=field.TYPE_MESSAGE, label=optional,
                  type_name=".tensorflow.serving.PredictRequest")
    prediction_log = proto.message_type.add(name="PredictionLog")
    prediction_log.oneof_decl.add(name="log_type")
    prediction_log.field.add(name="predict_log", number=6, type=field.TYPE_MESSAGE, label=optional,
                             type_name=".tensorflow.serving.PredictLog", oneof_index=0)
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.PredictionLog"))


def test_warmup_requests_parse_and_run(core_export, loaded):
    from tensorflow.core.framework import tensor_pb2

    prediction_log = _prediction_log_class()
    records = [r.numpy() for r in tf.data.TFRecordDataset(core_export["warmup_requests"])]
    requests = {}
    for record in records:
        log = prediction_log.FromString(record)
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        assert request.model_spec.name == "elmo"
        inputs = {key: tf.make_ndarray(tensor_pb2.TensorProto.FromString(value.SerializeToString()))
                  for key, value in request.inputs.items()}
        requests[request.model_spec.signature_name] = inputs
    assert sorted(requests) == SIGNATURES
    sentences = [list(s) for s in export.WARMUP_SENTENCES]
    assert requests["default"]["text"].tolist() == [b"the cat sat on the mat", b"ELMo"]
    assert requests["tokens"]["sequence_len"].tolist() == [6, 1]
    assert requests["tokens"]["tokens"].shape == (2, 6) and requests["tokens"]["tokens"][1, 1] == b""
    np.testing.assert_array_equal(requests["char_ids"]["char_ids"], batch_to_ids(sentences))
    # Replayed as TF Serving does after loading: every request runs.
    for signature, inputs in requests.items():
        out = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        assert out["sequence_len"].numpy().tolist() == [6, 1], signature


def test_hub_users_call_it_as_tf_hub_elmo(core_export, embedder):
    hub = pytest.importorskip("tensorflow_hub")
    tf_keras = pytest.importorskip("tf_keras")
    path = core_export["export_dir"]
    sentences = ["the cat sat on the mat", "a dog"]
    tokens = [s.split() for s in sentences]
    expected = expected_outputs(embedder, tokens)
    lengths = [len(t) for t in tokens]
    elmo = hub.load(path)
    assert_hub_outputs(elmo.signatures["default"](text=tf.constant(sentences)), expected, lengths)
    layer = hub.KerasLayer(path, signature="default", output_key="elmo")
    np.testing.assert_allclose(layer(tf.constant(sentences)), expected["elmo"], rtol=0, atol=ATOL)
    as_dict = hub.KerasLayer(path, signature="default", signature_outputs_as_dict=True)
    assert_hub_outputs(as_dict(tf.constant(sentences)), expected, lengths)
    # On a symbolic input inside a tf_keras functional model: what broke
    # with TF Hub's ELMo in TF2.
    text = tf_keras.Input(shape=[], dtype=tf.string)
    vector = hub.KerasLayer(path, signature="default", output_key="default")(text)
    model = tf_keras.Model(text, tf_keras.layers.Dense(2)(vector))
    assert model.predict(tf.constant(sentences), verbose=0).shape == (2, 2)


def test_hub_keras_layer_fine_tunes_only_the_mix(core_export):
    hub = pytest.importorskip("tensorflow_hub")
    tf_keras = pytest.importorskip("tf_keras")
    layer = hub.KerasLayer(core_export["export_dir"], trainable=True, output_key="default")
    assert sorted(tuple(w.shape) for w in layer.trainable_weights) == [(), (3,)]
    assert len(layer.non_trainable_weights) > 10  # the frozen biLM
    sentences = tf.constant(["the cat sat", "a dog"])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(sentences) ** 2)
    gradients = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None and np.any(g.numpy() != 0) for g in gradients)
    model = tf_keras.Sequential([tf_keras.Input(shape=[], dtype=tf.string), layer, tf_keras.layers.Dense(1)])
    model.compile(optimizer=tf_keras.optimizers.SGD(0.1), loss="mse")
    before = [w.numpy().copy() for w in layer.trainable_weights]
    model.fit(sentences, tf.constant([[0.0], [1.0]]), epochs=1, verbose=0)
    assert all(np.any(w.numpy() != b) for w, b in zip(layer.trainable_weights, before))


def test_build_hub_elmo_mix_weights_and_stateful_refused(embedder):
    bilm = load_bilm(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    weights = [1.0, 0.0, -1.0]
    out = export.build_hub_elmo(bilm, scalar_mix_weights=weights)(batch_to_ids([["the", "cat"]]))
    layers = embedder.embed_sentence(["the", "cat"])
    softmax = np.exp(weights) / np.exp(weights).sum()
    np.testing.assert_allclose(out["elmo"][0], np.einsum("k,ktd->td", softmax, layers), rtol=0, atol=ATOL)
    with pytest.raises(ValueError, match="stateless biLM"):
        export.build_hub_elmo(load_bilm(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, stateful=True, max_batch_size=2))


def test_bad_export_arguments(tmp_path):
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        export.export_savedmodel(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, str(tmp_path), tokenizer="spacy")
    with pytest.raises(ValueError, match="version must be a non-negative integer"):
        export.export_savedmodel(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, str(tmp_path), version=-1)
    assert list(tmp_path.iterdir()) == []


def test_downstream_classifier_takes_raw_text(tmp_path):
    import keras

    from elmo_keras import Elmo

    elmo = Elmo.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    char_ids = keras.Input((None, 50), dtype="int32", name="char_ids")
    out = elmo(char_ids)
    pooled = keras.layers.GlobalAveragePooling1D()(out["elmo_representations"][0], mask=out["mask"])
    probs = keras.layers.Dense(3, activation="softmax", name="label_probs")(pooled)
    model = keras.Model(char_ids, probs)
    # Mix weights away from their start values, as after training.
    elmo.scalar_mixes[0].layer_weights.assign([0.5, -1.0, 2.0])
    elmo.scalar_mixes[0].scale.assign(1.5)
    result = export.export_with_text_input(model, str(tmp_path / "classifier"), version=7, warmup=False)
    assert result["non_core_ops"] == [] and result["warmup_requests"] is None
    served = tf.saved_model.load(result["export_dir"])
    texts = [t for t in TEXTS if t.strip()]  # GlobalAveragePooling1D divides by zero on empty rows
    got = served.signatures["default"](text=tf.constant(texts))
    assert sorted(got) == ["label_probs"]
    expected = model.predict(batch_to_ids([t.split() for t in texts]), verbose=0)
    np.testing.assert_allclose(got["label_probs"].numpy(), expected, atol=1e-6)


def simulate_rest_predict(loaded, body):
    """What TF Serving's REST `:predict` answers for a row-format `body`.

    Instances are stacked into the batch (a signature with one input takes
    bare values), and each output is split back into one dict per instance.
    """
    signature = loaded.signatures[body.get("signature_name", "serving_default")]
    specs = signature.structured_input_signature[1]
    instances = body["instances"]
    if isinstance(instances[0], dict):
        inputs = {name: [instance[name] for instance in instances] for name in specs}
    else:
        (name,) = specs
        inputs = {name: instances}
    outputs = signature(**{name: tf.constant(value, dtype=specs[name].dtype)
                           for name, value in inputs.items()})
    arrays = {name: value.numpy() for name, value in sorted(outputs.items())}
    return {"predictions": [{name: value[k].tolist() for name, value in arrays.items()}
                            for k in range(len(instances))]}


def _rounded(value, decimals):
    if isinstance(value, dict):
        return {k: _rounded(v, decimals) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, decimals) for v in value]
    if isinstance(value, float):
        return round(value, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return value


def render_response(response, indent=0):
    """JSON with each innermost vector on one line, so that the doc stays readable."""
    pad = "  " * indent
    if isinstance(response, dict):
        items = [f'{pad}  "{key}": {render_response(value, indent + 1).lstrip()}'
                 for key, value in response.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(response, list) and response and isinstance(response[0], (list, dict)):
        return pad + "[\n" + ",\n".join(render_response(v, indent + 1) for v in response) + "\n" + pad + "]"
    return pad + json.dumps(response)


def assert_same_numbers(documented, computed, tolerance, where="response"):
    assert type(documented) is type(computed) or {type(documented), type(computed)} <= {int, float}, where
    if isinstance(computed, dict):
        assert sorted(documented) == sorted(computed), where
        for key in computed:
            assert_same_numbers(documented[key], computed[key], tolerance, f"{where}.{key}")
    elif isinstance(computed, list):
        assert len(documented) == len(computed), where
        for k, (d, c) in enumerate(zip(documented, computed)):
            assert_same_numbers(d, c, tolerance, f"{where}[{k}]")
    else:
        assert abs(documented - computed) <= tolerance, f"{where}: doc {documented}, model {computed}"


RESPONSE_BLOCK = re.compile(r"(<!-- begin response -->\n```json\n)(.*?)(\n```\n<!-- end response -->)", re.S)
DECIMALS = 4


def test_rest_example_in_docs_matches_the_model(loaded):
    """docs/serving.md shows the exact request and the response the fixture model gives.

    ELMO_KERAS_UPDATE_DOCS=1 rewrites the response block from the model.
    """
    doc = DOC.read_text(encoding="utf-8")
    assert "docker run -p 8501:8501 -v $PWD/savedmodels/" in doc
    assert "-e MODEL_NAME=elmo tensorflow/serving" in doc
    body = json.loads(re.search(r"curl -d '(\{.*?\})'", doc).group(1))
    assert body == {"signature_name": "default", "instances": ["the cat sat"]}
    assert "http://localhost:8501/v1/models/elmo:predict" in doc
    response = _rounded(simulate_rest_predict(loaded, body), DECIMALS)
    if os.environ.get("ELMO_KERAS_UPDATE_DOCS"):
        doc = RESPONSE_BLOCK.sub(lambda m: m.group(1) + render_response(response) + m.group(3), doc)
        DOC.write_text(doc, encoding="utf-8")
    documented = json.loads(RESPONSE_BLOCK.search(doc).group(2))
    # Written rounded to DECIMALS places; allow for the last digit flipping
    # on another CPU.
    assert_same_numbers(documented, response, 10.0 ** -DECIMALS + 1e-9)
    assert documented["predictions"][0]["sequence_len"] == 3
    assert np.asarray(documented["predictions"][0]["elmo"]).shape == (3, 2 * P)
