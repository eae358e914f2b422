"""The `elmo-keras to-preset` command: a model as a keras-hub preset folder (the `keras-hub` extra).

Example:

    elmo-keras to-preset elmo_preset --model original

reads the model (`--model`: a released name, a folder or a zip; or
`--options-file` and `--weight-file`; with neither, the bundled model) and
writes keras-hub's preset layout: the backbone (`config.json`,
`model.weights.h5`, `metadata.json`, by `ElmoBackbone.save_to_preset`), its
tokenizer (`tokenizer.json`; for an imported ELMoForManyLangs model also its
dictionaries, `assets/tokenizer/char.dic` and `word.dic`) and a model card
(`README.md`: where the weights came from, their SHA-256, the architecture, and the source's own model card
when its folder has one). The folder appears only once complete; an existing
OUT_DIR is kept unless `--overwrite`, and then replaced whole.
"""

import json
import os
import sys

from elmo_keras.cli_arguments import add_model_arguments, add_overwrite_argument, model_files

SOURCE_CARDS = ("MODEL_CARD.md", "README.md")


def model_card(backbone, options_file, weight_file):
    """A keras-hub preset's README.md for a model converted from the original files."""
    from elmo_keras import __version__
    from elmo_keras.io.digest import file_digest
    from elmo_keras.io.options import CODE_POINTS
    from elmo_keras.models.elmo_backbone import backbone_arguments

    architecture = "\n".join(f"- `{k}`: {json.dumps(v)}" for k, v in backbone_arguments(backbone.options).items())
    source = ("an imported ELMoForManyLangs model's files (`elmo-keras import-manylangs`; its `char.dic` and "
              "`word.dic` are the tokenizer's assets)" if backbone.options.char_cnn.characters == CODE_POINTS
              else "the original bilm-tf files")
    card = (f"---\nlibrary_name: keras-hub\n---\n# ELMo biLM (`elmo_keras.ElmoBackbone`)\n\n"
            f"Converted by elmo_keras {__version__} (`elmo-keras to-preset`) from {source} "
            f"`{os.path.basename(options_file)}` and `{os.path.basename(weight_file)}` (SHA-256 "
            f"`{file_digest(weight_file)}`); {backbone.count_params():,} parameters.\n\n"
            f"Load it after `import elmo_keras` (which registers the classes):\n\n"
            f"    import elmo_keras, keras_hub\n"
            f"    backbone = keras_hub.models.Backbone.from_preset(PRESET)\n"
            f"    classifier = elmo_keras.ElmoTextClassifier.from_preset(PRESET, num_classes=2)\n\n"
            f"## Architecture\n\n{architecture}\n")
    for name in SOURCE_CARDS:
        source = os.path.join(os.path.dirname(os.path.abspath(options_file)), name)
        if os.path.isfile(source):
            with open(source, encoding="utf-8") as f:
                card += f"\n## The source model's card ({name})\n\n" + f.read()
            break
    return card


def _to_preset(args):
    from elmo_keras.io.atomic import atomic_directory
    from elmo_keras.models.elmo_backbone import ElmoBackbone
    from elmo_keras.models.keras_hub_base import require_keras_hub
    from elmo_keras.preprocessing.elmo_tokenizer import tokenizer_of_model

    require_keras_hub("elmo-keras to-preset")
    if os.path.exists(args.out_dir) and not args.overwrite:
        raise FileExistsError(f"{args.out_dir} exists: pass --overwrite to replace it")
    options_file, weight_file = model_files(args)
    backbone = ElmoBackbone.from_files(options_file, weight_file)
    # An imported ELMoForManyLangs model: its char.dic and word.dic go with the tokenizer, as its assets.
    tokenizer = tokenizer_of_model(backbone.options, options_file)
    with atomic_directory(args.out_dir, replace=True) as folder:
        backbone.save_to_preset(folder)
        tokenizer.save_to_preset(folder)
        with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as f:
            f.write(model_card(backbone, options_file, weight_file))
    print(f"wrote {args.out_dir}", file=sys.stderr)
    return {"preset": args.out_dir, "options_file": options_file, "weight_file": weight_file,
            "parameters": backbone.count_params()}


def add_parsers(subparsers):
    """Add the `to-preset` command to the `elmo-keras` parser."""
    p = subparsers.add_parser(
        "to-preset", help="write a model as a keras-hub preset folder",
        description="Write OUT_DIR, a keras-hub preset (config.json, model.weights.h5, metadata.json, "
                    "tokenizer.json, a README.md model card) of the model, which keras_hub.models.Backbone."
                    "from_preset, ElmoBackbone.from_preset and the tasks' from_preset read (needs keras-hub: "
                    "pip install \"elmo-keras[keras-hub]\").")
    p.add_argument("out_dir", help="the preset folder to write")
    add_model_arguments(p)
    add_overwrite_argument(p, "OUT_DIR")
    p.set_defaults(func=_to_preset)
