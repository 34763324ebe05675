"""The offline demo of continued pretraining: bundled reviews, a tiny
model from scratch."""

from keras_xlnet.recipes import imdb_demo

# What `--demo` sets itself: its model, data, sampling and schedule.
SETTINGS = dict(
    preset="demo",
    sequence_length=64,
    reuse_length=32,
    memory_length=48,
    perm_size=16,
    num_predict=10,
    batch_size=8,
    train_steps=300,
    warmup_steps=30,
    learning_rate=2e-3,
    eval_every=100,
    eval_batch_size=4,
    dtype="float32",
)
# Flags the demo owns besides `SETTINGS`: given with `--demo`, refused.
OWNS = (*SETTINGS, "data_dir")
MODEL_DIR = "xlnet_pretrain_demo"
BANNER = (
    "DEMO: a tiny XLNet and vocabulary pretrained from scratch on 36 bundled "
    "reviews (written for this project); numbers mean nothing about XLNet."
)


def demo_documents():
    """The bundled reviews, one document each."""
    train, test = imdb_demo.demo_data()
    return list(train[0]) + list(test[0])


def demo_language_model(config, documents, dtype="float32"):
    """A tiny random `XLNetPermutationLM` with a vocabulary of
    `documents` and the sampling settings of `config`."""
    from keras_xlnet.models.xlnet_permutation_lm import XLNetPermutationLM
    from keras_xlnet.models.xlnet_permutation_lm_preprocessor import (
        XLNetPermutationLMPreprocessor,
    )

    tokenizer = imdb_demo.demo_tokenizer(documents)
    return XLNetPermutationLM(
        imdb_demo.demo_backbone(tokenizer, config.seed, dtype),
        preprocessor=XLNetPermutationLMPreprocessor(
            tokenizer, seed=config.seed, **config.sampling_settings()
        ),
    )


def demo_task(config):
    """The pretraining task of `config` on the bundled reviews."""
    from keras_xlnet.recipes.pretraining import PretrainTask

    documents = demo_documents()
    return PretrainTask(
        config,
        lambda dtype: demo_language_model(config, documents, dtype),
        documents,
    )
