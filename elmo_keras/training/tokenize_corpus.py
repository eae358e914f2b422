"""Tokenise raw text for pretraining with tensorflow-text.

Each input file (one sentence a line) becomes a file of the same name in the
output folder with its tokens separated by single spaces; empty lines are
dropped. Files appear atomically, and a file already written is skipped, so
an interrupted run resumes.

Damaged input:

- bytes that are not UTF-8: `DataError` naming the file and the line of the
  first bad byte; the files finished before it are kept, so the same command
  resumes once the file is fixed;
- an empty file, or one without a token (blank lines only): skipped, no output
  written (an empty shard would stop `vocab` and `train`), counted and
  reported on stderr ("skipped 1 input file(s) without any token: ...");
- a very long line (1 MB): no limit, it is tokenised as any line.

Example:

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> _ = open(os.path.join(folder, "raw.txt"), "w").write("Hello, world!\\n\\nIt's 3.5 km.\\n")
>>> _ = tokenize_files(os.path.join(folder, "raw.txt"), os.path.join(folder, "out"), progress=False)
>>> print(open(os.path.join(folder, "out", "raw.txt")).read(), end="")
Hello , world !
It ' s 3 . 5 km .
"""

import glob
import os
import sys

from elmo_keras.io.atomic import atomic_write_text
from elmo_keras.training.vocab import DataError, read_utf8_lines

BATCH_LINES = 4096


def tokenize_lines(lines, kind="punctuation"):
    """Tokenise a list of strings; return a list of token lists."""
    import tensorflow as tf

    from elmo_keras.preprocessing.tokenize import text_tokenizer

    tokenizer = text_tokenizer(kind)
    out = []
    for start in range(0, len(lines), BATCH_LINES):
        ragged = tokenizer(tf.constant(lines[start : start + BATCH_LINES]))
        out.extend([t.decode("utf-8") for t in row] for row in ragged.to_list())
    return out


def tokenize_files(input_glob, output_dir, kind="punctuation", progress=True, overwrite=False):
    """Tokenise every file of `input_glob` into `output_dir`; return the paths written.

    A file already in `output_dir` was written whole (atomically) by an
    earlier run and is kept, so that a re-run resumes; `overwrite` redoes it.
    An input file without any token is skipped (not written, not returned)
    and reported on stderr. Raises `DataError` for a file that is not UTF-8,
    naming file and line.
    """
    from tqdm import tqdm

    paths = sorted(glob.glob(input_glob))
    if not paths:
        raise DataError(f"{input_glob}: no files match")
    names = [os.path.basename(p) for p in paths]
    if len(set(names)) != len(names):
        raise DataError(f"{input_glob}: two input files share a name; their outputs would collide")
    written, skipped = [], []
    for path in tqdm(paths, unit="file", desc="tokenising", disable=not progress):
        target = os.path.join(output_dir, os.path.basename(path))
        if overwrite or not os.path.exists(target):
            lines = [line for line in read_utf8_lines(path) if line.strip()]
            sentences = [" ".join(tokens) for tokens in tokenize_lines(lines, kind) if tokens] if lines else []
            if not sentences:
                skipped.append(path)
                continue
            atomic_write_text(target, "".join(s + "\n" for s in sentences))
        written.append(target)
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        print(f"tokenize: skipped {len(skipped)} input file(s) without any token: {shown}", file=sys.stderr)
    return written
