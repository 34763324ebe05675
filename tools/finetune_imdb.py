"""Fine-tunes XLNet on IMDB with the TF Model Garden tutorial's recipe.

Usage (any Keras backend):
    KERAS_BACKEND=jax python tools/finetune_imdb.py [--data-dir aclImdb] ...
    python tools/finetune_imdb.py --demo     # offline, tiny, about 20 s

Defaults are the tutorial's: XLNet-Large cased, length 512, batch 32, 4000
steps, warm-up 500, peak learning rate 2e-5, Adam eps 1e-8, clip norm 1.0.
"""

import sys

from keras_xlnet.recipes import imdb_demo
from keras_xlnet.recipes.imdb import ImdbConfig
from keras_xlnet.recipes.imdb import ImdbTask
from keras_xlnet.training import cli


def parser():
    defaults = ImdbConfig()
    p = cli.parser(
        "Fine-tune XLNet on IMDB (the TF Model Garden recipe).", ImdbConfig
    )
    p.add_argument("--preset", default=defaults.preset)
    p.add_argument("--data-dir", help="unpacked aclImdb folder")
    p.add_argument(
        "--train-tfrecord",
        help="TFRecords of the original format (file or pattern; written "
        "shuffled, as tools/preprocess_imdb.py does)",
    )
    p.add_argument("--eval-tfrecord")
    p.add_argument(
        "--sequence-length",
        type=int,
        default=defaults.sequence_length,
        help="the packed length of a review (the tutorial's 512)",
    )
    p.add_argument(
        "--max-segments",
        type=int,
        default=defaults.max_segments,
        help="read the packed length as this many segments with XLNet's "
        "memory (1: the tutorial's; 4 with --sequence-length 2048: four "
        "segments of 512)",
    )
    p.add_argument(
        "--memory-length",
        type=int,
        default=defaults.memory_length,
        help="earlier positions each layer keeps as memory (default: all, "
        "0: none)",
    )
    p.add_argument(
        "--memory-gradient",
        default=defaults.memory_gradient,
        choices=["stop", "full"],
        help="back-propagate through the last segment only (stop, "
        "Transformer-XL's) or through every segment (full, more memory)",
    )
    p.add_argument(
        "--keep",
        default=defaults.keep,
        choices=["head", "tail", "head_tail"],
        help="which pieces of a longer review are kept: the first (head, the "
        "tutorial's), the last, or the first --head-length and the last",
    )
    p.add_argument(
        "--head-length",
        type=int,
        default=defaults.head_length,
        help="the beginning --keep head_tail keeps",
    )
    p.add_argument(
        "--bucket-width",
        type=int,
        default=defaults.bucket_width,
        help="evaluate in length order, padding each batch to a multiple of "
        "this (same metrics, less padding); 0 pads to --sequence-length",
    )
    p.add_argument(
        "--group-by-length",
        action="store_true",
        help="train on batches of similar lengths, each padded to a "
        "multiple of --bucket-width (sorted within groups of 10 batches of "
        "a pass): fewer padding tokens, other batch compositions",
    )
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    defaults = parser().parse_args([])
    return cli.main(args, defaults, ImdbConfig, ImdbTask, imdb_demo)


if __name__ == "__main__":
    sys.exit(main())
