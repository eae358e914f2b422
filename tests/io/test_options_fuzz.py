"""options.json fuzz: any broken or absurd options give one OptionsError naming the field.

Never another exception, and never an attempt to build an absurd model: the
validator bounds every size and the parameter count (10**10) before anything
is allocated.
"""

import copy
import json
import math
import re

import numpy as np
import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS

from elmo_keras import OptionsError, load_options
from elmo_keras.io.options import MAX_PARAMETERS, ElmoOptions, parameter_count, validate_options

RELEASED_FILTERS = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]


def released(dim, projection_dim, n_highway):
    return {"lstm": {"dim": dim, "projection_dim": projection_dim, "n_layers": 2, "cell_clip": 3,
                     "proj_clip": 3, "use_skip_connections": True},
            "char_cnn": {"activation": "relu", "embedding": {"dim": 16}, "filters": RELEASED_FILTERS,
                         "max_characters_per_token": 50, "n_characters": 262, "n_highway": n_highway}}


@pytest.mark.parametrize("name, options, parameters", [
    ("small", released(1024, 128, 1), 13_593_296),
    ("medium", released(2048, 256, 1), 28_027_728),
    ("original (and original_5.5b)", released(4096, 512, 2), 93_600_848),
])
def test_released_models_pass_with_their_parameter_counts(name, options, parameters):
    # The counts equal the built models' trainable weights (checked once by building them).
    counts = parameter_count(validate_options(options))
    assert sum(counts.values()) == parameters
    assert sum(counts.values()) * 100 < MAX_PARAMETERS


def fixture_options():
    return json.load(open(FIXTURE_OPTIONS))


def _set(path, value):
    def mutate(options):
        node = options
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return mutate


_DELETE = object()


def _both(first, second):
    def mutate(options):
        first(options)
        second(options)
    return mutate

