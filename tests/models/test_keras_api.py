"""The keras-hub-style API: ElmoTokenizer, ElmoBackbone, ElmoTextEmbedder, and class registration."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
from keras.ops import convert_to_numpy as to_numpy
import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS, tiny_options, write_random_model, xla_flags
from reference_bilm import batching_tolerance

import elmo_keras
from elmo_keras.models.elmo_backbone import backbone_arguments
from elmo_keras import (Elmo, ElmoBackbone, ElmoEmbedder, ElmoTextEmbedder, ElmoTokenizer, batch_to_ids,
                        build_bilm, load_bilm)
from elmo_keras.io.options import load_options, validate_options
from elmo_keras.pretrained import default_model_files

tf = pytest.importorskip("tensorflow")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Float32 unit roundoff (round to nearest).
U = 2.0**-24

# Sentences where a tokenizer can go wrong: non-ASCII, empty, only whitespace,
# tokens over 48 bytes (cut, also inside a multi-byte character), Unicode
# whitespace that Python splits on, and characters that look like spaces but
# are not (zero-width space, BOM), the boundary literals, invalid UTF-8 free.
TEXTS = [
    "The cat sat on the mat .",
    "",
    " ",
    "\t\n\x0b\x0c\r ",
    "café 日本語 😀👍🏽 cafe\u0301",
    "x" * 70 + " " + "a" * 47 + "é " + "日" * 17,
    "a\x1cb\x1dc\x1ed\x1fe",
    "a\x85b\xa0c\u1680d\u2000e\u200af\u2028g\u2029h\u202fi\u205fj\u3000k",
    "no\u200bsplit no\ufeffsplit",
    "  <S> </S> <s>  ",
    "Hello, world... don't!",
]
SENTENCES = [["The", "bank", "raised", "rates", "."], ["We", "sat", "by", "the", "river", "bank"], ["Hi"], []]
# Held-out configurations: not the fixture's, and unlike each other.
CONFIGS = {
    "two_layers_skip": tiny_options(),
    "one_layer_tanh": tiny_options(n_layers=1, skip=False, activation="tanh", n_highway=2,
                                   filters=((1, 6), (3, 6)), projection_dim=12, cell_clip=None, proj_clip=None),
}


def _run(script, *args, backend="tensorflow", timeout=300):
    """Run `script` in a fresh Python with only what it imports; return its last stdout line as JSON."""
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    if backend == "jax":
        env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags("--xla_backend_optimization_level=0"))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *map(str, args)], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _keras_mask(tensor):
    # Keras 3 keeps a tensor's mask on `_keras_mask` (TensorFlow tensors and KerasTensors).
    return getattr(tensor, "_keras_mask", None)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """{config name: (options_file, weight_file)} with random weights."""
    models = {}
    for k, (name, options) in enumerate(CONFIGS.items()):
        folder = tmp_path_factory.mktemp(name)
        models[name] = write_random_model(folder, options, seed=10 + k)
    return models


# --- ElmoTokenizer ----------------------------------------------------------------------------------

def test_tokenizer_equals_batch_to_ids_of_str_split():
    tokenizer = ElmoTokenizer()
    np.testing.assert_array_equal(tokenizer(TEXTS), batch_to_ids([t.split() for t in TEXTS]))
    for text in TEXTS:  # alone, the width follows its own length
        np.testing.assert_array_equal(tokenizer(tf.constant([text])), batch_to_ids([text.split()]))
    np.testing.assert_array_equal(tokenizer(TEXTS[4]), batch_to_ids([TEXTS[4].split()])[0])  # one sentence
    ids = tokenizer(tf.constant([], tf.string))
    assert ids.dtype == tf.int32 and tuple(ids.shape) == (0, 2, 50)


def test_tokenizer_on_padded_and_ragged_tokens():
    sentences = [["a", "", "b"], [""], ["日本語", "x" * 60, "", ""], []]
    width = max(len(s) for s in sentences)
    padded = tf.constant([s + [""] * (width - len(s)) for s in sentences])
    non_empty = batch_to_ids([[t for t in s if t] for s in sentences])
    np.testing.assert_array_equal(ElmoTokenizer()(padded), non_empty)
    # A ragged batch is taken as it is: an empty string there is an (empty) token.
    np.testing.assert_array_equal(ElmoTokenizer()(tf.ragged.constant(sentences)), batch_to_ids(sentences))


def test_tokenizer_punctuation_equals_tokenize_punctuation():
    pytest.importorskip("tensorflow_text")
    from elmo_keras.preprocessing.tokenize import tokenize_punctuation

    ascii_texts = [t for t in TEXTS if t.isascii()] + ["3.14 (approx) -- e.g. 'quoted'"]
    np.testing.assert_array_equal(ElmoTokenizer("punctuation")(ascii_texts),
                                  batch_to_ids([tokenize_punctuation(t) for t in ascii_texts]))


def test_tokenizer_direct_call_equals_dataset_map():
    tokenizer = ElmoTokenizer()
    batched = tf.data.Dataset.from_tensor_slices(TEXTS).batch(4).map(tokenizer)
    for k, ids in enumerate(batched):
        np.testing.assert_array_equal(ids, tokenizer(TEXTS[4 * k: 4 * k + 4]))
    # One sentence per element, then padded batches: padding is all-zero tokens, as batch_to_ids.
    unbatched = tf.data.Dataset.from_tensor_slices(TEXTS).map(tokenizer).padded_batch(len(TEXTS))
    np.testing.assert_array_equal(next(iter(unbatched)), tokenizer(TEXTS))


def test_tokenizer_config_is_its_arguments():
    tokenizer = ElmoTokenizer(tokenizer="punctuation", max_characters_per_token=20, name="chars")
    config = tokenizer.get_config()
    assert {k: config[k] for k in ("tokenizer", "max_characters_per_token", "name")} == {
        "tokenizer": "punctuation", "max_characters_per_token": 20, "name": "chars"}
    # keras-hub's Tokenizer (and its stand-in without keras-hub) adds the name of its preset file.
    assert set(config) == {"tokenizer", "max_characters_per_token", "name", "trainable", "dtype", "config_file"}
    assert config["config_file"] == "tokenizer.json"
    assert ElmoTokenizer.from_config(config).get_config() == config
    # A config saved before (no config_file) loads as the same tokenizer.
    old = {k: v for k, v in config.items() if k != "config_file"}
    assert ElmoTokenizer.from_config(old).get_config() == config
    assert tuple(ElmoTokenizer(max_characters_per_token=20)(["a b"]).shape) == (1, 4, 20)
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        ElmoTokenizer(tokenizer="bpe")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="calls the model on a tf.string tensor: string preprocessing in the model is TensorFlow's")
def test_tokenizer_is_the_first_layer_of_a_functional_model():
    backbone = ElmoBackbone.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    text = keras.Input(shape=(), dtype="string", name="text")
    char_ids = ElmoTokenizer()(text)
    assert tuple(char_ids.shape) == (None, None, 50) and char_ids.dtype == "int32"
    model = keras.Model(text, backbone(char_ids)["activations"])
    np.testing.assert_array_equal(model(tf.constant(TEXTS)),
                                  backbone(batch_to_ids([t.split() for t in TEXTS]))["activations"])


def test_elmo_symbolic_outputs_match_its_eager_outputs():
    x = batch_to_ids(SENTENCES)
    for keep in (False, True):
        elmo = Elmo.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, num_output_representations=2,
                               keep_sentence_boundaries=keep)
        symbolic = elmo(keras.Input((x.shape[1], 50), dtype="int32"))
        eager = elmo(x)
        for spec, value in zip(symbolic["elmo_representations"] + [symbolic["mask"]],
                               eager["elmo_representations"] + [eager["mask"]]):
            assert spec.shape[1:] == tuple(value.shape)[1:] and spec.dtype == keras.backend.standardize_dtype(value.dtype)


# --- ElmoBackbone -----------------------------------------------------------------------------------

def test_build_and_load_bilm_return_the_backbone():
    model = load_bilm(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    assert isinstance(model, ElmoBackbone) and model.name == "bilm"
    assert isinstance(build_bilm(tiny_options()), ElmoBackbone)
    assert [layer.name for layer in model.layers] == ["char_ids", "char_cnn", "bilstm"]
    assert model.elmo_options == load_options(FIXTURE_OPTIONS)
    assert isinstance(Elmo.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS).bilm, ElmoBackbone)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_backbone_equals_embedder_layers(tiny_models, config):
    options_file, weight_file = tiny_models[config]
    backbone = ElmoBackbone.from_files(options_file, weight_file)
    out = backbone.predict(batch_to_ids(SENTENCES), verbose=0)
    # The embedder without its token cache and XLA runs the same graph on the same ids, its rows padded
    # further (masking leaves them alone): other shapes, so to the derived tolerance.
    expected = ElmoEmbedder(options_file, weight_file, token_cache_size=0, jit_compile=False).embed_batch(SENTENCES)
    atol = batching_tolerance(options_file, weight_file, tuple(map(tuple, SENTENCES)))
    for k, layers in enumerate(expected):
        n = len(SENTENCES[k])
        np.testing.assert_allclose(out["activations"][k, :, 1: n + 1], layers, rtol=0, atol=atol)
        assert not out["activations"][k, :, n + 2:].any() and not out["token_embedding"][k, n + 2:].any()
        np.testing.assert_array_equal(out["mask"][k], np.arange(out["mask"].shape[1]) < n + 2)
    np.testing.assert_array_equal(out["token_embedding"], out["activations"][:, 0, :, : out["token_embedding"].shape[-1]])


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_token_encoder_then_contextualizer_is_the_backbone(tiny_models, config):
    backbone = ElmoBackbone.from_files(*tiny_models[config])
    char_ids = batch_to_ids(SENTENCES)
    out = backbone.predict(char_ids, verbose=0)
    encoder, unpacked, packed = backbone.token_encoder(), backbone.contextualizer(False), backbone.contextualizer()
    # The sub-models share the backbone's layers: nothing new to load.
    shared = {id(w) for w in backbone.weights}
    assert {id(w) for w in encoder.weights + packed.weights + unpacked.weights} == shared
    inputs = {"token_embedding": encoder.predict(char_ids, verbose=0),
              "segment_ids": np.asarray(out["mask"], "int32")}
    # Unpacked: the very same computation on the same ids, so the same bits.
    np.testing.assert_array_equal(unpacked.predict(inputs, verbose=0)["activations"], out["activations"])
    # Packed rows restart the LSTMs per segment: another loop, the derived tolerance.
    atol = batching_tolerance(*tiny_models[config], tuple(map(tuple, SENTENCES)))
    np.testing.assert_allclose(packed.predict(inputs, verbose=0)["activations"], out["activations"], rtol=0, atol=atol)


def test_backbone_config_round_trip():
    options = CONFIGS["one_layer_tanh"]
    backbone = ElmoBackbone.from_options(options, stateful=True, max_batch_size=3, name="lm")
    config = backbone.get_config()
    assert set(config) == {"name", "trainable", "dtype", "stateful", "max_batch_size", *backbone_arguments(options)}
    assert (config["stateful"], config["max_batch_size"], config["name"]) == (True, 3, "lm")
    assert {k: config[k] for k in backbone_arguments(options)} == backbone_arguments(validate_options(options))
    json.dumps(config)  # plain data, no weights
    clone = ElmoBackbone.from_config(config)
    assert isinstance(clone, ElmoBackbone) and clone.get_config() == config
    assert [tuple(w.shape) for w in clone.weights] == [tuple(w.shape) for w in backbone.weights]
    assert clone.bilstm.stateful and clone.bilstm.max_batch_size == 3


def test_token_embedding_carries_the_mask_to_downstream_layers():
    backbone = ElmoBackbone.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    char_ids = keras.Input((None, 50), dtype="int32")
    out = backbone(char_ids)
    assert _keras_mask(out["activations"]) is None
    # GlobalAveragePooling1D reads the Keras mask by itself: the mean over real tokens only.
    model = keras.Model(char_ids, keras.layers.GlobalAveragePooling1D()(out["token_embedding"]))
    x = batch_to_ids(SENTENCES[:3])
    eager = backbone(x)
    np.testing.assert_array_equal(_keras_mask(eager["token_embedding"]), eager["mask"])
    embedding, mask = to_numpy(eager["token_embedding"]).astype(np.float64), to_numpy(eager["mask"])
    expected = (embedding * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    np.testing.assert_allclose(to_numpy(model(x)), expected, rtol=1e-6, atol=1e-7)
    unmasked = embedding.mean(1)  # what it would give without the mask
    assert np.abs(to_numpy(model(x)) - unmasked).max() > 1e-3


def test_from_preset_default_and_directory(tmp_path, tiny_models):
    default = ElmoBackbone.from_preset("default")
    reference = load_bilm(*default_model_files())
    x = batch_to_ids(SENTENCES)
    np.testing.assert_array_equal(to_numpy(default(x)["activations"]), to_numpy(reference(x)["activations"]))
    options_file, weight_file = tiny_models["two_layers_skip"]
    folder = tmp_path / "preset"
    folder.mkdir()
    shutil.copy(options_file, folder / "options.json")
    shutil.copy(weight_file, folder / "my_weights.hdf5")
    from_dir = ElmoBackbone.from_preset(str(folder), name="mine")
    assert from_dir.name == "mine"
    np.testing.assert_array_equal(to_numpy(from_dir(x)["activations"]),
                                  to_numpy(load_bilm(options_file, weight_file)(x)["activations"]))


def test_from_preset_errors_name_the_directory(tmp_path):
    folder = tmp_path / "preset"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match=f"{folder}: a model folder must hold options.json"):
        ElmoBackbone.from_preset(str(folder))
    shutil.copy(FIXTURE_OPTIONS, folder / "options.json")
    with pytest.raises(FileNotFoundError, match=f"{folder}: .* one weights .hdf5 file; found none"):
        ElmoBackbone.from_preset(str(folder))
    shutil.copy(FIXTURE_WEIGHTS, folder / "a.hdf5")
    shutil.copy(FIXTURE_WEIGHTS, folder / "b.hdf5")
    with pytest.raises(ValueError, match=f"{folder}: .* exactly one weights .hdf5 file; found 2: a.hdf5, b.hdf5"):
        ElmoBackbone.from_preset(str(folder))
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        ElmoBackbone.from_preset("huge")


def test_from_preset_released_name_goes_through_the_verified_cache(tmp_path, monkeypatch):
    from test_pretrained import STEM, _Server

    folder = tmp_path / "www" / "elmo" / STEM
    folder.mkdir(parents=True)
    shutil.copy(FIXTURE_OPTIONS, folder / f"elmo_{STEM}_options.json")
    shutil.copy(FIXTURE_WEIGHTS, folder / f"elmo_{STEM}_weights.hdf5")
    server = _Server(tmp_path / "www")
    try:
        monkeypatch.setenv("ELMO_KERAS_MIRROR", server.url)
        monkeypatch.setenv("ELMO_KERAS_CACHE", str(tmp_path / "cache"))
        backbone = ElmoBackbone.from_preset("small")
        assert len(server.requests) == 2
    finally:
        server.stop()
    assert (tmp_path / "cache" / "small" / "manifest.json").exists()
    embedder = ElmoTextEmbedder.from_preset("small")  # offline now: the cached copy
    x = batch_to_ids(SENTENCES)
    expected = to_numpy(load_bilm(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)(x)["activations"])
    np.testing.assert_array_equal(to_numpy(backbone(x)["activations"]), expected)
    np.testing.assert_array_equal(to_numpy(embedder.backbone(x)["activations"]), expected)


# --- ElmoTextEmbedder -------------------------------------------------------------------------------

def _mix_bound(layers):
    """Largest error of the `elmo` mix against the float64 mean of `layers` (K, n, dim).

    ScalarMix with zero weights multiplies each layer by fl(1/K) (off by at
    most u/K) and sums K products (each rounded, then K - 1 rounded
    additions: at most (K - 1) u sum|.|); the scale 1 is exact. To first
    order that is (K + 1) / K * u * sum_k |layer_k|.
    """
    k = layers.shape[0]
    return (k + 1) / k * U * np.abs(layers).sum(axis=0) * (1 + 1e-6)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_text_embedder_outputs_are_tf_hub_elmo_of_the_embedder_layers(tiny_models, config):
    options_file, weight_file = tiny_models[config]
    model = ElmoTextEmbedder(ElmoBackbone.from_files(options_file, weight_file))
    texts = [" ".join(s) for s in SENTENCES]
    out = model.predict(texts, verbose=0)
    width = max(len(s) for s in SENTENCES)
    assert out["elmo"].shape == (len(SENTENCES), width, 2 * CONFIGS[config]["lstm"]["projection_dim"])
    expected = ElmoEmbedder(options_file, weight_file, token_cache_size=0, jit_compile=False).embed_batch(SENTENCES)
    for k, layers in enumerate(expected):
        n = len(SENTENCES[k])
        elmo = out["elmo"][k, :n]
        bound = _mix_bound(layers)
        assert np.all(np.abs(elmo - layers.astype(np.float64).mean(axis=0)) <= bound)
        assert not out["elmo"][k, n:].any()
        if n == 0:
            assert not out["default"][k].any()
            continue
        # default: a float32 sum of n rows (n - 1 roundings), then one division.
        mean = elmo.astype(np.float64).mean(axis=0)
        sum_bound = U * ((n - 1) / n * np.abs(elmo).sum(axis=0) + np.abs(mean))
        assert np.all(np.abs(out["default"][k] - mean) <= sum_bound * (1 + 1e-6))
        # ... and the mean of the embedder's layers over tokens, within both bounds.
        np.testing.assert_array_less(np.abs(out["default"][k] - layers.astype(np.float64).mean(axis=(0, 1))),
                                     sum_bound * (1 + 1e-6) + bound.mean(axis=0) + 1e-30)


def test_text_embedder_elmo_carries_the_mask_and_default_is_its_masked_mean():
    model = ElmoTextEmbedder(ElmoBackbone.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS))
    char_ids = keras.Input((None, 50), dtype="int32")
    out = model(char_ids)
    pooled = keras.Model(char_ids, keras.layers.GlobalAveragePooling1D()(out["elmo"]))
    x = batch_to_ids(SENTENCES[:3])
    eager = model(x)
    np.testing.assert_array_equal(_keras_mask(eager["elmo"]), batch_to_ids(SENTENCES[:3])[:, 2:].any(-1))
    np.testing.assert_allclose(to_numpy(pooled(x)), to_numpy(eager["default"]), rtol=1e-6, atol=1e-7)


def _classifier(embedder):
    char_ids = keras.Input((None, 50), dtype="int32", name="char_ids")
    logits = keras.layers.Dense(2, name="head")(embedder(char_ids)["default"])
    model = keras.Model(char_ids, logits)
    model.compile(keras.optimizers.SGD(1.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_fit_one_step_trains_the_mix_and_leaves_the_frozen_backbone():
    keras.utils.set_random_seed(0)
    embedder = ElmoTextEmbedder(ElmoBackbone.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS))
    assert [w.path for w in embedder.trainable_weights] == ["elmo_head/elmo_mix/layer_weights",
                                                            "elmo_head/elmo_mix/scale"]
    model = _classifier(embedder)
    backbone_before = [w.numpy().copy() for w in embedder.backbone.weights]
    mix = embedder.scalar_mix
    texts = ["the bank raised rates", "a river bank", "rates rose", "we sat by the river"]
    # keras-hub's pattern: the tokenizer runs in tf.data, the model sees char ids.
    data = tf.data.Dataset.from_tensor_slices((texts, [0, 1, 0, 1])).batch(4)
    model.fit(data.map(lambda text, label: (embedder.tokenizer(text), label)), epochs=1, verbose=0)
    assert np.abs(mix.layer_weights.numpy()).max() > 1e-6 and mix.scale.numpy() != 1.0
    for before, w in zip(backbone_before, embedder.backbone.weights):
        np.testing.assert_array_equal(before, w.numpy())
    trainable = ElmoTextEmbedder(ElmoBackbone.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS), trainable_backbone=True)
    assert len(trainable.trainable_weights) == 2 + len(trainable.backbone.weights)


def test_fit_evaluate_predict_take_text():
    embedder = ElmoTextEmbedder(ElmoBackbone.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS))
    embedder.compile(keras.optimizers.SGD(1.0), loss={"default": "mse"})
    texts = np.array(["the bank raised rates", "a river bank", "", "rates"])
    target = np.ones((4, 32), "float32")
    before = embedder.scalar_mix.scale.numpy()
    embedder.fit(texts, {"default": target}, batch_size=2, validation_data=(texts, {"default": target}),
                 verbose=0)
    assert embedder.scalar_mix.scale.numpy() != before
    data = tf.data.Dataset.from_tensor_slices((texts, {"default": target})).batch(2)
    loss = embedder.evaluate(data, verbose=0)
    np.testing.assert_allclose(loss, embedder.evaluate(texts, {"default": target}, verbose=0), rtol=1e-5)
    np.testing.assert_array_equal(embedder.predict(list(texts), verbose=0)["elmo"],
                                  embedder.predict(batch_to_ids([t.split() for t in texts]), verbose=0)["elmo"])


def test_text_embedder_config_round_trip_and_checks():
    backbone = ElmoBackbone.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    model = ElmoTextEmbedder(backbone, tokenizer=ElmoTokenizer("punctuation"), scalar_mix_weights=[0.0, 1.0, 2.0],
                             name="hub")
    config = model.get_config()
    assert set(config) == {"name", "trainable", "backbone", "tokenizer", "trainable_backbone", "scalar_mix_weights",
                           "hub_outputs"}
    json.dumps(config)
    clone = ElmoTextEmbedder.from_config(config)
    assert clone.get_config() == config and clone.tokenizer.tokenizer == "punctuation"
    np.testing.assert_allclose(clone.scalar_mix.layer_weights.numpy(), [0.0, 1.0, 2.0])
    with pytest.warns(DeprecationWarning, match=r"get_layer\('elmo_mix'\) is deprecated"):
        assert clone.get_layer("elmo_mix") is clone.scalar_mix
    assert clone.get_layer("elmo_head").scalar_mixes == [clone.scalar_mix]
    hub = ElmoTextEmbedder.from_config({**config, "hub_outputs": True})
    assert sorted(hub(batch_to_ids([["a", "b"]]))) == ["default", "elmo", "lstm_outputs1", "lstm_outputs2",
                                                       "sequence_len", "word_emb"]
    assert hub.get_config() == {**config, "hub_outputs": True}
    with pytest.raises(ValueError, match="needs a stateless backbone"):
        ElmoTextEmbedder(ElmoBackbone.from_options(tiny_options(), stateful=True))


# --- .keras files in a fresh process, and registration -----------------------------------------------

LOAD_SCRIPT = """
    import json, sys
    import numpy as np
    import elmo_keras, keras  # nothing else: the classes must be registered by `import elmo_keras`
    folder = sys.argv[1]
    x = np.load(folder + "/char_ids.npy")
    texts = json.load(open(folder + "/texts.json"))
    same = {}
    for name in ("elmo_classifier", "backbone", "text_embedder"):
        out = keras.saving.load_model(f"{folder}/{name}.keras").predict(x, verbose=0)
        out = out if isinstance(out, dict) else {"output": out}
        # equal_nan: Keras' masked average pooling gives NaN for the empty sentence.
        same[name] = all(np.array_equal(v, np.load(f"{folder}/{name}_{k}.npy"), equal_nan=True)
                         for k, v in out.items())
    text_model = keras.saving.load_model(folder + "/text_model.keras")
    same["text_model"] = np.array_equal(text_model(np.array(texts)), np.load(folder + "/text_model_output.npy"))
    print(json.dumps(same))
