"""Writes IMDB reviews as TFRecords in XLNet's original format.

Usage:
    python tools/preprocess_imdb.py --data-dir aclImdb --output-dir OUT
        [--preset xlnet_large_cased] [--sequence-length 512]

Writes OUT/train.tfrecord and OUT/test.tfrecord (OUT may be `gs://...`)
with `input_ids`, `input_mask` (1 = padding), `segment_ids`, `label_ids` and
`is_real_example`, readable by `tools/finetune_imdb.py --train-tfrecord`
and by the original pipeline.
"""

import argparse
import os
import sys

from keras_xlnet.data import imdb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="aclImdb folder")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--preset", default="xlnet_large_cased")
    parser.add_argument("--sequence-length", type=int, default=512)
    args = parser.parse_args(argv)

    import tensorflow as tf

    from keras_xlnet import XLNetPreprocessor

    preprocessor = XLNetPreprocessor.from_preset(
        args.preset, sequence_length=args.sequence_length
    )
    tf.io.gfile.makedirs(args.output_dir)
    for split in ("train", "test"):
        texts, labels = imdb.read_aclimdb(args.data_dir, split)
        path = os.path.join(args.output_dir, f"{split}.tfrecord")
        imdb.write_tfrecords(path, preprocessor, texts, labels)
        print(f"{split}: {len(texts)} reviews -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
