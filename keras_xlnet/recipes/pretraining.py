"""Continued pretraining: XLNet's permutation language modelling on your
own text, a task of the training runner.

`run(PretrainConfig(...))` continues pretraining `config.preset` on a
folder of text files with the paper's objective and data layout (see
`XLNetPermutationLMPreprocessor` and `data.pretraining_stream`): each
step's memory feeds the next step of the same rows, `bi_data` reads half
of the rows backward. It evaluates the permutation-LM loss and target
accuracy on held-out documents, checkpoints at each evaluation (resumable
with `resume=True`, memory included), and writes `metrics.json`,
TensorBoard logs and the trained model as a preset folder (an
`XLNetPermutationLM` whose backbone `XLNetClassifier.from_preset`
fine-tunes) into `model_dir`.
"""

import dataclasses
import glob
import os
import re
import typing

import keras
import numpy as np
import tensorflow as tf

from keras_xlnet.data.pretraining_stream import PretrainingStream
from keras_xlnet.training import runner
from keras_xlnet.training.settings import RunConfig
from keras_xlnet.training.settings import RunError

# Every this-many-th document is held out for evaluation.
HELD_OUT_EVERY = 10


@dataclasses.dataclass
class PretrainConfig(RunConfig):
    """Settings of a pretraining run; the sampling defaults are the
    paper's Large setting."""

    model_dir: str = "xlnet_pretrain"
    preset: str = "xlnet_base_cased"
    data_dir: str = None
    sequence_length: int = 512
    reuse_length: int = 256
    memory_length: int = 384
    perm_size: int = 256
    mask_alpha: int = 6
    mask_beta: int = 1
    num_predict: int = 85
    bi_data: bool = True
    learning_rate: float = 4e-4
    warmup_steps: int = 400
    batch_size: int = 16
    eval_batch_size: int = 16

    RESUME_SETTINGS: typing.ClassVar[tuple] = (
        *RunConfig.RESUME_SETTINGS,
        "preset",
        "data_dir",
        "sequence_length",
        "reuse_length",
        "memory_length",
        "perm_size",
        "mask_alpha",
        "mask_beta",
        "num_predict",
        "bi_data",
    )
    MINIMA: typing.ClassVar[dict] = {
        **RunConfig.MINIMA,
        "memory_length": 0,
    }

    def sampling_settings(self):
        """The run's settings of `XLNetPermutationLMPreprocessor`."""
        from keras_xlnet.models.xlnet_permutation_lm_preprocessor import (
            PretrainingSettings,
        )

        names = PretrainingSettings.NAMES
        return {
            name: getattr(self, name) for name in names if name != "max_gram"
        }

    def check(self):
        from keras_xlnet.models.xlnet_permutation_lm_preprocessor import (
            PretrainingSettings,
        )

        super().check()
        try:
            PretrainingSettings(**self.sampling_settings())
        except ValueError as error:
            raise RunError(str(error)) from None
        if self.bi_data and self.micro_batch_size % 2:
            raise RunError(
                "bi_data reads half of each batch backward: the batch per "
                f"step must be even; received {self.micro_batch_size}."
            )


def read_documents(data_dir):
    """The documents of the `.txt` files under `data_dir`: each file, cut
    at blank (or whitespace-only) lines (the original's format: one
    sentence per line, a blank line between documents)."""
    paths = sorted(
        glob.glob(os.path.join(data_dir, "**", "*.txt"), recursive=True)
    )
    if not paths:
        raise RunError(f"--data-dir {data_dir} holds no .txt files.")
    documents = []
    for path in paths:
        with open(path, encoding="utf-8") as file:
            text = file.read()
        documents.extend(
            part.strip()
            for part in re.split(r"\n[ \t\r\f\v]*\n", text)
            if part.strip()
        )
    return documents


def as_texts(documents):
    """The documents of a list, a `tf.data.Dataset` or any iterable of
    strings (or UTF-8 bytes), as a list of `str`."""
    if isinstance(documents, tf.data.Dataset):
        documents = documents.as_numpy_iterator()
    texts = []
    for document in documents:
        if isinstance(document, bytes):
            document = document.decode("utf-8")
        if not isinstance(document, str):
            raise RunError(
                "Documents must be strings; received "
                f"{type(document).__name__} {document!r:.60}."
            )
        texts.append(document)
    return texts


def split_documents(documents):
    """`(train, held_out)`: every `HELD_OUT_EVERY`-th document, from the
    first on, is held out."""
    held = set(range(0, len(documents), HELD_OUT_EVERY))
    if len(documents) < 2:
        raise RunError("Pretraining needs at least two documents.")
    return (
        [d for i, d in enumerate(documents) if i not in held],
        [d for i, d in enumerate(documents) if i in held],
    )


