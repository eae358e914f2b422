"""Hostile requests to the exported SavedModel, and the same model under 8 threads at once.

The SavedModel of the bilm-tf fixture is exported once for the module and
loaded once; every abuse goes to that one loaded object, and after each the
object must still answer a normal request with exactly its first answer (the
process keeps serving). A bad request is a TypeError (arguments that do not
bind to the signature), a ValueError or a tf.errors.InvalidArgumentError
whose message names the input and what was expected; nothing crashes the
interpreter. `tests/serving/test_export.py` checks the normal outputs against the
embedder; here the inputs are what a careless or hostile client sends.
"""

import threading

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS  # noqa: E402
from reference_bilm import batching_tolerance  # noqa: E402

from elmo_keras import batch_to_ids, export_savedmodel  # noqa: E402
from elmo_keras.preprocessing import char_ids_tf  # noqa: E402

P = 16  # projection_dim of the fixture model
NORMAL = ["the cat sat on the mat", "a", ""]
OUTPUTS = ["default", "elmo", "lstm_outputs1", "lstm_outputs2", "sequence_len", "word_emb"]
BAD_REQUEST = (TypeError, ValueError, tf.errors.InvalidArgumentError)


def tolerance():
    """The atol between answers to one sentence in requests of other shapes (~3e-6, see batching_tolerance).

    The same request again is the same computation and is compared bit for bit.
    """
    probe = (tuple(NORMAL[0].split()), ("a", "b", "c"), tuple("w%d" % (i % 50) for i in range(300)))
    return batching_tolerance(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, probe)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The loaded SavedModel and its first answer to the normal request."""
    out_dir = tmp_path_factory.mktemp("abuse") / "elmo"
    result = export_savedmodel(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, str(out_dir), warmup=False)
    loaded = tf.saved_model.load(result["export_dir"])
    return loaded, _numpy(loaded.signatures["default"](text=tf.constant(NORMAL)))


def _numpy(outputs):
    return {name: value.numpy() for name, value in outputs.items()}


def assert_still_serving(served):
    loaded, first = served
    again = _numpy(loaded.signatures["default"](text=tf.constant(NORMAL)))
    assert sorted(again) == OUTPUTS
    for name in OUTPUTS:
        assert np.array_equal(again[name], first[name]), name


def _tokens(rows):
    width = max([len(r) for r in rows] + [0])
    return tf.constant([r + [""] * (width - len(r)) for r in rows] or np.zeros((0, 0), object), tf.string)


# name: (signature, inputs, message the error must contain). The message is
# matched against str(error), which for InvalidArgumentError carries the graph
# node's own message.
ABUSES = {
    # wrong dtypes
    "text int32": ("default", lambda: {"text": tf.constant([1, 2])}, "expected to be a string tensor but is a int32"),
    "text float": ("default", lambda: {"text": tf.constant([1.5])}, "expected to be a string tensor but is a float"),
    "text bool": ("default", lambda: {"text": tf.constant([True])}, "expected to be a string tensor but is a bool"),
    "tokens int32": ("tokens", lambda: {"tokens": tf.constant([[1]]), "sequence_len": tf.constant([1])},
                     "expected to be a string tensor but is a int32"),
    "sequence_len float": ("tokens", lambda: {"tokens": _tokens([["a"]]), "sequence_len": tf.constant([1.0])},
                           "expected to be a int32 tensor but is a float"),
    "sequence_len int64": ("tokens", lambda: {"tokens": _tokens([["a"]]),
                                              "sequence_len": tf.constant([1], tf.int64)},
                           "expected to be a int32 tensor but is a int64"),
    "sequence_len string": ("tokens", lambda: {"tokens": _tokens([["a"]]), "sequence_len": tf.constant(["1"])},
                            "expected to be a int32 tensor but is a string"),
    "char_ids float": ("char_ids", lambda: {"char_ids": tf.zeros([1, 3, 50])},
                       "expected to be a int32 tensor but is a float"),
    "char_ids int64": ("char_ids", lambda: {"char_ids": tf.zeros([1, 3, 50], tf.int64)},
                       "expected to be a int32 tensor but is a int64"),
    "char_ids uint8": ("char_ids", lambda: {"char_ids": tf.zeros([1, 3, 50], tf.uint8)},
                       "expected to be a int32 tensor but is a uint8"),
    "char_ids string": ("char_ids", lambda: {"char_ids": tf.fill([1, 3, 50], "a")},
                        "expected to be a int32 tensor but is a string"),
    # wrong ranks and shapes
    "text scalar tensor": ("default", lambda: {"text": tf.constant("a b")},
                           r"Shape of tensor text \[\] is not compatible with expected shape \[\?\]"),
    "text rank 2": ("default", lambda: {"text": tf.constant([["a b"]])},
                    r"Shape of tensor text \[1,1\] is not compatible with expected shape \[\?\]"),
    "text rank 3": ("default", lambda: {"text": tf.constant([[["a"]]])},
                    r"Shape of tensor text \[1,1,1\] is not compatible"),
    "text Python str": ("default", lambda: {"text": "a b"}, "Can not cast TensorSpec"),
    "tokens rank 1": ("tokens", lambda: {"tokens": tf.constant(["a"]), "sequence_len": tf.constant([1])},
                      r"Shape of tensor tokens \[1\] is not compatible with expected shape \[\?,\?\]"),
    "tokens rank 3": ("tokens", lambda: {"tokens": tf.constant([[["a"]]]), "sequence_len": tf.constant([1])},
                      r"Shape of tensor tokens \[1,1,1\] is not compatible"),
    "sequence_len scalar": ("tokens", lambda: {"tokens": _tokens([["a"]]), "sequence_len": tf.constant(1)},
                            r"Shape of tensor sequence_len \[\] is not compatible with expected shape \[\?\]"),
    "sequence_len rank 2": ("tokens", lambda: {"tokens": _tokens([["a"]]), "sequence_len": tf.constant([[1]])},
                            r"Shape of tensor sequence_len \[1,1\] is not compatible"),
    "char_ids rank 2": ("char_ids", lambda: {"char_ids": tf.zeros([3, 50], tf.int32)},
                        r"Shape of tensor char_ids \[3,50\] is not compatible with expected shape \[\?,\?,50\]"),
    "char_ids rank 4": ("char_ids", lambda: {"char_ids": tf.zeros([1, 1, 3, 50], tf.int32)},
                        r"Shape of tensor char_ids \[1,1,3,50\] is not compatible"),
    "char_ids width 49": ("char_ids", lambda: {"char_ids": tf.ones([1, 3, 49], tf.int32)},
                          r"Shape of tensor char_ids \[1,3,49\] is not compatible"),
    "char_ids width 51": ("char_ids", lambda: {"char_ids": tf.ones([1, 3, 51], tf.int32)},
                          r"Shape of tensor char_ids \[1,3,51\] is not compatible"),
    # arguments that do not bind
    "no argument": ("default", lambda: {}, "missing a required argument: 'text'"),
    "misnamed argument": ("default", lambda: {"texts": tf.constant(["a"])}, "missing a required argument: 'text'"),
    "extra argument": ("default", lambda: {"text": tf.constant(["a"]), "k": tf.constant(1)},
                       "got an unexpected keyword argument 'k'"),
    "tokens without sequence_len": ("tokens", lambda: {"tokens": _tokens([["a"]])},
                                    "missing a required argument: 'sequence_len'"),
    # sequence_len out of range
    "sequence_len -1": ("tokens", lambda: {"tokens": _tokens([["a"]]), "sequence_len": tf.constant([-1])},
                        "sequence_len must be >= 0"),
    "sequence_len int32 min": ("tokens", lambda: {"tokens": _tokens([["a"]]),
                                                  "sequence_len": tf.constant([-2**31])},
                               "sequence_len must be >= 0"),
    "sequence_len max_len + 1": ("tokens", lambda: {"tokens": _tokens([["a", "b"], ["c"]]),
                                                    "sequence_len": tf.constant([2, 3])},
                                 r"sequence_len must be <= max_len \(tokens.shape\[1\]\)"),
    "sequence_len int32 max": ("tokens", lambda: {"tokens": _tokens([["a"]]),
                                                  "sequence_len": tf.constant([2**31 - 1])},
                               "sequence_len must be <= max_len"),
    "sequence_len 1 on 0 columns": ("tokens", lambda: {"tokens": tf.zeros([2, 0], tf.string),
                                                       "sequence_len": tf.constant([0, 1])},
                                    "sequence_len must be <= max_len"),
    "sequence_len too few": ("tokens", lambda: {"tokens": _tokens([["a"], ["b"]]), "sequence_len": tf.constant([1])},
                             "sequence_len must have one entry per row of tokens"),
    "sequence_len too many": ("tokens", lambda: {"tokens": _tokens([["a"]]), "sequence_len": tf.constant([1, 1])},
                              "sequence_len must have one entry per row of tokens"),
    "sequence_len for no row": ("tokens", lambda: {"tokens": tf.zeros([0, 0], tf.string),
                                                   "sequence_len": tf.constant([0])},
                                "sequence_len must have one entry per row of tokens"),
    # char ids out of range or without boundaries
    "char_ids 262": ("char_ids", lambda: {"char_ids": tf.fill([1, 3, 50], 262)}, r"char_ids must be in \[0, 262\)"),
    "char_ids int32 max": ("char_ids", lambda: {"char_ids": tf.fill([2, 3, 50], 2**31 - 1)},
                           r"char_ids must be in \[0, 262\)"),
    "char_ids -1": ("char_ids", lambda: {"char_ids": tf.fill([1, 3, 50], -1)}, r"char_ids must be in \[0, 262\)"),
    "char_ids one bad id": ("char_ids", lambda: {"char_ids": tf.tensor_scatter_nd_update(
        tf.constant(batch_to_ids([["a", "b"]])), [[0, 1, 7]], [-5])}, r"char_ids must be in \[0, 262\)"),
    "char_ids time 0": ("char_ids", lambda: {"char_ids": tf.zeros([1, 0, 50], tf.int32)}, "time >= 2"),
    "char_ids time 1": ("char_ids", lambda: {"char_ids": tf.ones([1, 1, 50], tf.int32)}, "time >= 2"),
    "char_ids empty batch time 0": ("char_ids", lambda: {"char_ids": tf.zeros([0, 0, 50], tf.int32)}, "time >= 2"),
    # __call__ (the Reusable SavedModel function) takes text only
    "__call__ float": ("__call__", lambda: {"text": tf.constant([1.0])}, "Can not cast TensorSpec"),
    "__call__ rank 2": ("__call__", lambda: {"text": tf.constant([["a"]])}, "Can not cast TensorSpec"),
}


@pytest.mark.parametrize("case", sorted(ABUSES))
def test_abuse_is_a_clear_error_and_the_model_keeps_serving(served, case):
    loaded, _ = served
    signature, make_inputs, message = ABUSES[case]
    function = loaded.__call__ if signature == "__call__" else loaded.signatures[signature]
    with pytest.raises(BAD_REQUEST, match=message) as error:
        function(**make_inputs())
    assert len(str(error.value)) < 3000  # readable: the node's message, not a dump of the graph
    assert_still_serving(served)


@pytest.mark.parametrize("signature", ["default", "tokens", "char_ids"])
@pytest.mark.parametrize("shape", ["no rows", "no tokens"])
def test_empty_batches(served, signature, shape):
    loaded, _ = served
    rows = 0 if shape == "no rows" else 3
    inputs = {"default": {"text": tf.constant([""] * rows, tf.string)},
              "tokens": {"tokens": tf.zeros([rows, 0 if shape == "no tokens" else 4], tf.string),
                         "sequence_len": tf.zeros([rows], tf.int32)},
              "char_ids": {"char_ids": tf.constant(batch_to_ids([[]] * rows))}}[signature]
    out = _numpy(loaded.signatures[signature](**inputs))
    width = 4 if signature == "tokens" and shape == "no rows" else 0
    assert out["elmo"].shape == (rows, width, 2 * P) and out["word_emb"].shape == (rows, width, P)
    assert out["default"].shape == (rows, 2 * P) and out["sequence_len"].tolist() == [0] * rows
    assert all(np.all(v == 0) for v in out.values())  # nothing to average: 0, never NaN
    assert_still_serving(served)


def _one_token(loaded, token):
    """The outputs of `token` alone through each signature."""
    raw = token if isinstance(token, bytes) else token.encode("utf-8")
    return {
        "default": _numpy(loaded.signatures["default"](text=tf.constant([raw]))),
        "tokens": _numpy(loaded.signatures["tokens"](tokens=tf.constant([[raw]]),
                                                     sequence_len=tf.constant([1]))),
        "char_ids": _numpy(loaded.signatures["char_ids"](char_ids=tf.constant(batch_to_ids([[token]])))),
    }


@pytest.mark.parametrize("token", ["x" * 100_000, "é" * 50_000, "😀" * 25_000 + "end"],
                         ids=["ascii", "2-byte", "4-byte"])
def test_a_100000_byte_token_is_cut_to_50_characters_like_batch_to_ids(served, token):
    loaded, _ = served
    assert len(token.encode("utf-8")) >= 100_000
    ids = batch_to_ids([[token]])
    # In the graph the same 48 bytes are kept, even when the cut splits a character.
    assert np.array_equal(char_ids_tf.strings_to_char_ids(tf.constant([token]))[0].numpy(), ids)
    assert np.array_equal(char_ids_tf.sentences_to_char_ids(tf.constant([[token]]), [1]).numpy(), ids)
    cut = token.encode("utf-8")[:48]
    long_answers, cut_answers = _one_token(loaded, token), _one_token(loaded, cut)
    for signature in long_answers:
        assert long_answers[signature]["sequence_len"].tolist() == [1]
        for name in OUTPUTS:
            assert np.array_equal(long_answers[signature][name], cut_answers[signature][name]), (signature, name)
            np.testing.assert_allclose(long_answers[signature][name], long_answers["char_ids"][name], rtol=0,
                                       atol=tolerance())
    # Beside other sentences, the sentence's vectors do not change.
    mixed = _numpy(loaded.signatures["default"](text=tf.constant([b"a b c", token.encode("utf-8")])))
    np.testing.assert_allclose(mixed["elmo"][1, :1], long_answers["default"]["elmo"][0], rtol=0, atol=tolerance())
    assert_still_serving(served)


def test_bytes_that_are_not_utf8_are_served_as_their_bytes(served):
    loaded, _ = served
    text = [b"\xff\xfe abc", b"\xc3", b"nul\x00 inside", b"\xed\xa0\x80 surrogate"]
    out = _numpy(loaded.signatures["default"](text=tf.constant(text)))
    assert out["sequence_len"].tolist() == [2, 1, 2, 2]
    by_ids = _numpy(loaded.signatures["char_ids"](char_ids=tf.constant(batch_to_ids([t.split() for t in text]))))
    for name in OUTPUTS:
        np.testing.assert_allclose(out[name], by_ids[name], rtol=0, atol=tolerance())
    assert_still_serving(served)


def test_random_char_ids_in_range_give_finite_outputs_zero_at_padding(served):
    loaded, _ = served
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 262, (4, 9, 50)).astype(np.int32)
    ids[1, 5:] = 0  # a shorter row
    out = _numpy(loaded.signatures["char_ids"](char_ids=tf.constant(ids)))
    assert out["elmo"].shape == (4, 7, 2 * P)
    assert all(np.all(np.isfinite(v)) for v in out.values())
    lengths = out["sequence_len"]
    for row, n in enumerate(lengths):
        assert np.all(out["elmo"][row, n:] == 0) and np.all(out["word_emb"][row, n:] == 0)
    assert_still_serving(served)


def test_a_long_sentence_and_a_wide_batch(served):
    loaded, _ = served
    rng = np.random.default_rng(1)
    words = ["w%d" % i for i in rng.integers(0, 50, 3000)]
    long = _numpy(loaded.signatures["default"](text=tf.constant([" ".join(words)])))
    assert long["elmo"].shape == (1, 3000, 2 * P) and np.all(np.isfinite(long["elmo"]))
    wide = _numpy(loaded.signatures["default"](text=tf.constant(["a b"] * 5000)))
    assert wide["elmo"].shape == (5000, 2, 2 * P)
    # Every row the same sentence: the same vectors, up to the rounding of rows in other kernel blocks.
    np.testing.assert_allclose(wide["elmo"], np.broadcast_to(wide["elmo"][:1], wide["elmo"].shape), rtol=0,
                               atol=tolerance())
    assert_still_serving(served)


# -- concurrency ---------------------------------------------------------------------------------------

def _requests(seed):
    """8 different requests over the three signatures."""
    rng = np.random.default_rng(seed)
    vocabulary = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "Köln", "日本語", "x" * 70]
    requests = []
    for k in range(8):
        sentences = [[str(rng.choice(vocabulary)) for _ in range(rng.integers(0, 15))]
                     for _ in range(rng.integers(1, 9))]
        kind = ("default", "tokens", "char_ids")[k % 3]
        if kind == "default":
            inputs = {"text": tf.constant([" ".join(s) for s in sentences])}
        elif kind == "tokens":
            inputs = {"tokens": _tokens(sentences), "sequence_len": tf.constant([len(s) for s in sentences])}
        else:
            inputs = {"char_ids": tf.constant(batch_to_ids(sentences))}
        requests.append((kind, inputs))
    return requests


def test_eight_threads_at_once_get_the_single_threaded_answers(served):
    loaded, _ = served
    requests = _requests(0)
    expected = [_numpy(loaded.signatures[kind](**inputs)) for kind, inputs in requests]
    rounds = 6
    barrier = threading.Barrier(len(requests))
    answers = [[] for _ in requests]
    errors = []

    def serve(k):
        kind, inputs = requests[k]
        try:
            for _ in range(rounds):
                barrier.wait(timeout=60)  # all 8 calls start together, every round
                answers[k].append(_numpy(loaded.signatures[kind](**inputs)))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(f"thread {k}: {type(error).__name__}: {error}")
            barrier.abort()

    threads = [threading.Thread(target=serve, args=(k,)) for k in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    for k, (kind, _) in enumerate(requests):
        assert len(answers[k]) == rounds
        for answer in answers[k]:
            for name in OUTPUTS:
                assert np.array_equal(answer[name], expected[k][name]), (k, kind, name)
    assert_still_serving(served)
