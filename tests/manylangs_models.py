"""ELMoForManyLangs model folders built with their own code (`elmoformanylangs` 0.0.4), random weights.

For the parity tests: `their_model_folder` writes config.json, the
architecture JSON, char.dic, word.dic, token_embedder.pkl and encoder.pkl as
their releases lay them out; `their_embedder` loads a folder with their
`Embedder`. Both need torch and elmoformanylangs (`require_theirs` skips
without them, saying which is missing).
"""

import importlib.util
import json
import os
import sys
import types

import pytest

# Text of several scripts, astral code points, an unknown character (U+2603) and word, a
# token over 48 code points.
LONG_TOKEN = "Донауфдампфшиффахртсгесельшафтскапитänsmützeнаходка" + "x" * 5
SENTENCES = [
    ["Привет", ",", "мир", "!"],
    ["北京", "是", "中国", "的", "首都", "。", "𠜎𠜱"],
    ["The", "snowman", "☃", "says", "héllo", "<bos>", "world"],
    ["مرحبا", "بالعالم", LONG_TOKEN],
    ["ελληνικά"],
    ["a"],
]
KNOWN_WORDS = ["Привет", ",", "мир", "!", "北京", "中国", "。", "The", "says", "مرحبا", "ελληνικά", "a",
               LONG_TOKEN[:48]]

SMALL = {"encoder": {"name": "elmo", "projection_dim": 8, "cell_clip": 3, "proj_clip": 3, "dim": 16,
                     "n_layers": 2},
         "token_embedder": {"name": "cnn", "activation": "relu", "filters": [[1, 4], [2, 8], [3, 8]],
                            "n_highway": 1, "word_dim": 6, "char_dim": 5, "max_characters_per_token": 50},
         "dropout": 0.1}


def require_theirs():
    """Import elmoformanylangs (and torch), or skip with the reason."""
    for name, why in (("torch", "torch (the torch extra)"),
                      ("elmoformanylangs", "elmoformanylangs==0.0.4.post2 (requirements.txt)")):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"the parity tests need {why}, not installed")
    if "overrides" not in sys.modules and importlib.util.find_spec("overrides") is None:
        # Their Highway.forward is decorated with `overrides.overrides`, which only checks; overrides 4+
        # refuses it at import time. An identity decorator stands in.
        sys.modules["overrides"] = types.SimpleNamespace(overrides=lambda f: f)
    elif "overrides" not in sys.modules:
        import overrides
        if not overrides.__dict__.get("__version__", "4").startswith(("1", "2", "3")):
            sys.modules["overrides"] = types.SimpleNamespace(overrides=lambda f: f)
    import elmoformanylangs
    return elmoformanylangs


def _write_dictionary(path, tokens):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{t}\t{i}\n" for i, t in enumerate(tokens))


def dictionaries(sentences=SENTENCES, known_words=KNOWN_WORDS):
    """(chars, words) in id order: the markers, then most characters of `sentences` (a few left out: unknown)."""
    chars = ["<bow>", "<eow>", "<oov>", "<pad>", "<bos>", "<eos>"]
    for sentence in sentences:
        for token in sentence:
            for c in token:
                if c not in chars and c not in "☃öü𠜱":
                    chars.append(c)
    words = ["<oov>", "<pad>", "<bos>", "<eos>", *known_words]
    return chars, words


def their_model_folder(folder, config=SMALL, seed=0, config_path=None):
    """Write an ELMoForManyLangs model folder with their own modules and random weights; return it."""
    theirs = require_theirs()
    import torch
    from elmoformanylangs.frontend import Model
    from elmoformanylangs.modules.embedding_layer import EmbeddingLayer

    os.makedirs(folder, exist_ok=True)
    chars, words = dictionaries()
    _write_dictionary(os.path.join(folder, "char.dic"), chars)
    _write_dictionary(os.path.join(folder, "word.dic"), words)
    with open(os.path.join(folder, "architecture.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"config_path": config_path or "architecture.json", "model": folder}, f)
    torch.manual_seed(seed)
    char_emb = EmbeddingLayer(config["token_embedder"]["char_dim"], {c: i for i, c in enumerate(chars)},
                              fix_emb=False, embs=None)
    word_emb = EmbeddingLayer(config["token_embedder"]["word_dim"], {w: i for i, w in enumerate(words)},
                              fix_emb=False, embs=None)
    model = Model(config, word_emb, char_emb, use_cuda=False)
    with torch.no_grad():
        # Every weight random and away from its initial value (their EmbeddingLayer leaves NaN in the
        # <pad> rows; biases start at 0 or 1), so that each takes part in the comparison.
        for name, p in model.named_parameters():
            fan_in = p.shape[-1] if p.dim() > 1 else p.shape[0]
            p.copy_(torch.randn(p.shape) * (1.0 / fan_in ** 0.5))
    torch.save(model.token_embedder.state_dict(), os.path.join(folder, "token_embedder.pkl"))
    torch.save(model.encoder.state_dict(), os.path.join(folder, "encoder.pkl"))
    assert theirs
    return folder


def their_embedder(folder):
    """Their `Embedder` on CPU, for a folder of `their_model_folder`."""
    require_theirs()
    import torch
    from elmoformanylangs import Embedder

    torch.set_num_threads(1)
    return Embedder(folder, batch_size=64)


def their_layers(embedder, sentences):
    """Their all-layer output (`output_layer=-2`) of each sentence, their encoder's state reset first."""
    import torch
    embedder.model.encoder.reset_states() if hasattr(embedder.model.encoder, "reset_states") else None
    embedder.model.encoder._states = None
    with torch.no_grad():
        return embedder.sents2elmo(sentences, output_layer=-2)


def their_ids(embedder, sentence):
    """Their word and char ids of one sentence (with <bos>, <eos>), as their `sents2elmo` makes them."""
    from elmoformanylangs.elmo import read_list
    from elmoformanylangs.frontend import create_one_batch
    data, _ = read_list([sentence], embedder.config["token_embedder"]["max_characters_per_token"])
    w, c, _, _ = create_one_batch(data, embedder.word_lexicon, embedder.char_lexicon, embedder.config)
    return w.numpy()[0], c.numpy()[0]
