"""Continues XLNet's pretraining (permutation language modelling) on your
own text.

Usage (any Keras backend):
    KERAS_BACKEND=jax python tools/pretrain.py --data-dir texts/ \\
        [--preset xlnet_base_cased] ...
    python tools/pretrain.py --demo     # offline, tiny, from scratch

`--data-dir` holds `.txt` files in the original format: one sentence per
line, a blank line between documents. Defaults are the paper's Large
setting: length 512, reuse 256, memory 384, permutation blocks of 256,
`mask_alpha` 6, `mask_beta` 1, 85 predictions, `bi_data`; Adam with
warm-up and linear decay, clip norm 1.0. The result, `<model-dir>/preset`,
is an `XLNetPermutationLM` preset that `XLNetClassifier.from_preset`
fine-tunes.
"""

import sys

from keras_xlnet.recipes import pretraining_demo
from keras_xlnet.recipes.pretraining import PretrainConfig
from keras_xlnet.recipes.pretraining import PretrainTask
from keras_xlnet.training import cli


def parser():
    defaults = PretrainConfig()
    p = cli.parser(
        "Continue XLNet's pretraining on your own text.", PretrainConfig
    )
    p.add_argument("--preset", default=defaults.preset)
    p.add_argument(
        "--data-dir",
        help="a folder of .txt files: one sentence per line, a blank line "
        "between documents (every 10th document is held out)",
    )
    settings = [
        ("--sequence-length", "the length of an example"),
        ("--reuse-length", "the first positions whose states become memory"),
        ("--memory-length", "positions of memory per layer (0: none)"),
        ("--perm-size", "the block of a factorization order"),
        ("--mask-alpha", "the context of a span, in pieces per target"),
        ("--mask-beta", "targets per context of --mask-alpha pieces"),
        ("--num-predict", "predictions per example"),
    ]
    for flag, help_text in settings:
        name = flag[2:].replace("-", "_")
        p.add_argument(
            flag, type=int, default=getattr(defaults, name), help=help_text
        )
    p.add_argument(
        "--no-bi-data",
        dest="bi_data",
        action="store_false",
        help="read every row forward (default: half of each batch backward)",
    )
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    defaults = parser().parse_args([])
    return cli.main(
        args, defaults, PretrainConfig, PretrainTask, pretraining_demo
    )


if __name__ == "__main__":
    sys.exit(main())