"""


@pytest.mark.slow
def test_keras_files_reload_in_a_fresh_process_with_only_import_elmo_keras(tmp_path):
    x = batch_to_ids(SENTENCES)
    texts = [" ".join(s) for s in SENTENCES]
    np.save(tmp_path / "char_ids.npy", x)
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    char_ids = keras.Input((None, 50), dtype="int32")
    out = Elmo.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, dropout=0.0)(char_ids)
    pooled = keras.layers.GlobalAveragePooling1D()(out["elmo_representations"][0], mask=out["mask"])
    backbone = ElmoBackbone.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    embedder = ElmoTextEmbedder(backbone, scalar_mix_weights=[0.5, -0.5, 1.0])
    text = keras.Input((), dtype="string")
    models = {"elmo_classifier": keras.Model(char_ids, keras.layers.Dense(2)(pooled)), "backbone": backbone,
              "text_embedder": embedder,
              "text_model": keras.Model(text, embedder(ElmoTokenizer()(text))["default"])}
    for name, model in models.items():
        model.save(tmp_path / f"{name}.keras")
        if name == "text_model":
            np.save(tmp_path / "text_model_output.npy", model(tf.constant(texts)))
            continue
        result = model.predict(x, verbose=0)
        for key, value in (result if isinstance(result, dict) else {"output": result}).items():
            np.save(tmp_path / f"{name}_{key}.npy", value)
    assert _run(LOAD_SCRIPT, tmp_path) == {name: True for name in models}


SAVED_CLASSES = ["Elmo", "ElmoBackbone", "ElmoTextEmbedder", "ElmoTokenizer", "CharCNN", "Highway", "BiLSTM",
                 "ScalarMix", "ConcatProjectionMix", "LSTMCellWithProjection", "LanguageModel", "ElmoTextClassifier",
                 "ElmoTextClassifierPreprocessor", "ElmoTokenClassifier", "ElmoTokenClassifierPreprocessor"]

REGISTRY_SCRIPT = """
    import json, sys
    {imports}
    import keras
    print(json.dumps({{"keras_first": {keras_first}, "found": [name for name in {names!r}
                      if keras.saving.get_registered_object("elmo_keras>" + name) is not None]}}))
