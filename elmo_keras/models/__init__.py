"""Models built from the layers: the biLM, the Elmo layer, the language model."""