# (mutation, the field the message must name). Messages read
# "<file>: <field>: expected ..., found ..." or "<file>: <field>: <value> is above the limit ...".
CASES = [
    (_set(["lstm", "dim"], 10**12), r"lstm\.dim: 1000000000000 is above the limit of 1,048,576"),
    (_both(_set(["lstm", "dim"], 2**16), _set(["lstm", "projection_dim"], 2**16)),
     r"lstm\.dim: these options make a biLM of 154,628,128,464 parameters \(154,619,871,232 from lstm\.dim\), "
     r"above the limit of 10,000,000,000 \(the largest released model has about 93\.6 million\)$"),
    (_set(["char_cnn", "filters"], [[1, 10**9]]), r"char_cnn\.filters\[0\]\[1\] \(num_filters\): 1000000000 is above"),
    (_set(["char_cnn", "filters"], [[1, 10**6]]), r"char_cnn\.n_highway: these options make a biLM"),
    (_set(["char_cnn", "filters"], [[1, 4]] * 257), r"char_cnn\.filters: 257 entries, above the limit of 256"),
    (_set(["char_cnn", "n_highway"], 10**6), r"char_cnn\.n_highway: 1000000 is above the limit of 64"),
    (_set(["char_cnn", "max_characters_per_token"], 10**9),
     r"char_cnn\.max_characters_per_token: 1000000000 is above the limit of 4,096"),
    (_set(["char_cnn", "max_characters_per_token"], 2),
     r"char_cnn\.max_characters_per_token: expected an integer >= 3, found 2"),
    (_set(["char_cnn", "embedding", "dim"], 10**7), r"char_cnn\.embedding\.dim: 10000000 is above"),
    (_set(["lstm", "n_layers"], 10**6), r"lstm\.n_layers: 1000000 is above the limit of 64"),
    (_set(["lstm", "dim"], 0), r"lstm\.dim: expected a positive integer, found 0"),
    (_set(["lstm", "dim"], -3), r"lstm\.dim: expected a positive integer, found -3"),
    (_set(["lstm", "dim"], True), r"lstm\.dim: expected a positive integer, found bool True"),
    (_set(["lstm", "dim"], "32"), r"lstm\.dim: expected a positive integer, found str '32'"),
    (_set(["lstm", "dim"], None), r"lstm\.dim: expected a positive integer, found null None"),
    (_set(["lstm", "dim"], 32.0), r"lstm\.dim: expected a positive integer, found float 32\.0"),
    (_set(["lstm", "dim"], [32]), r"lstm\.dim: expected a positive integer, found list \[32\]"),
    (_set(["lstm", "dim"], _DELETE), r"lstm: missing field 'dim'"),
    (_set(["lstm", "n_layers"], 0), r"lstm\.n_layers: expected a positive integer, found 0"),
    (_set(["lstm", "cell_clip"], "3"), r"lstm\.cell_clip: expected a positive number or null, found str"),
    (_set(["lstm", "cell_clip"], float("nan")), r"lstm\.cell_clip: expected a positive number or null"),
    (_set(["lstm", "proj_clip"], float("inf")), r"lstm\.proj_clip: expected a positive number or null"),
    (_set(["lstm", "proj_clip"], -1), r"lstm\.proj_clip: expected a positive number or null"),
    (_set(["lstm", "use_skip_connections"], "yes"), r"lstm\.use_skip_connections: expected true or false"),
    (_set(["lstm"], None), r"lstm: expected an object, found null"),
    (_set(["lstm"], [1, 2]), r"lstm: expected an object, found list"),
    (_set(["lstm"], _DELETE), r"missing field 'lstm' \(expected an object\)"),
    (_set(["char_cnn"], "cnn"), r"char_cnn: expected an object, found str 'cnn'"),
    (_set(["char_cnn", "embedding"], [4]), r"char_cnn\.embedding: expected an object, found list"),
    (_set(["char_cnn", "embedding"], None), r"char_cnn\.embedding: expected an object, found null"),
    (_set(["char_cnn", "embedding"], _DELETE), r"char_cnn: missing field 'embedding'"),
    (_set(["char_cnn", "embedding", "dim"], False), r"char_cnn\.embedding\.dim: expected a positive integer"),
    (_set(["char_cnn", "filters"], {"1": 4}), r"char_cnn\.filters: expected a non-empty list .*found dict"),
    (_set(["char_cnn", "filters"], []), r"char_cnn\.filters: expected a non-empty list"),
    (_set(["char_cnn", "filters"], None), r"char_cnn\.filters: expected a non-empty list .*found null"),
    (_set(["char_cnn", "filters"], [[1, [2]]]), r"char_cnn\.filters\[0\]\[1\] \(num_filters\): expected"),
    (_set(["char_cnn", "filters"], [[1, 4], 5]), r"char_cnn\.filters\[1\]: expected \[width, num_filters\]"),
    (_set(["char_cnn", "filters"], [[1, 4, 5]]), r"char_cnn\.filters\[0\]: expected \[width, num_filters\]"),
    (_set(["char_cnn", "filters"], [[True, 4]]), r"char_cnn\.filters\[0\]\[0\] \(width\): expected"),
    (_set(["char_cnn", "filters"], [[51, 4]]), r"char_cnn\.filters\[0\]: width 51 exceeds max_characters_per_token"),
    (_set(["char_cnn", "n_highway"], -1), r"char_cnn\.n_highway: expected an integer >= 0, found -1"),
    (_set(["char_cnn", "n_highway"], 1.0), r"char_cnn\.n_highway: expected an integer >= 0, found float"),
    (_set(["char_cnn", "activation"], ["relu"]), r"char_cnn\.activation: expected 'relu' or 'tanh', found list"),
    (_set(["char_cnn", "activation"], None), r"char_cnn\.activation: expected 'relu' or 'tanh', found null"),
    (_set(["char_cnn", "n_characters"], 262.0), r"char_cnn\.n_characters: expected 261 or 262, found 262\.0"),
    (_set(["char_cnn", "n_characters"], True), r"char_cnn\.n_characters: expected 261 or 262, found True"),
    (_set(["char_cnn", "n_characters"], [262]), r"char_cnn\.n_characters: expected 261 or 262"),
]


