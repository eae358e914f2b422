"""TF Serving warm-up requests: one PredictionLog record per signature, written without tensorflow-serving-api."""

import os

import numpy as np
import tensorflow as tf

from elmo_keras.preprocessing.char_ids import MAX_CHARACTERS_PER_TOKEN
from elmo_keras.preprocessing.char_ids import batch_to_ids

# Where TF Serving looks for warm-up requests in a version directory.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# Sentences of the warm-up requests: TF Serving runs each once after loading,
# so that the first user request does not pay for graph set-up.
WARMUP_SENTENCES = (["the", "cat", "sat", "on", "the", "mat"], ["ELMo"])


def _varint(value):
    """Protocol-buffer base-128 varint encoding of a non-negative int."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number, payload):
    """A length-delimited protocol-buffer field (wire type 2)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def prediction_log_record(signature_name, inputs, model_name="elmo"):
    """Serialize a `tensorflow.serving.PredictionLog` holding one PredictRequest.

    Encoded by hand, because tensorflow-serving-api is usually not installed
    and these few fields are all a warm-up record needs (field numbers from
    tensorflow_serving/apis/{prediction_log,predict,model}.proto):
    PredictionLog.predict_log = 6, PredictLog.request = 1,
    PredictRequest.model_spec = 1, PredictRequest.inputs = 2 (a map: entries
    with key = 1, value = 2), ModelSpec.name = 1, ModelSpec.signature_name = 3.

    Args:
        signature_name: str. The signature the request calls.
        inputs: dict of input name to array (anything `tf.make_tensor_proto`
            takes, with the signature's dtype).
        model_name: str. ModelSpec.name; TF Serving ignores it in warm-up.

    Returns bytes, one record of the warm-up TFRecord file.
    """
    model_spec = _field(1, model_name) + _field(3, signature_name)
    request = _field(1, model_spec)
    for key in sorted(inputs):
        tensor = tf.make_tensor_proto(inputs[key]).SerializeToString()
        request += _field(2, _field(1, key) + _field(2, tensor))
    return _field(6, _field(1, request))


def warmup_inputs(max_chars=MAX_CHARACTERS_PER_TOKEN, sentences=WARMUP_SENTENCES, token_ids=None):
    """Return {signature name: inputs} for one warm-up request per signature.

    `token_ids`: None (bilm-tf's char ids) or the `CharDicIdsTF` of an ELMoForManyLangs model.
    """
    max_len = max(len(s) for s in sentences)
    text = np.array([" ".join(s).encode("utf-8") for s in sentences], dtype=object)
    tokens = np.array([[t.encode("utf-8") for t in s] + [b""] * (max_len - len(s)) for s in sentences],
                      dtype=object)
    return {
        "default": {"text": text},
        "serving_default": {"text": text},
        "tokens": {"tokens": tokens, "sequence_len": np.array([len(s) for s in sentences], np.int32)},
        "char_ids": {"char_ids": batch_to_ids(sentences, max_chars) if token_ids is None else
                     token_ids(tf.ragged.constant([list(s) for s in sentences], dtype=tf.string)).numpy()},
    }


def write_warmup_requests(path, max_chars=MAX_CHARACTERS_PER_TOKEN, model_name="elmo", token_ids=None):
    """Write TF Serving warm-up requests (a TFRecord of PredictionLogs) to path."""
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name, inputs in sorted(warmup_inputs(max_chars, token_ids=token_ids).items()):
            writer.write(prediction_log_record(signature_name, inputs, model_name))
