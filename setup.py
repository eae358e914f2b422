"""Packaging of elmo_keras: `pip install .`, `pip install -e .`, `pip wheel --no-deps .`.

The version is read from `elmo_keras/__init__.py` (`__version__`), its one
source. The bundled default model lives at the top of the repository in
`savedmodels/default/`; the mapping below installs it inside the package as
`elmo_keras/savedmodels/default/`, where `elmo_keras.pretrained` looks for it
(and, in a source tree or an editable install, at `savedmodels/default/`).

The extras add what each use needs, as ranges: from the oldest version tested
(the pinned development stack of `requirements.txt`) to the newest tested (the
newest that PyPI served to `.ci/newest_stack`), so that an environment that
already has a TensorFlow, Keras or JAX of that range keeps it. Model Garden
keeps its exact pins (tf-models-official 2.20.0 requires TensorFlow 2.20).
`requirements.txt` is the whole pinned development stack.
"""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).resolve().parent
VERSION = re.search(r'^__version__ = "([^"]+)"$', (HERE / "elmo_keras" / "__init__.py").read_text("utf-8"),
                    re.MULTILINE).group(1)

# The bundled model, as package data of `elmo_keras.savedmodels` (the folder `savedmodels/`).
BUNDLED_MODEL = [f"default/{name}" for name in (
    "options.json", "weights.hdf5", "MODEL_CARD.md", "LICENSE.wordnet", "LICENSE.python", "vocab.txt",
    "training_options.json", "make_corpus.py", "savedmodel/*/*.pb", "savedmodel/*/variables/*", "savedmodel/*/assets.extra/*")]

# Tested: 2.20.0 with tensorflow-text 2.20.1 (requirements.txt), 2.21.0 with tensorflow-text 2.21.1 (.ci/newest_stack).
# Each tensorflow-text release requires the TensorFlow of its own minor version.
TENSORFLOW = ["tensorflow>=2.20,<2.22", "tensorflow-text>=2.20,<2.22"]
# tensorflow-hub brings tf_keras, which hub.KerasLayer is built on, and imports pkg_resources, which
# setuptools 81 removed.
HUB = ["tensorflow-hub>=0.16.1,<0.17", "setuptools<81"]
EXTRAS = {
    "tf": TENSORFLOW,
    "jax": ["jax>=0.10,<0.11", "jaxlib>=0.10,<0.11"],  # the CPU build; use with KERAS_BACKEND=jax; tested: 0.10.2
    "torch": ["torch>=2.13,<3"],  # use with KERAS_BACKEND=torch; tested with 2.13.0
    "hub": HUB,
    # keras-hub: ElmoBackbone becomes a keras_hub.models.Backbone (keras-hub's loaders, save_to_preset).
    # It requires tensorflow-text (so TensorFlow) on Linux and macOS; tested: 0.32.0.
    "keras-hub": ["keras-hub>=0.32,<0.33"],
    # elmo_keras.beam and `elmo-keras embed-beam` import Beam, on first use only (the rest of the package
    # and its command line run without it). 2.77.0 co-installs with TensorFlow 2.20 and numpy 2.4 on
    # Python 3.11 (it caps protobuf below 7 and pillow below 13).
    "beam": ["apache-beam==2.77.0", "google-crc32c>=1.5"],  # google-crc32c: TFRecord output (embed-beam)
    # elmo_keras.spark and `elmo-keras embed-spark`: PySpark carries Spark itself (needs a Java 17+ runtime);
    # imported on first use only. Tested with 4.3.0.
    "spark": ["pyspark>=4.3,<5"],
    "notebooks": ["matplotlib>=3.8", "nbformat>=5.9", "nbclient>=0.10", "ipykernel>=6.29", *HUB],
    "moses": ["sacremoses>=0.1,<0.3"],  # --tokenizer moses: the Moses tokenizer, in Python
    "test": ["pytest>=8", "hypothesis>=6.100"],
    # TensorFlow Model Garden (tf_keras): examples/model_garden_classifier.py. tf-models-official 2.20.0
    # requires TensorFlow and tensorflow-text 2.20: the pins of the development stack.
    "model-garden": ["tf-models-official==2.20.0", "tensorflow==2.20.0", "tensorflow-text==2.20.1", *HUB],
}

setup(
    name="elmo_keras",
    version=VERSION,
    description="ELMo (deep contextualized word representations) for Keras 3 and TensorFlow 2",
    long_description=(HERE / "README.md").read_text("utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Text Processing :: Linguistic",
    ],
    packages=[*find_packages(include=["elmo_keras", "elmo_keras.*"]), "elmo_keras.savedmodels"],
    package_dir={"elmo_keras.savedmodels": "savedmodels"},
    package_data={"elmo_keras.savedmodels": BUNDLED_MODEL},
    include_package_data=False,
    zip_safe=False,
    # Keras 3.15 and JAX 0.10 require Python 3.11 or newer; TensorFlow 2.21 has wheels up to 3.13.
    python_requires=">=3.11",
    # Keras: tested with 3.15.1, on both stacks.
    install_requires=["keras>=3.15,<4", "numpy>=1.26", "h5py>=3.11", "tqdm>=4.62"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["elmo-keras=elmo_keras.cli:main"]},
)
