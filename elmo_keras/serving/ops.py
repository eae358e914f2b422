"""Which ops a written SavedModel contains, so that an export can say what a server must provide."""

import os

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from elmo_keras.preprocessing import tokenize


def saved_model_op_types(export_dir):
    """Return the set of op types in a SavedModel: every graph and function.

    Reads `saved_model.pb` directly, so it needs no op to be registered and
    sees the functions of all signatures, `__call__` and the saver. Calls of
    library functions by name are not ops and are left out.
    """
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    return set().union(*(tokenize.graph_def_op_types(meta_graph.graph_def)
                         for meta_graph in saved_model.meta_graphs))


def saved_model_non_core_ops(export_dir):
    """Return the sorted op types of a SavedModel that are not core TensorFlow.

    Core means `tf.raw_ops` has it, as in `tokenize.non_core_ops`: such ops
    are compiled into TensorFlow and stock TF Serving.
    """
    return sorted(t for t in saved_model_op_types(export_dir) if not hasattr(tf.raw_ops, t))
