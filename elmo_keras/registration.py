"""Every Keras class that elmo_keras saves, registered as soon as Keras is loaded.

`keras.saving.load_model` finds a custom class only once the module defining
it has been imported (its `register_keras_serializable` decorator has run).
`import elmo_keras` loads its names lazily and must not start Keras itself
(`import elmo_keras.training.data`, the data pipeline, runs without it), so
it cannot simply import those modules. Instead `register_on_keras_import`,
called by `elmo_keras/__init__.py`, arranges for them to be imported right
after Keras:

- Keras already imported: at once.
- Keras imported later: a `sys.meta_path` finder wraps the loader of the
  first `import keras` (no other import is touched but keras-hub's), and
  registers when Keras' own module has finished executing; or, where
  keras-hub's import imports Keras midway, when keras-hub's has finished
  (the package's models are keras-hub classes then).

An import of Keras from inside an elmo_keras module (its module-level code
is still running, so some of its names do not exist yet) leaves the rest to
the next access of an `elmo_keras.<name>` (`from elmo_keras import Elmo`).
Only a program that imports a submodule directly, never `elmo_keras.<name>`,
and loads classes the submodule does not import, needs to call
`register_keras_classes()` itself.

Example (Keras is loaded by then, so this registers everything):

>>> import keras, elmo_keras
>>> keras.saving.get_registered_object("elmo_keras>ElmoTextEmbedder").__name__
'ElmoTextEmbedder'
"""

import importlib
import sys

# The modules defining every class that elmo_keras saves in `.keras` files.
SAVED_CLASS_MODULES = (
    "elmo_keras.layers",  # CharCNN, Highway, LSTMCellWithProjection, BiLSTM, ScalarMix, ConcatProjectionMix
    "elmo_keras.preprocessing.elmo_tokenizer",  # ElmoTokenizer
    "elmo_keras.models.elmo_backbone",  # ElmoBackbone
    "elmo_keras.models.elmo",  # Elmo
    "elmo_keras.models.elmo_text_embedder",  # ElmoTextEmbedder
    "elmo_keras.models.language_model",  # LanguageModel
    "elmo_keras.models.elmo_text_classifier",  # ElmoTextClassifier, ElmoTextClassifierPreprocessor
    "elmo_keras.models.elmo_token_classifier",  # ElmoTokenClassifier, ElmoTokenClassifierPreprocessor
)

_registered = False


def register_keras_classes():
    """Import every module of `SAVED_CLASS_MODULES` (this imports Keras)."""
    global _registered
    for name in SAVED_CLASS_MODULES:
        importlib.import_module(name)
    _registered = True


def _inside_elmo_keras_module():
    """True while the module-level code of an elmo_keras submodule runs on this thread."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__", "").startswith("elmo_keras."):
            return True
        frame = frame.f_back
    return False


def _keras_hub_importing():
    """True while keras-hub's own import runs (it imports Keras midway): its classes, which the package's
    models build on, exist only once it has finished, and registering waits for that."""
    module = sys.modules.get("keras_hub")
    return module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False)


def register_if_keras_loaded(finished=None):
    """Register unless already done, Keras is not loaded, or an elmo_keras import is half done.

    `finished`: the module whose import has just finished (its import
    machinery still marks it as initializing). Never raises: a failure here
    must not break `import keras`. It warns
    instead, and `load_model` then reports the class it cannot find.
    """
    if (_registered or "keras" not in sys.modules or _inside_elmo_keras_module()
            or (finished != "keras_hub" and _keras_hub_importing())):
        return
    try:
        register_keras_classes()
    except Exception as error:  # noqa: BLE001
        import warnings

        warnings.warn(f"elmo_keras could not register its Keras classes ({error!r}); import "
                      f"elmo_keras.registration and call register_keras_classes() before "
                      f"keras.saving.load_model to see the error", stacklevel=2)


class _RegisterAfterKeras:
    """Loader wrapper: Keras' own loader runs, then elmo_keras registers its classes."""

    def __init__(self, loader, finder):
        self.loader = loader
        self.finder = finder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps its own loader from here on; once Keras and keras-hub (where installed) have
        # both been imported, imports no longer consult the finder.
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        if all(name in sys.modules for name in _WATCHED) and self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        register_if_keras_loaded(finished=module.__name__)

    def __getattr__(self, name):
        return getattr(self.loader, name)


# The modules after whose import the package registers: Keras, and keras-hub, which imports Keras midway
# through its own import (registering waits for its end).
_WATCHED = ("keras", "keras_hub")


class _KerasImportFinder:
    """A `sys.meta_path` finder that only ever answers for the top-level `keras` and `keras_hub` modules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _WATCHED:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None  # not installed: the import fails as it would without this finder
        # Not removed yet: a spec may be looked up without any import
        # (TensorFlow's `importlib.util.find_spec("keras")` does), so this
        # finder stays until a loader it wrapped runs.
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisterAfterKeras(spec.loader, self)
        return spec


def register_on_keras_import():
    """Register now if Keras is loaded, else right after the first `import keras`."""
    if "keras" in sys.modules:
        register_if_keras_loaded()
    elif not any(isinstance(finder, _KerasImportFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _KerasImportFinder())


# Arguments that Keras' own Layer and Model take besides a class's.
_KERAS_ARGUMENTS = frozenset({"name", "trainable", "dtype", "autocast"})


def check_saved_config(cls, config):
    """Refuse a saved config with arguments that this version's `cls` does not take, in one line.

    Keras' `Model` takes unknown arguments silently, so that a `.keras` file
    written by a newer elmo_keras, with an argument that changes the model,
    would load as something else.
    """
    import inspect

    # The package is imported by now (its classes call this); importing it here would be a cycle.
    version = getattr(sys.modules.get("elmo_keras"), "__version__", "")
    own = set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}
    unknown = sorted(set(config) - own - _KERAS_ARGUMENTS)
    if unknown:
        raise ValueError(f"{cls.__name__}: the saved model has the argument(s) {', '.join(unknown)}, which "
                         f"elmo_keras {version} does not know: a newer elmo_keras saved it; upgrade "
                         f"(pip install -U elmo-keras)")