"""


@pytest.mark.parametrize("imports", ["import elmo_keras, tensorflow", "import keras, elmo_keras",
                                     "import elmo_keras, keras_hub", "import keras_hub, elmo_keras"])
def test_import_elmo_keras_registers_every_saved_class(imports):
    # `import tensorflow` loads Keras from inside TensorFlow's own import (and
    # looks Keras up without importing it first), and `import keras_hub` midway
    # through its own, before its classes exist: the registration must follow.
    if "keras_hub" in imports:
        pytest.importorskip("keras_hub", reason="needs keras-hub: the keras-hub extra")
    script = REGISTRY_SCRIPT.format(imports=imports, keras_first=imports.startswith("import keras"),
                                    names=SAVED_CLASSES)
    assert _run(script)["found"] == SAVED_CLASSES


def test_import_of_the_data_pipeline_starts_no_keras():
    script = """
        import json, sys
        import elmo_keras.training.data
        print(json.dumps([name for name in ("keras", "tensorflow", "jax") if name in sys.modules]))
    """
    assert _run(script) == []


def test_registered_in_this_process():
    for name in SAVED_CLASSES:
        assert keras.saving.get_registered_object("elmo_keras>" + name) is getattr(elmo_keras, name)


# --- JAX and PyTorch ---------------------------------------------------------------------------------

BACKEND_SCRIPT = """
    import json, sys
    import numpy as np
    import tensorflow as tf
    import elmo_keras, keras
    from elmo_keras import ElmoTextEmbedder, ElmoTokenizer
    folder = sys.argv[1]
    texts = json.load(open(folder + "/texts.json"))
    model = keras.saving.load_model(folder + "/text_embedder.keras")
    predicted = model.predict(texts, verbose=0)  # strings: tokenised with TensorFlow, then run on the backend
    tokenizer = ElmoTokenizer()
    mapped = next(iter(tf.data.Dataset.from_tensor_slices(texts).batch(len(texts)).map(tokenizer)))
    data = tf.data.Dataset.from_tensor_slices((texts, np.ones((len(texts), 32), "float32"))).batch(2)
    model.compile(keras.optimizers.SGD(1.0), loss={"default": "mse"})
    model.fit(data.map(lambda t, y: (model.tokenizer(t), {"default": y})), epochs=1, verbose=0)
    print(json.dumps({"backend": keras.backend.backend(),
                      "mapped_equals_direct": bool(np.array_equal(mapped, tokenizer(texts))),
                      "elmo_error": float(np.abs(predicted["elmo"] - np.load(folder + "/elmo.npy")).max()),
                      "default_error": float(np.abs(predicted["default"] - np.load(folder + "/default.npy")).max()),
                      "scale_after_fit": float(np.asarray(model.scalar_mix.scale))}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_text_embedder_on_jax_and_torch_with_tokenizer_in_tf_data(tmp_path, backend):
    pytest.importorskip(backend, reason=f"the {backend} extra (pip install 'elmo-keras[{backend}]')")
    texts = [" ".join(s) for s in SENTENCES]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    model = ElmoTextEmbedder(ElmoBackbone.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS))
    model.save(tmp_path / "text_embedder.keras")
    out = model.predict(texts, verbose=0)
    np.save(tmp_path / "elmo.npy", out["elmo"])
    np.save(tmp_path / "default.npy", out["default"])
    report = _run(BACKEND_SCRIPT, tmp_path, backend=backend)
    assert report["backend"] == backend and report["mapped_equals_direct"]
    # Another backend's kernels sum in another order: each layer within the tolerance of two float32
    # evaluations, then the mix's own rounding on each side (_mix_bound), and for `default` the mean's
    # (a sum of at most `width` rows: (width - 1) u of the summed magnitudes, on each side).
    layers = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, token_cache_size=0).embed_batch(SENTENCES)
    atol = batching_tolerance(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, tuple(map(tuple, SENTENCES)))
    elmo_bound = atol + 2 * max(_mix_bound(v).max() for v in layers if v.size)
    width = max(len(s) for s in SENTENCES)
    assert report["elmo_error"] <= elmo_bound
    assert report["default_error"] <= elmo_bound + 2 * width * U * np.abs(out["elmo"]).max()
    assert report["scale_after_fit"] != 1.0


