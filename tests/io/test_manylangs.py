"""ELMoForManyLangs models: imported, then equal to their own code's output (`elmoformanylangs` 0.0.4).

Their models are built with their own modules and random weights
(`manylangs_models.their_model_folder`), imported with
`elmo_keras.models.manylangs.import_manylangs` (reading their folder:
`elmo_keras.io.manylangs`), and every layer of every sentence compared with their `Embedder.sents2elmo(..., output_layer=-2)`, on text of
several scripts with unknown words and characters and a token over 48 code
points. The tolerance is derived (tests/README.md): their own model evaluated
in float64 and in float32 gives the float32 sensitivity of the model and input
(`reference_bilm.float32_tolerance`). The tests skip, saying why, without
torch or elmoformanylangs; the imported model itself never needs torch.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import manylangs_models as theirs
from reference_bilm import float32_tolerance

from elmo_keras.io.manylangs import ManyLangsError
from elmo_keras.models.manylangs import import_manylangs
from elmo_keras.preprocessing.char_dic_ids import CharDicIds, DictionaryError

# A second small size: three layers, tanh, two highways, no clipping.
OTHER = {"encoder": {"name": "elmo", "projection_dim": 6, "cell_clip": 0, "proj_clip": 0, "dim": 10,
                     "n_layers": 3},
         "token_embedder": {"name": "cnn", "activation": "tanh", "filters": [[1, 3], [2, 5], [4, 4]],
                            "n_highway": 2, "word_dim": 4, "char_dim": 3, "max_characters_per_token": 50},
         "dropout": 0.1}
RELEASED = {"encoder": {"name": "elmo", "projection_dim": 512, "cell_clip": 3, "proj_clip": 3, "dim": 4096,
                        "n_layers": 2},
            "token_embedder": {"name": "cnn", "activation": "relu",
                               "filters": [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
                               "n_highway": 2, "word_dim": 100, "char_dim": 50, "max_characters_per_token": 50},
            "dropout": 0.1}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """(their folder, our imported folder) of the small model."""
    folder = theirs.their_model_folder(str(tmp_path_factory.mktemp("theirs") / "small"))
    out = str(tmp_path_factory.mktemp("ours") / "small")
    import_manylangs(folder, out)
    return folder, out


def _their_float64_and_float32(folder, sentences):
    embedder = theirs.their_embedder(folder)
    float32 = theirs.their_layers(embedder, sentences)
    embedder.model.double()
    float64 = theirs.their_layers(embedder, sentences)
    return float64, float32


def _check_parity(folder, out, sentences=theirs.SENTENCES):
    from elmo_keras import ElmoEmbedder

    float64, float32 = _their_float64_and_float32(folder, sentences)
    atol = float32_tolerance(float64, float32)
    files = os.path.join(out, "options.json"), os.path.join(out, "weights.hdf5")
    # Both of the embedder's paths: distinct tokens through the char-CNN once, then packed rows; and
    # the whole backbone on the char ids of a batch.
    for cache_size in (100, 0):
        ours = list(ElmoEmbedder(*files, token_cache_size=cache_size).embed_sentences(sentences))
        for sentence, mine, expected in zip(sentences, ours, float64):
            assert mine.shape == expected.shape == (mine.shape[0], len(sentence), mine.shape[2])
            np.testing.assert_allclose(mine, expected, rtol=0, atol=atol, err_msg=" ".join(sentence))
    gap = max(np.abs(a - b).max() for a, b in zip(ours, float64))
    their_gap = max(np.abs(a - b).max() for a, b in zip(float32, float64))
    print(f"atol {atol:.3g}, largest gap {gap:.3g}, their float32 gap {their_gap:.3g}")
    return atol


def test_ids_are_theirs(small):
    folder, out = small
    embedder = theirs.their_embedder(folder)
    ids = CharDicIds.from_folder(out)
    for sentence in theirs.SENTENCES + [["<eos>", "", theirs.LONG_TOKEN * 2]]:
        words, chars = theirs.their_ids(embedder, sentence)
        mine = ids.sentence(sentence)
        np.testing.assert_array_equal(mine[:, -1] - 1, words)
        np.testing.assert_array_equal(mine[:, :-1] - 1, chars)


def test_small_model_matches_theirs(small):
    _check_parity(*small)


def test_other_size_matches_theirs(tmp_path):
    folder = theirs.their_model_folder(str(tmp_path / "theirs"), config=OTHER, seed=1)
    import_manylangs(folder, str(tmp_path / "ours"))
    _check_parity(folder, str(tmp_path / "ours"))


@pytest.mark.slow
def test_released_architecture_matches_theirs(tmp_path):
    folder = theirs.their_model_folder(str(tmp_path / "theirs"), config=RELEASED, seed=2)
    import_manylangs(folder, str(tmp_path / "ours"))
    _check_parity(folder, str(tmp_path / "ours"), theirs.SENTENCES[:3])


def test_tolerance_has_teeth(small, tmp_path):
    """Their learnt forget bias read as ours (+1 at run time) moves the outputs far past the tolerance."""
    import h5py

    from elmo_keras import ElmoEmbedder

    folder, out = small
    float64, float32 = _their_float64_and_float32(folder, theirs.SENTENCES)
    atol = float32_tolerance(float64, float32)
    planted = shutil.copytree(out, tmp_path / "planted")
    with h5py.File(planted / "weights.hdf5", "r+") as f:
        for name in ("RNN_0/RNN/MultiRNNCell/Cell0/LSTMCell/B", "RNN_1/RNN/MultiRNNCell/Cell0/LSTMCell/B"):
            bias = f[name][...]
            cells = bias.shape[0] // 4
            bias[2 * cells : 3 * cells] += 1.0
            f[name][...] = bias
    ours = ElmoEmbedder(str(planted / "options.json"), str(planted / "weights.hdf5")).embed_sentences(
        theirs.SENTENCES)
    assert max(np.abs(a - b).max() for a, b in zip(ours, float64)) > 50 * atol


def test_cli_embeds_an_imported_model_without_torch(small, tmp_path):
    _, out = small
    text = tmp_path / "in.txt"
    text.write_text("Привет , мир !\n北京 是 𠜎𠜱\n", encoding="utf-8")
    script = ("import importlib.abc, sys\n"
              "class NotInstalled(importlib.abc.MetaPathFinder):\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              "        if name.partition('.')[0] == 'torch':\n"
              "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
              "sys.meta_path.insert(0, NotInstalled())\n"
              "from elmo_keras.cli import main\n"
              "code = main()\n"
              "assert 'torch' not in sys.modules\n"
              "sys.exit(code)\n")
    # A finder that refuses torch, rather than sys.modules['torch'] = None: SciPy (imported by Keras) probes
    # sys.modules['torch'] and fails on None, where an uninstalled torch is simply absent.
    env = dict(os.environ, KERAS_BACKEND="tensorflow",
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                                           os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", script, "embed", str(text), str(tmp_path / "out.hdf5"),
                             "--model", out, "--quiet"], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    import h5py
    with h5py.File(tmp_path / "out.hdf5", "r") as f:
        assert f["0"].shape == (3, 4, 16) and f["1"].shape == (3, 3, 16)


def test_cli_import_says_where_the_architecture_was_read(tmp_path, capsys):
    from elmo_keras.cli import main

    folder = theirs.their_model_folder(str(tmp_path / "theirs"), config_path="/home/them/elmo/architecture.json")
    assert main(["import-manylangs", folder, str(tmp_path / "ours")]) == 0
    err = capsys.readouterr().err
    assert "config_path '/home/them/elmo/architecture.json' is not this folder's file" in err
    assert sorted(os.listdir(tmp_path / "ours")) == ["char.dic", "options.json", "weights.hdf5", "word.dic"]
    assert main(["import-manylangs", folder, str(tmp_path / "ours")]) == 1
    assert "already holds an imported model (pass overwrite / --overwrite" in capsys.readouterr().err
    assert main(["import-manylangs", folder, str(tmp_path / "ours"), "--overwrite"]) == 0


# === Bad input: one clear error naming the file and what was expected ===

@pytest.fixture()
def copy(small, tmp_path):
    folder = shutil.copytree(small[0], tmp_path / "theirs")
    return folder


@pytest.mark.parametrize("name", ["config.json", "char.dic", "word.dic", "token_embedder.pkl", "encoder.pkl"])
def test_missing_file(copy, tmp_path, name):
    os.remove(copy / name)
    with pytest.raises(ManyLangsError, match=rf"{name}: missing \(an ELMoForManyLangs model folder holds "):
        import_manylangs(str(copy), str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


def test_config_path_naming_no_file(copy, tmp_path):
    (copy / "config.json").write_text(json.dumps({"config_path": "/home/them/cnn_other.json"}))
    with pytest.raises(ManyLangsError, match=r"config.json: config_path '/home/them/cnn_other.json': expected "
                                             r"the architecture JSON 'cnn_other.json' in .*, not found"):
        import_manylangs(str(copy), str(tmp_path / "out"))


@pytest.mark.parametrize("lines, message", [
    (["<bow>\t0", "<eow>\t1", "<oov>\t1"], r"char.dic: line 3: id 1 appears twice \(first on line 2\)"),
    (["<bow>\t0", "<eow>\t2"], r"char.dic: ids are not 0..1: id 1 is missing \(the largest is 2\)"),
    (["<bow>\t0", "<bow>\t1"], r"char.dic: line 2: token '<bow>' appears twice \(first with id 0\)"),
    (["<bow>\tzero"], r"char.dic: line 1: expected 'token<TAB>id' with an integer id >= 0, found '<bow>\\tzero'"),
    (["<bow>\t0", "<eow>\t1"], r"char.dic: missing the entry '<oov>' \(expected <bow>, <eow>, <oov>, <pad>"),
])
def test_bad_dictionary(copy, tmp_path, lines, message):
    (copy / "char.dic").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DictionaryError, match=message):
        import_manylangs(str(copy), str(tmp_path / "out"))


def test_weight_shape_disagreeing_with_the_architecture(copy, tmp_path):
    config = json.loads((copy / "architecture.json").read_text())
    config["encoder"]["dim"] = 32
    (copy / "architecture.json").write_text(json.dumps(config))
    with pytest.raises(ManyLangsError, match=r"encoder.pkl: 'forward_layer_0.input_linearity.weight' has shape "
                                             r"\(64, 8\), the architecture expects \(128, 8\)"):
        import_manylangs(str(copy), str(tmp_path / "out"))


def test_torch_missing(copy, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    with pytest.raises(ManyLangsError, match=r"token_embedder.pkl: reading it needs torch \(pip install "
                                             r"'elmo_keras\[torch\]'\)"):
        import_manylangs(str(copy), str(tmp_path / "out"))


# === An imported model is a model like any other ===

def test_from_preset_loads_the_imported_folder(small):
    from elmo_keras import ElmoBackbone, ElmoEmbedder

    _, out = small
    backbone = ElmoBackbone.from_preset(out)
    ids = CharDicIds.from_folder(out).batch(theirs.SENTENCES[:2])
    activations = np.asarray(backbone(ids)["activations"])
    expected = ElmoEmbedder(os.path.join(out, "options.json"), os.path.join(out, "weights.hdf5"),
                            token_cache_size=0).embed_sentences(theirs.SENTENCES[:2])
    for k, (sentence, vectors) in enumerate(zip(theirs.SENTENCES[:2], expected)):
        # The embedder pads to other shapes: equal within the float32 sensitivity of their model.
        atol = float32_tolerance(*_their_float64_and_float32(small[0], [sentence]))
        np.testing.assert_allclose(activations[k, :, 1 : len(sentence) + 1], vectors, rtol=0, atol=atol)


def test_fine_tuning_an_imported_model(small):
    """`fit` trains the mix, the head and the imported biLM (its word and char embeddings included)."""
    import keras

    from elmo_keras import Elmo

    _, out = small
    keras.utils.set_random_seed(0)
    elmo = Elmo.from_files(os.path.join(out, "options.json"), os.path.join(out, "weights.hdf5"),
                           trainable_backbone=True, dropout=0.0)
    char_ids = keras.Input((None, 51), dtype="int32")
    vectors = elmo(char_ids)["elmo_representations"][0]
    pooled = keras.layers.GlobalAveragePooling1D()(vectors)
    model = keras.Model(char_ids, keras.layers.Dense(2, activation="softmax")(pooled))
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    x = CharDicIds.from_folder(out).batch(theirs.SENTENCES)
    y = np.array([0, 1, 0, 1, 0, 1])
    cnn = elmo.bilm.get_layer("char_cnn")
    before = cnn.word_embed.numpy().copy(), cnn.char_embed.numpy().copy()
    history = model.fit(x, y, epochs=8, batch_size=6, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0], history
    assert not np.array_equal(cnn.word_embed.numpy(), before[0])
    assert not np.array_equal(cnn.char_embed.numpy(), before[1])


def test_export_of_an_imported_model(small, tmp_path):
    """`elmo-keras export --model OUT_DIR`: ids through the dictionaries in the graph, core ops only."""
    import contextlib
    import io

    import tensorflow as tf

    from elmo_keras import ElmoEmbedder
    from elmo_keras.cli import main

    folder, out = small
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["export", "--model", out, str(tmp_path / "exported")]) == 0
    result = json.loads(stdout.getvalue())
    assert result["non_core_ops"] == []
    loaded = tf.saved_model.load(result["export_dir"])
    sentences = theirs.SENTENCES[:4]
    text = tf.constant([" ".join(s) for s in sentences] + [""])
    served = loaded.signatures["default"](text=text)
    assert served["sequence_len"].numpy().tolist() == [len(s) for s in sentences] + [0]
    ids = CharDicIds.from_folder(out).batch(sentences)
    by_ids = loaded.signatures["char_ids"](char_ids=tf.constant(ids))
    expected = ElmoEmbedder(os.path.join(out, "options.json"), os.path.join(out, "weights.hdf5")).embed_sentences(
        sentences)
    atol = float32_tolerance(*_their_float64_and_float32(folder, sentences))
    for k, (sentence, vectors) in enumerate(zip(sentences, expected)):
        n = len(sentence)
        for output in (served, by_ids):
            np.testing.assert_allclose(output["lstm_outputs2"][k, :n].numpy(), vectors[2], rtol=0, atol=atol)
            np.testing.assert_allclose(output["word_emb"][k, :n].numpy(), vectors[0, :, :8], rtol=0, atol=atol)
    with pytest.raises(tf.errors.InvalidArgumentError, match="the word id"):
        bad = ids.copy()
        bad[0, 1, -1] = 10_000
        loaded.signatures["char_ids"](char_ids=tf.constant(bad))


# === keras-hub: a preset of an imported model, its tokenizer carrying the dictionaries ===

TEXTS = [" ".join(s) for s in theirs.SENTENCES]


@pytest.fixture(scope="module")
def imported_preset(small, tmp_path_factory):
    """`elmo-keras to-preset` of the small imported model."""
    import contextlib
    import io

    from elmo_keras.cli import main

    pytest.importorskip("keras_hub", reason="needs keras-hub: the keras-hub extra")
    preset = str(tmp_path_factory.mktemp("preset") / "imported")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["to-preset", preset, "--model", small[1]]) == 0
    return preset


def test_to_preset_of_an_imported_model_loads_with_every_loader(small, imported_preset):
    import keras_hub

    from elmo_keras import ElmoBackbone, ElmoTokenizer

    _, out = small
    assert sorted(os.listdir(os.path.join(imported_preset, "assets", "tokenizer"))) == ["char.dic", "word.dic"]
    with open(os.path.join(imported_preset, "README.md"), encoding="utf-8") as f:
        assert "an imported ELMoForManyLangs model's files" in f.read()
    expected_ids = CharDicIds.from_folder(out).batch(theirs.SENTENCES)
    for tokenizer in (ElmoTokenizer.from_preset(imported_preset),
                      keras_hub.models.Tokenizer.from_preset(imported_preset)):
        assert type(tokenizer) is ElmoTokenizer
        np.testing.assert_array_equal(np.asarray(tokenizer(TEXTS)), expected_ids)
    # The same weights, the same computation on the same ids: bit for bit.
    expected = np.asarray(ElmoBackbone.from_preset(out)(expected_ids)["activations"])
    for backbone in (ElmoBackbone.from_preset(imported_preset),
                     keras_hub.models.Backbone.from_preset(imported_preset)):
        assert type(backbone) is ElmoBackbone
        np.testing.assert_array_equal(np.asarray(backbone(expected_ids)["activations"]), expected)


def test_text_classifier_on_an_imported_model(imported_preset, tmp_path):
    import keras
    import keras_hub

    from elmo_keras import ElmoTextClassifier

    keras.utils.set_random_seed(0)
    classifier = ElmoTextClassifier.from_preset(imported_preset, num_classes=2, dropout=0.0)
    labels = np.array([0, 1, 0, 1, 0, 1])
    history = classifier.fit(TEXTS, labels, epochs=10, batch_size=len(TEXTS), verbose=0).history["loss"]
    assert history[-1] < history[0]
    expected = classifier.predict(TEXTS, verbose=0)
    classifier.save_to_preset(str(tmp_path / "classifier"))
    reloaded = keras_hub.models.TextClassifier.from_preset(str(tmp_path / "classifier"))
    assert type(reloaded) is ElmoTextClassifier
    np.testing.assert_array_equal(reloaded.predict(TEXTS, verbose=0), expected)


def test_token_classifier_on_an_imported_model(small):
    import keras

    from elmo_keras import ElmoTokenClassifier

    pytest.importorskip("keras_hub", reason="needs keras-hub: the keras-hub extra")
    keras.utils.set_random_seed(0)
    # From the imported folder itself: its dictionaries beside options.json make the tokenizer.
    tagger = ElmoTokenClassifier.from_preset(small[1], num_classes=3, dropout=0.0)
    width = max(len(s) for s in theirs.SENTENCES)
    tokens = np.array([s + [""] * (width - len(s)) for s in theirs.SENTENCES], dtype=object)
    labels = np.where(tokens == "", -1, np.arange(width) % 3)
    history = tagger.fit(tokens, labels, epochs=10, batch_size=len(tokens), verbose=0).history["loss"]
    assert history[-1] < history[0]
    assert tagger.predict(tokens, verbose=0).shape == (len(tokens), width, 3)


def test_text_embedder_of_an_imported_folder_reads_text(small):
    from elmo_keras import ElmoTextEmbedder

    _, out = small
    embedder = ElmoTextEmbedder.from_preset(out)  # its tokenizer: the folder's dictionaries
    ids = CharDicIds.from_folder(out).batch(theirs.SENTENCES)
    np.testing.assert_array_equal(np.asarray(embedder.tokenizer(TEXTS)), ids)
    vectors = embedder.predict(TEXTS, batch_size=len(TEXTS), verbose=0)
    np.testing.assert_array_equal(vectors["elmo"], embedder.predict(ids, batch_size=len(TEXTS), verbose=0)["elmo"])
    assert vectors["elmo"].shape == (len(TEXTS), max(len(s) for s in theirs.SENTENCES), 16)


def test_text_embedder_built_on_an_imported_backbone_takes_text_only_through_its_dictionaries(small):
    """The backbone does not hold char.dic / word.dic: without their tokenizer, text is refused, not misread."""
    from elmo_keras import ElmoBackbone, ElmoTextEmbedder, ElmoTokenizer

    _, out = small
    backbone = ElmoBackbone.from_preset(out)
    ids = CharDicIds.from_folder(out).batch(theirs.SENTENCES)
    ids_only = ElmoTextEmbedder(backbone)
    assert ids_only.predict(ids, batch_size=len(TEXTS), verbose=0)["elmo"].shape[0] == len(TEXTS)
    with pytest.raises(ValueError, match=r"char\.dic and word\.dic.*from_preset"):
        ids_only.predict(TEXTS, verbose=0)
    tokenizer = ElmoTokenizer(char_dictionary=os.path.join(out, "char.dic"),
                              word_dictionary=os.path.join(out, "word.dic"))
    embedder = ElmoTextEmbedder(backbone, tokenizer=tokenizer)
    np.testing.assert_array_equal(np.asarray(embedder.tokenizer(TEXTS)), ids)
    np.testing.assert_array_equal(embedder.predict(TEXTS, batch_size=len(TEXTS), verbose=0)["elmo"],
                                  embedder.predict(ids, batch_size=len(TEXTS), verbose=0)["elmo"])
    config = ids_only.get_config()
    assert config["tokenizer"] is None and type(ids_only).from_config(config).tokenizer is None
