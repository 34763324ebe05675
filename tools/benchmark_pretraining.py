"""Pretraining step time of XLNetPermutationLM against Hugging Face.

Usage:
    KERAS_BACKEND=jax python tools/benchmark_pretraining.py [--repeats 5]
        [--layers 4] [--batch 4] [--reviews ../shared/data/imdb_sample.csv]

Both models get Base dimensions (hidden 768, 12 heads, FFN 3072, the
given number of layers), the real XLNet vocabulary and the same batch of
permutation-LM examples (length 512, reuse 256, perm size 256,
`num_predict` 85) made by `XLNetPermutationLMPreprocessor` from real
reviews. A training step is the loss, its gradients and an Adam update:
`train_on_batch` for keras_xlnet (compiled by the backend), the eager
`XLNetLMHeadModel` (`labels`, backward, `torch.optim.Adam`) for Hugging
Face. They run in turn in one process; the script prints the median
seconds per step and the ratio.
"""

import argparse
import csv
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from benchmark import alternate  # noqa: E402

HIDDEN, HEADS, INNER = 768, 12, 3072


def batch_of_examples(preprocessor, reviews, batch_size):
    with open(reviews, encoding="utf-8") as file:
        texts = [row["text"] for row in csv.DictReader(file)]
    longest = sorted(texts, key=len, reverse=True)[:batch_size]
    return preprocessor(longest)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    shared = os.environ.get("XLNET_SHARED_DIR", "../shared")
    parser.add_argument(
        "--reviews", default=os.path.join(shared, "data", "imdb_sample.csv")
    )
    parser.add_argument(
        "--vocabulary",
        default=os.path.join(shared, "data", "xlnet_cased_spiece.model"),
    )
    args = parser.parse_args(argv)

    import keras
    import torch
    import transformers

    import keras_xlnet
    from keras_xlnet.training import XLNetAdam

    tokenizer = keras_xlnet.XLNetTokenizer(proto=args.vocabulary)
    preprocessor = keras_xlnet.XLNetPermutationLMPreprocessor(tokenizer)
    x, y, target_mask = batch_of_examples(
        preprocessor, args.reviews, args.batch
    )
    vocabulary = tokenizer.vocabulary_size()
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=vocabulary,
        num_layers=args.layers,
        num_heads=HEADS,
        hidden_dim=HIDDEN,
        intermediate_dim=INNER,
    )
    lm = keras_xlnet.XLNetPermutationLM(backbone)
    lm.compile(optimizer=XLNetAdam(1e-5))

    hf = transformers.XLNetLMHeadModel(
        transformers.XLNetConfig(
            vocab_size=vocabulary,
            d_model=HIDDEN,
            n_layer=args.layers,
            n_head=HEADS,
            d_inner=INNER,
            ff_activation="gelu_new",
        )
    ).train()
    optimizer = torch.optim.Adam(hf.parameters(), lr=1e-5, eps=1e-8)
    hf_inputs = dict(
        input_ids=torch.tensor(x["token_ids"]).long(),
        attention_mask=torch.tensor(x["padding_mask"]).float(),
        token_type_ids=torch.tensor(x["segment_ids"]).long(),
        perm_mask=torch.tensor(x["perm_mask"]),
        target_mapping=torch.tensor(x["target_mapping"]),
        labels=torch.tensor(np.where(target_mask > 0, y, -100)).long(),
    )

    def hf_step():
        loss = hf(**hf_inputs).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    seconds = alternate(
        {
            "keras_xlnet": lambda: lm.train_on_batch(x, y, target_mask),
            "hf_pytorch": hf_step,
        },
        args.repeats,
    )
    medians = {peer: statistics.median(s) for peer, s in seconds.items()}
    backend = keras.config.backend()
    print(
        f"Pretraining step, Base dimensions, {args.layers} layers, batch "
        f"{args.batch} x 512, num_predict 85, median of {args.repeats}:"
    )
    for peer, median in medians.items():
        spread = f"{min(seconds[peer]):.2f}-{max(seconds[peer]):.2f}"
        name = f"keras_xlnet ({backend})" if peer == "keras_xlnet" else peer
        print(f"  {name:24s} {median:6.2f} s/step  ({spread})")
    ratio = medians["keras_xlnet"] / medians["hf_pytorch"]
    print(f"  keras_xlnet / hf_pytorch: {ratio:.2f}x the time")


if __name__ == "__main__":
    main()
