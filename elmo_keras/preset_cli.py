"""The `elmo-keras to-preset` command: a model as a keras-hub preset folder (the `keras-hub` extra).

Example:

    elmo-keras to-preset elmo_preset --model original

reads the model (`--model`: a released name, a folder or a zip; or
`--options-file` and `--weight-file`; with neither, the bundled model) and
writes keras-hub's preset layout with `ElmoBackbone.save_to_preset`. An
existing OUT_DIR is kept unless `--overwrite`, and is replaced only by a
complete preset.
"""

import os
import sys

from elmo_keras.cli_arguments import add_model_arguments, add_overwrite_argument, model_files


def _to_preset(args):
    from elmo_keras.models.elmo_backbone import ElmoBackbone
    from elmo_keras.models.keras_hub_base import require_keras_hub

    require_keras_hub("elmo-keras to-preset")
    if os.path.exists(args.out_dir) and not args.overwrite:
        raise FileExistsError(f"{args.out_dir} exists: pass --overwrite to replace it")
    options_file, weight_file = model_files(args)
    backbone = ElmoBackbone.from_files(options_file, weight_file)
    backbone.save_to_preset(args.out_dir)
    print(f"wrote {args.out_dir}", file=sys.stderr)
    return {"preset": args.out_dir, "options_file": options_file, "weight_file": weight_file,
            "parameters": backbone.count_params()}


def add_parsers(subparsers):
    """Add the `to-preset` command to the `elmo-keras` parser."""
    p = subparsers.add_parser(
        "to-preset", help="write a model as a keras-hub preset folder",
        description="Write OUT_DIR, a keras-hub preset (config.json, model.weights.h5, metadata.json) of the "
                    "model, which keras_hub.models.Backbone.from_preset and ElmoBackbone.from_preset read "
                    "(needs keras-hub: pip install \"elmo-keras[keras-hub]\").")
    p.add_argument("out_dir", help="the preset folder to write")
    add_model_arguments(p)
    add_overwrite_argument(p, "OUT_DIR")
    p.set_defaults(func=_to_preset)