class PretrainTask(runner.WeightedAccuracyAndCrossEntropy, runner.Task):
    """Permutation language modelling with `XLNetPermutationLM`.

    Args:
        config: a `PretrainConfig`.
        build_language_model: optional callable `dtype ->
            XLNetPermutationLM` with an `XLNetPermutationLMPreprocessor`;
            by default `config.preset` is loaded.
        documents: optional texts, each line a sentence: a list, a
            `tf.data.Dataset` of strings or any iterable of strings (a
            Grain dataset, say); read from `config.data_dir` when omitted.
    """

    def __init__(self, config, build_language_model=None, documents=None):
        super().__init__(config)
        self.build_language_model = build_language_model
        self.documents = documents
        self._split = None

    def _from_preset(self, dtype, config):
        from keras_xlnet.models.xlnet_permutation_lm import XLNetPermutationLM
        from keras_xlnet.models.xlnet_permutation_lm_preprocessor import (
            XLNetPermutationLMPreprocessor,
        )

        try:
            preprocessor = XLNetPermutationLMPreprocessor.from_preset(
                config.preset, seed=config.seed, **config.sampling_settings()
            )
        except ValueError as error:
            raise RunError(
                f"--preset {config.preset} has no usable tokenizer ({error})."
            ) from None
        return XLNetPermutationLM.from_preset(
            config.preset, preprocessor=preprocessor, dtype=dtype
        )

    def _documents(self):
        if self._split is None:
            documents = self.documents
            if documents is None:
                if not self.config.data_dir:
                    raise RunError("Pass --data-dir, a folder of .txt files.")
                documents = read_documents(self.config.data_dir)
            self._split = split_documents(as_texts(documents))
        return self._split

    def build_model(self, dtype):
        config = self.config
        if config.memory_length or config.bi_data:
            _check_whole_batches()
        return self._build(dtype, config)

    def build_model_of_run(self, dtype, settings):
        """The model of the run that wrote a checkpoint (its preset,
        sampling settings and carried memory, whose rows are that run's
        batch), for evaluation or export."""
        names = [n for n in PretrainConfig.RESUME_SETTINGS if n in settings]
        run = dataclasses.replace(
            self.config, **{n: settings[n] for n in names if n != "dtype"}
        )
        return self._build(dtype, run)

    def build_trained_model(self, dtype):
        """`--mode eval` without a checkpoint: `--preset` as it is (a
        baseline for a run, or a run's `<model-dir>/preset`)."""
        return self._build(dtype, self.config)

    def _build(self, dtype, run):
        """The language model of the settings `run`, laid out for its
        training steps."""
        self._documents()  # Bad data ends the run before any download.
        if self.build_language_model is None:
            model = self._from_preset(dtype, run)
        else:
            model = self.build_language_model(dtype)
        if model.preprocessor is None:
            raise RunError("The model has no preprocessor (tokenizer).")
        model.use_pretraining_stream(
            run.micro_batch_size,
            run.memory_length,
            run.reuse_length,
            run.bi_data,
        )
        return model

    def loss(self):
        from keras_xlnet.models.xlnet_permutation_lm import permutation_lm_loss

        return permutation_lm_loss()

    def training_batches(self, model, skip_batches):
        config = self.config
        try:
            stream = PretrainingStream(
                self._documents()[0],
                model.preprocessor,
                config.micro_batch_size,
                config.bi_data,
                config.seed,
            )
        except ValueError as error:
            raise RunError(str(error)) from None
        return stream.dataset(skip_batches)

    def evaluation_batches(self, model):
        """One example per held-out document (see
        `XLNetPermutationLMPreprocessor`), filled to whole batches with
        examples of weight 0."""
        size = self.config.eval_batch_size
        held_out = self._documents()[1]
        missing = -len(held_out) % size
        texts = list(held_out) + [held_out[0]] * missing
        weights = np.array([1.0] * len(held_out) + [0.0] * missing, "float32")
        return (
            tf.data.Dataset.from_tensor_slices((texts, weights))
            .batch(size)
            .map(_weighted(model.preprocessor))
        )

    def export(self, model, folder):
        """The trained model as a preset, without the run's layout of
        training steps (memory, `bi_data`)."""
        trained_model(model).save_to_preset(folder)


def _check_whole_batches():
    """Refuses a TensorFlow strategy that splits each batch over replicas:
    the carried memory holds the rows of the whole batch, and `bi_data`
    reads its second half backward."""
    if keras.config.backend() != "tensorflow":
        return
    if not tf.distribute.has_strategy():
        return
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        raise RunError(
            "Memory across steps and bi_data need whole batches; this "
            f"TensorFlow strategy splits each batch over {replicas} "
            "replicas. Use the JAX backend's distribution, or "
            "--memory-length 0 --no-bi-data."
        )


def _weighted(preprocessor):
    def weighted(texts, weights):
        x, y, target_mask = preprocessor(texts)
        return x, y, target_mask * weights[:, None]

    return weighted


def trained_model(model):
    """The trained `XLNetPermutationLM` as a preset holds it: the same
    backbone, LM head and preprocessor, without the layout of training
    steps (`use_pretraining_stream`)."""
    from keras_xlnet.models.xlnet_permutation_lm import XLNetPermutationLM

    copy = XLNetPermutationLM(model.backbone, preprocessor=model.preprocessor)
    copy.lm_head.set_weights(model.lm_head.get_weights())
    return copy


def run(config, build_language_model=None, documents=None, callbacks=()):
    """Continues pretraining (see `PretrainTask`); returns the summary."""
    task = PretrainTask(config, build_language_model, documents)
    return runner.run(task, callbacks)