# Where TensorFlow is not installed (the torch or jax extra alone): char ids run, text gets one line.
NO_TENSORFLOW_SCRIPT = """
    import json, sys
    sys.modules["tensorflow"] = None  # `import tensorflow` fails, as where it is not installed
    import numpy as np
    import keras
    import elmo_keras
    from elmo_keras import ElmoBackbone, ElmoTextEmbedder, batch_to_ids
    model = ElmoTextEmbedder(ElmoBackbone.from_files(sys.argv[1], sys.argv[2]))
    texts = ["The bank raised rates .", "a b", ""]
    elmo = model.predict(batch_to_ids([t.split() for t in texts]), verbose=0)["elmo"]
    try:
        model.predict(texts, verbose=0)
        error = None
    except ImportError as e:
        error = str(e)
    print(json.dumps({"backend": keras.backend.backend(), "shape": list(elmo.shape), "error": error}))
"""


@pytest.mark.slow
def test_text_embedder_without_tensorflow_takes_char_ids_and_says_what_text_needs():
    pytest.importorskip("torch", reason="the torch extra (pip install 'elmo-keras[torch]')")
    report = _run(NO_TENSORFLOW_SCRIPT, FIXTURE_OPTIONS, FIXTURE_WEIGHTS, backend="torch")
    assert report["backend"] == "torch" and report["shape"] == [3, 5, 32]
    assert report["error"] == ('ElmoTokenizer runs TensorFlow ops, and TensorFlow is not installed: pip install '
                               '"elmo-keras[tf]", or give the model char ids instead of text '
                               '(elmo_keras.batch_to_ids(sentences as token lists), numpy only)')


