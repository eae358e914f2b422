"""elmo_keras: ELMo for Keras 3 and TensorFlow 2."""
