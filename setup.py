from setuptools import find_packages, setup

setup(
    name="elmo_keras",
    version="0.1.0",
    description="ELMo (deep contextualized word representations) for Keras 3 and TensorFlow 2",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["elmo_keras", "elmo_keras.*"]),
    python_requires=">=3.10",
    install_requires=["keras>=3.10,<4", "numpy", "h5py", "tqdm"],
    extras_require={
        "tf": ["tensorflow==2.20.0", "tensorflow-text==2.20.1"],
        "models": ["tf-models-official==2.20.0"],
        "jax": ["jax"],
    },
    entry_points={"console_scripts": ["elmo-keras=elmo_keras.cli:main"]},
)