@pytest.mark.parametrize("mutate, field", CASES)
def test_each_broken_field_is_named(tmp_path, mutate, field):
    options = fixture_options()
    mutate(options)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(options))
    with pytest.raises(OptionsError, match=r"^" + str(path).replace(".", r"\.") + ": " + field) as e:
        load_options(str(path))
    assert "\n" not in str(e.value) and len(str(e.value)) < 400


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", r"expected a JSON object, found list"),
    ("null", r"expected a JSON object, found null"),
    ('{"lstm": ' + "[" * 100000 + "]" * 100000 + "}", r"cannot read options JSON: RecursionError"),
    ('{"lstm": {"dim": ' + "9" * 5000 + "}}", r"cannot read options JSON: ValueError"),
    ("\xff\xfe", r"cannot read options JSON"),
], ids=["list", "null", "deep", "long-int", "not-utf8"])
def test_unparsable_or_odd_json(tmp_path, text, message):
    path = tmp_path / "odd.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(OptionsError, match=r"odd\.json: " + message) as e:
        load_options(str(path))
    assert "\n" not in str(e.value)


# Values a fuzzer puts anywhere in the tree.
ODD_VALUES = [None, True, False, 0, -1, 1, 2, 3, 7, 50, 262, 10**6, 10**9, 10**12, 10**30, 1.5, -0.0,
              float("nan"), float("inf"), "", "relu", "tanh", "12", [], [1], [1, 2], [[1, 2]], [[1, 10**9]],
              {}, {"dim": 4}, {"dim": {"dim": 4}}, [[[]]], [None, None]]


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for k, value in enumerate(node):
            yield from _paths(value, prefix + (k,))


def _mutated(rng):
    options = fixture_options()
    for _ in range(int(rng.integers(1, 4))):
        paths = [p for p in _paths(options) if p]
        path = paths[int(rng.integers(len(paths)))]
        node = options
        for key in path[:-1]:
            node = node[key]
        if rng.random() < 0.15 and isinstance(node, dict):
            del node[path[-1]]
        else:
            node[path[-1]] = copy.deepcopy(ODD_VALUES[int(rng.integers(len(ODD_VALUES)))])
    return options


def test_random_mutations_raise_options_error_or_stay_bounded():
    """2,000 seeded random mutations (1-3 replaced or deleted fields each) of the fixture options."""
    rng = np.random.default_rng(2024)
    outcomes = {"valid": 0, "OptionsError": 0}
    for _ in range(2000):
        options = _mutated(rng)
        try:
            opts = validate_options(options, source="fuzz.json")
        except OptionsError as e:
            message = str(e)
            assert message.startswith("fuzz.json: ") and "\n" not in message and len(message) < 400, message
            outcomes["OptionsError"] += 1
            continue
        outcomes["valid"] += 1
        # The options object holds exactly what passed, and writes it back.
        assert ElmoOptions.from_dict(options, source="fuzz.json").to_dict() == json.loads(json.dumps(opts))
        # What passes is a model that can be built: bounded sizes, finite clips.
        assert sum(parameter_count(opts).values()) <= MAX_PARAMETERS
        assert opts["char_cnn"]["max_characters_per_token"] <= 4096
        for key in ("cell_clip", "proj_clip"):
            assert opts["lstm"][key] is None or math.isfinite(opts["lstm"][key])
    assert outcomes["valid"] + outcomes["OptionsError"] == 2000
    assert outcomes["OptionsError"] > 1000 and outcomes["valid"] > 50, outcomes


@pytest.mark.parametrize("mutate, field", [
    (_set(["lstm", "dim"], 10**12), r"lstm\.dim: 1000000000000 is above the limit"),
    (_set(["char_cnn", "filters"], [[1, 4], "x"]), r"char_cnn\.filters\[1\]: expected \[width, num_filters\]"),
])
def test_cli_embed_with_absurd_options_exits_1_with_one_line(tmp_path, capsys, mutate, field):
    from elmo_keras.cli import main

    options = fixture_options()
    mutate(options)
    (tmp_path / "options.json").write_text(json.dumps(options))
    (tmp_path / "sentences.txt").write_text("the cat sat\n")
    code = main(["embed", str(tmp_path / "sentences.txt"), str(tmp_path / "out.hdf5"),
                 "--options-file", str(tmp_path / "options.json"), "--weight-file", FIXTURE_WEIGHTS, "--quiet"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("elmo-keras embed: error: ") and "options.json: " in err[0]
    assert len(re.findall(field, err[0])) == 1, err[0]
    assert not (tmp_path / "out.hdf5").exists()
