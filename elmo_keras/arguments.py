"""Checks of user arguments, run before any work, shared by the Python API and the CLI.

Each check returns the value or raises `ValueError` naming the argument and
what was expected, so that a bad number never starts (and never half-does) a job.

Example:

>>> check_positive_int(64, "batch_size")
64
>>> check_positive_int(-5, "batch_size")
Traceback (most recent call last):
    ...
ValueError: batch_size: expected a positive integer, found -5
"""

import argparse
import numbers
import os


def is_int(value):
    """True for a Python or NumPy integer; not for a bool, which is no count."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def expected_int(low):
    """How a message names an integer >= `low`."""
    return "a positive integer" if low == 1 else f"an integer >= {low}"


def check_int_at_least(value, name, low):
    """`value` as an int if it is an integer >= `low`.

    The integer check of arguments. The options files check JSON integers
    (no NumPy ones) and name the file and the JSON type found, in the same
    words (`expected_int`).
    """
    if not is_int(value) or value < low:
        raise ValueError(f"{name}: expected {expected_int(low)}, found {value!r}")
    return int(value)


def check_positive_int(value, name):
    """`value` if it is an integer >= 1."""
    return check_int_at_least(value, name, 1)


def check_non_negative_int(value, name):
    """`value` if it is an integer >= 0."""
    return check_int_at_least(value, name, 0)


def check_fraction(value, name):
    """`value` if it is a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name}: expected a number in [0, 1), found {value!r}")
    return float(value)


def check_input_file(path, what="input file"):
    """`path` if it names a readable regular file."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: {what} not found")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory; expected a file ({what})")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"{path}: cannot read the {what}")
    return path


def check_output_file(path, overwrite=False, flag="--overwrite (Python: overwrite=True)"):
    """`path` if a file can be written there: not a directory, in a writable folder.

    An existing file is a finished output: it is replaced only with
    `overwrite` (named `flag` in the message).
    """
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory; expected the path of the output file")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path}: exists already; pass {flag} to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise NotADirectoryError(f"{path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: cannot write in {existing}")
    return path


def _argparse_type(check, expected):
    def parse(text):
        try:
            return check(int(text), "value")
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, found {text!r}") from None

    parse.__name__ = expected
    return parse


# argparse `type=` callables: the parser then names the flag in its one-line error.
positive_int = _argparse_type(check_positive_int, "a positive integer")
non_negative_int = _argparse_type(check_non_negative_int, "an integer >= 0")
