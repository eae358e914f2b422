"""Keras 3 layers of ELMo, written with `keras.ops` only."""

from elmo_keras.layers.bilstm import BiLSTM, reverse_within_length
from elmo_keras.layers.char_cnn import CharCNN
from elmo_keras.layers.concat_projection_mix import ConcatProjectionMix
from elmo_keras.layers.elmo_head import ElmoHead
from elmo_keras.layers.highway import Highway
from elmo_keras.layers.lstm_projection import LSTMCellWithProjection
from elmo_keras.layers.scalar_mix import ScalarMix
