"""Converts an XLNet checkpoint into a KerasHub preset folder.

Usage:
    python tools/convert_checkpoint.py SOURCE OUTPUT_DIR [--vocabulary SPM]
        [--config JSON]

SOURCE is a TF checkpoint prefix or folder (TF1 release layout, or TF2 of
tf-models-official <= 2.3 / >= 2.4, detected from the tensor names), a
release zip, or a Hugging Face model folder. When the source holds a
classification head, `XLNetClassifier.from_preset(OUTPUT_DIR)` loads it.
"""

import argparse
import sys

import keras_xlnet


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Convert an XLNet checkpoint to a KerasHub preset folder."
    )
    parser.add_argument(
        "source",
        help="TF checkpoint prefix or folder, release zip, or Hugging Face "
        "model folder.",
    )
    parser.add_argument("output_dir", help="The preset folder to create.")
    parser.add_argument(
        "--vocabulary",
        help="SentencePiece model (spiece.model) to add the tokenizer and "
        "preprocessor to the preset.",
    )
    parser.add_argument(
        "--config",
        help="xlnet_config.json (or HF config.json) when it is not beside "
        "the checkpoint.",
    )
    parser.add_argument(
        "--allow-larger-vocabulary",
        action="store_true",
        help="convert with a vocabulary of more pieces than the embedding's "
        "rows (texts with the extra pieces are then refused at use)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        loaded = keras_xlnet.convert_checkpoint(
            args.source,
            args.output_dir,
            vocabulary=args.vocabulary,
            config=args.config,
            allow_larger_vocabulary=args.allow_larger_vocabulary,
        )
    except (keras_xlnet.CheckpointError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    task = (
        "backbone + classifier"
        if loaded.classifier
        else "backbone + LM head"
        if loaded.language_model
        else "backbone"
    )
    print(
        f"Converted {args.source} ({loaded.layout}, {task}, "
        f"{loaded.backbone.count_params():,} backbone parameters) "
        f"to {args.output_dir}"
    )
    if loaded.ignored:
        print(f"Not loaded (training state, tied copies): {loaded.ignored}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
