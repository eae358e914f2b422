"""Every elmo_keras code block of `docs/migrating-from-allennlp.md` runs as written, in order.

The blocks run as a reader would run them from the repository root (they read
the test model, `tests/data/bilm-tf/`), in one fresh folder where `tests`
leads to this repository's, so that what they write lands there and a later
block may read what an earlier one wrote. `bash` blocks run with
`bash -euo pipefail`, `python` blocks with the test's Python. The blocks of
AllenNLP's own code are fenced as `python allennlp` or `bash allennlp` (a
second word after the language, which Markdown renderers ignore): they are
shown beside ours for comparison and skipped here, as AllenNLP is not
installed beside the package.
"""

import os
import pathlib
import re
import sys

import pytest
from test_readme import run_block

REPO = pathlib.Path(__file__).resolve().parent.parent
MIGRATING = REPO / "docs" / "migrating-from-allennlp.md"
FENCE = re.compile(r"^```(\w+)( [\w-]+)?\n(.*?)^```$", re.S | re.M)


def doc_blocks(path):
    """(language, tag or None, code, line number) of every fenced block of `path`."""
    text = path.read_text(encoding="utf-8")
    return [(m.group(1), (m.group(2) or "").strip() or None, m.group(3), text.count("\n", 0, m.start()) + 1)
            for m in FENCE.finditer(text)]


def test_migration_guide_blocks_are_ours_or_allennlps():
    blocks = doc_blocks(MIGRATING)
    assert {(language, tag) for language, tag, _, _ in blocks} == {("python", None), ("bash", None),
                                                                    ("python", "allennlp"), ("bash", "allennlp")}
    # Every AllenNLP block is followed by the elmo_keras code that replaces it.
    for (_, tag, _, line), (_, next_tag, _, _) in zip(blocks, blocks[1:] + [(None, "end", None, None)]):
        assert tag is None or next_tag is None, f"line {line}: AllenNLP's block has no elmo_keras block after it"
    assert "docs/migrating-from-allennlp.md" in (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_every_elmo_keras_block_of_the_migration_guide_runs(tmp_path):
    (tmp_path / "tests").symlink_to(REPO / "tests")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    ran = 0
    for language, tag, code, line in doc_blocks(MIGRATING):
        if tag == "allennlp":
            continue
        run_block(language, code, tmp_path, env, f"{MIGRATING.name} line {line}", timeout=600)
        ran += 1
    assert ran == sum(tag is None for _, tag, _, _ in doc_blocks(MIGRATING)) == 5