def test_a_keras_file_from_a_newer_version_is_refused_in_one_line(tmp_path):
    """Keras' Model takes unknown arguments silently: one that a newer version added must not be dropped."""
    import zipfile

    from elmo_keras.models.language_model import LanguageModel

    backbone = ElmoBackbone.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    backbone.save(tmp_path / "backbone.keras")
    with zipfile.ZipFile(tmp_path / "backbone.keras") as saved:
        files = {name: saved.read(name) for name in saved.namelist()}
    config = json.loads(files["config.json"])
    config["config"]["layer_norm"] = True  # an argument this version does not know
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "newer.keras", "w") as newer:
        for name, data in files.items():
            newer.writestr(name, data)
    message = (r"^{}: the saved model has the argument\(s\) layer_norm, which elmo_keras {} does not know: a newer "
               r"elmo_keras saved it; upgrade \(pip install -U elmo-keras\)$")
    with pytest.raises(ValueError, match=message.format("ElmoBackbone", elmo_keras.__version__)):
        keras.saving.load_model(tmp_path / "newer.keras")
    np.testing.assert_array_equal(  # the file as saved loads, the same computation
        to_numpy(keras.saving.load_model(tmp_path / "backbone.keras")(batch_to_ids([["a", "b"]]))["activations"]),
        to_numpy(backbone(batch_to_ids([["a", "b"]]))["activations"]))
    lm_options = {**tiny_options(), "n_tokens_vocab": 8, "batch_size": 2, "unroll_steps": 3}
    for cls, config in ((LanguageModel, LanguageModel(lm_options).get_config()),
                        (ElmoTextEmbedder, ElmoTextEmbedder(backbone).get_config())):
        with pytest.raises(ValueError, match=message.format(cls.__name__, elmo_keras.__version__)):
            cls.from_config({**config, "layer_norm": True})
