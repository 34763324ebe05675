"""Writes IMDB reviews as TFRecords in XLNet's original format.

Usage:
    python tools/preprocess_imdb.py --data-dir aclImdb --output-dir OUT
        [--preset xlnet_large_cased] [--sequence-length 512] [--seed 0]

Writes OUT/train.tfrecord and OUT/test.tfrecord (OUT may be `gs://...`)
with `input_ids`, `input_mask` (1 = padding), `segment_ids`, `label_ids` and
`is_real_example`, readable by `tools/finetune_imdb.py --train-tfrecord`
and by the original pipeline. The reviews are shuffled before they are
written, as the original preprocessing does: aclImdb lists each class
whole, and a reader's shuffle buffer cannot mix 12,500 reviews of one
class.
"""

import argparse
import os
import sys

from keras_xlnet.data import imdb
from keras_xlnet.training import cli


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="aclImdb folder")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--preset", default="xlnet_large_cased")
    parser.add_argument("--sequence-length", type=int, default=512)
    parser.add_argument(
        "--seed", type=int, default=0, help="of the order of the reviews"
    )
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    try:
        write(args)
    except cli.user_errors() as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def write(args):
    import tensorflow as tf

    from keras_xlnet import XLNetPreprocessor

    if args.sequence_length < 3:
        raise imdb.DataError(
            "--sequence-length must be at least 3 (one piece, <sep> and "
            f"<cls>); received {args.sequence_length}."
        )
    splits = {
        split: imdb.shuffled(
            *imdb.read_aclimdb(args.data_dir, split), args.seed
        )
        for split in ("train", "test")
    }
    preprocessor = XLNetPreprocessor.from_preset(
        args.preset, sequence_length=args.sequence_length
    )
    try:
        tf.io.gfile.makedirs(args.output_dir)
    except Exception as error:  # noqa: BLE001 - any storage's error.
        raise imdb.DataError(
            f"--output-dir {args.output_dir} cannot be created ({error})."
        ) from None
    for split, (texts, labels) in splits.items():
        path = os.path.join(args.output_dir, f"{split}.tfrecord")
        imdb.write_tfrecords(path, preprocessor, texts, labels)
        print(f"{split}: {len(texts)} reviews, shuffled -> {path}")


if __name__ == "__main__":
    sys.exit(main())
