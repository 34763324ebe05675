"""Shared test helpers: the shared reference data and Hugging Face peers."""

import atexit
import http.server
import os
import pathlib
import shutil
import tempfile
import threading


def _compile_fast():
    """Settings that cut the suite's compile time, which dominates it (tiny
    models, many programs), set before any backend starts and inherited by
    the child processes the tests start:
    - one persistent JAX compilation cache for the whole session: the
      pytest workers and their child processes (runs killed and resumed,
      several processes of one run) compile the same programs, each once
      now; the cache is keyed by the program and the compiler's options;
    - XLA's backend (LLVM) optimisation level 0: the programs run for
      milliseconds and take seconds to optimise. Benchmarks do not run
      under this file.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_backend_optimization_level=0"
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return  # Set by the user, or by the pytest process that started us.
    folder = tempfile.mkdtemp(prefix="keras_xlnet_tests_jax_cache_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ.update(
        JAX_COMPILATION_CACHE_DIR=folder,
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )


_compile_fast()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


# Modules whose tests run training scripts in child processes for minutes,
# longest first: collected before the others, so that the README's
# `pytest -n 2` (whole files per worker, in collection order) starts them
# early and fills the other worker with short tests.
LONG_MODULES = (
    "test_multiprocess.py",
    "test_fault_tolerance.py",
    "test_distribution.py",
    "test_pretraining_runs.py",
    "test_pretraining.py",
)


def pytest_collection_modifyitems(items):
    # Tests whose behaviour does not depend on the Keras backend run once,
    # in the JAX pass of the suite.
    if keras.config.backend() != "jax":
        once = pytest.mark.skip(reason="backend-independent: runs with jax")
        for item in items:
            if item.get_closest_marker("backend_independent"):
                item.add_marker(once)

    def rank(item):
        name = item.path.name
        if name not in LONG_MODULES:
            return len(LONG_MODULES)
        return LONG_MODULES.index(name)

    items.sort(key=rank)


def shared_path(*parts):
    """A path under `../shared` (or `$XLNET_SHARED_DIR`); skips if absent."""
    root = pathlib.Path(
        os.environ.get("XLNET_SHARED_DIR", REPO_ROOT.parent / "shared")
    )
    path = root.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared reference data not found: {path}")
    return path


REFERENCE_LAYOUTS = (
    "tf1_original",
    "tf2_keras_xlnet_tfm230",
    "tf2_xlnetbase_tfm240",
)


@pytest.fixture
def zero_initializers(monkeypatch):
    """Random-normal variables start at zero: for tests that count the
    parameters of real-size models, whose random initialisation would take
    most of their time."""
    monkeypatch.setattr(
        keras.initializers.RandomNormal,
        "__call__",
        lambda self, shape, dtype=None: keras.ops.zeros(shape, dtype),
    )


def reference_fixture(layout):
    """`(checkpoint_folder, inputs, expected)` of a Model Garden fixture."""
    folder = shared_path("fixtures", "reference_checkpoints", layout)
    inputs = dict(np.load(folder / "inputs.npz"))
    inputs.pop("labels", None)
    return folder, inputs, dict(np.load(folder / "expected.npz"))


def numpy(x):
    return keras.ops.convert_to_numpy(x).astype("float32")


def max_diff_on_real_tokens(actual, expected, padding_mask):
    real = np.asarray(padding_mask).astype(bool)
    return float(np.abs(numpy(actual) - expected)[real].max())


def jax_only():
    """Skips a test on backends other than JAX (the full matrix runs there)."""
    if keras.config.backend() != "jax":
        pytest.skip("this case runs on the JAX backend only")


# Inputs with uneven left padding, two segments and `<cls>` last.
def packed_batch(vocabulary_size=99, lengths=(9, 6, 3), total=9, seed=0):
    """Left-padded XLNet-style batch: `A <sep> B <sep> <cls>` rows."""
    rng = np.random.default_rng(seed)
    token_ids = np.zeros((len(lengths), total), "int32")
    segment_ids = np.full((len(lengths), total), 3, "int32")
    padding_mask = np.zeros((len(lengths), total), "int32")
    for row, length in enumerate(lengths):
        start = total - length
        token_ids[row, start:] = rng.integers(9, vocabulary_size, length)
        first = max(1, (length - 1) // 2)
        segment_ids[row, start : start + first] = 0
        segment_ids[row, start + first : total - 1] = 1
        segment_ids[row, -1] = 2
        token_ids[row, -1] = 3
        padding_mask[row, start:] = 1
    return {
        "token_ids": token_ids,
        "padding_mask": padding_mask,
        "segment_ids": segment_ids,
    }


def right_padded(inputs):
    """The same batch with every row's padding moved to the right."""
    lengths = inputs["padding_mask"].sum(axis=1)
    return {
        key: np.stack([np.roll(row, int(n)) for row, n in zip(value, lengths)])
        for key, value in inputs.items()
    }


# A tiny configuration for behaviour tests (parity tests use HF's config).
TINY_CONFIG = dict(
    vocabulary_size=99,
    num_layers=2,
    num_heads=4,
    hidden_dim=32,
    intermediate_dim=64,
)


def classification_gradients(model, inputs, labels, scale=1.0):
    """Gradients of `scale * cross-entropy` (training mode) as numpy arrays,
    one per trainable variable, on any backend."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss(trainable):
            logits, _ = model.stateless_call(
                trainable, non_trainable, inputs, training=True
            )
            return scale * loss_fn(labels, logits)

        trainable = [v.value for v in model.trainable_variables]
        # Compiled: op by op, JAX differentiates the model slowly.
        return [np.asarray(g) for g in jax.jit(jax.grad(loss))(trainable)]
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = scale * loss_fn(labels, model(inputs, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        return [
            np.zeros(v.shape, "float32")
            if g is None
            else tf.convert_to_tensor(g).numpy()
            for g, v in zip(grads, model.trainable_variables)
        ]
    import torch

    # `model.zero_grad()` leaves the embedding's gradient in place.
    for variable in model.trainable_variables:
        variable.value.grad = None
    inputs = {k: keras.ops.convert_to_tensor(v) for k, v in inputs.items()}
    loss = scale * loss_fn(torch.tensor(labels), model(inputs, training=True))
    loss.backward()
    return [
        np.zeros(v.shape, "float32")
        if v.value.grad is None
        else v.value.grad.numpy()
        for v in model.trainable_variables
    ]


class HuggingFacePeer:
    """A tiny random Hugging Face XLNet and its `save_pretrained` folder."""

    def __init__(self, folder, task="model", **config):
        torch = pytest.importorskip("torch")
        transformers = pytest.importorskip("transformers")
        settings = dict(
            vocab_size=99,
            d_model=32,
            n_layer=2,
            n_head=4,
            d_inner=64,
            ff_activation="gelu_new",
            dropout=0.0,
            initializer_range=0.3,
        )
        settings.update(config)
        hf_config = transformers.XLNetConfig(**settings)
        torch.manual_seed(0)
        if task == "classifier":
            hf_config.num_labels = 3
            model = transformers.XLNetForSequenceClassification(hf_config)
        elif task == "lm":
            model = transformers.XLNetLMHeadModel(hf_config)
        else:
            model = transformers.XLNetModel(hf_config)
        self.model = model.eval()
        self.folder = pathlib.Path(folder)
        self.model.save_pretrained(self.folder, safe_serialization=True)
        self._torch = torch

    def __call__(self, inputs, memory=None, keep_memory=False, **extra):
        """Runs the HF model on batch-major numpy inputs; with `memory` or
        `keep_memory` it returns the new memory (`mems`) too."""
        torch = self._torch
        kwargs = {
            "input_ids": torch.tensor(inputs["token_ids"], dtype=torch.long),
            "attention_mask": torch.tensor(
                inputs["padding_mask"], dtype=torch.float32
            ),
            "token_type_ids": torch.tensor(
                inputs["segment_ids"], dtype=torch.long
            ),
        }
        if memory is not None:
            # Hugging Face keeps memory time-major: [M, batch, D].
            kwargs["mems"] = [
                torch.tensor(np.transpose(m, (1, 0, 2))) for m in memory
            ]
        if memory is not None or keep_memory:
            kwargs["use_mems"] = True
        for name, value in extra.items():
            dtype = torch.long if name == "labels" else torch.float32
            kwargs[name] = torch.tensor(value, dtype=dtype)
        with torch.no_grad():
            return self.model(**kwargs)

    def last_hidden_state_by_row(self, inputs, memory=None):
        """Runs one example at a time and stacks the last hidden states.

        Hugging Face fails on `attn_type="uni"` with an attention mask and a
        batch above 1 (an in-place add cannot broadcast), so causal cases
        are compared row by row.
        """
        rows = [
            self(
                {key: value[row : row + 1] for key, value in inputs.items()},
                memory=None
                if memory is None
                else [m[row : row + 1] for m in memory],
            )
            for row in range(len(inputs["token_ids"]))
        ]
        return np.concatenate([r.last_hidden_state.numpy() for r in rows])


@pytest.fixture
def hf_peer(tmp_path):
    """Factory: `hf_peer(task="model", **XLNetConfig overrides)`."""
    count = iter(range(100))

    def make(task="model", **config):
        return HuggingFacePeer(tmp_path / f"hf_{next(count)}", task, **config)

    return make


# Hugging Face's tokenizer integration texts.
HF_INTEGRATION_TEXTS = [
    "Transformers (formerly known as pytorch-transformers and "
    "pytorch-pretrained-bert) provides general-purpose architectures (BERT, "
    "GPT-2, RoBERTa, XLM, DistilBert, XLNet...) for Natural Language "
    "Understanding (NLU) and Natural Language Generation (NLG) with over "
    "32+ pretrained models in 100+ languages and deep interoperability "
    "between Jax, PyTorch and TensorFlow.",
    "BERT is designed to pre-train deep bidirectional representations from "
    "unlabeled text by jointly conditioning on both left and right context "
    "in all layers.",
    "The quick brown fox jumps over the lazy dog.",
]


def real_vocabulary():
    """The released XLNet cased SentencePiece model (shared data)."""
    return str(shared_path("data", "xlnet_cased_spiece.model"))


def imdb_texts():
    """The 1000 real reviews of the shared IMDB sample."""
    import csv

    with open(shared_path("data", "imdb_sample.csv"), encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


def hf_slow_tokenizer():
    """Hugging Face's sentencepiece-based XLNetTokenizer, the reference."""
    transformers = pytest.importorskip("transformers")
    return transformers.XLNetTokenizer(real_vocabulary())


@pytest.fixture(scope="session")
def tiny_vocabulary(tmp_path_factory):
    """A tiny SentencePiece model with XLNet's special pieces, trained here."""
    words = "the a film movie great dull good bad plot actor scene story"
    sentences = [
        f"{w} {v} was {u}, 1,000 times."
        for w in words.split()
        for v in words.split()[:6]
        for u in ("great", "dull")
    ]
    from keras_xlnet.models.xlnet_tokenizer import train_vocabulary

    prefix = tmp_path_factory.mktemp("vocab") / "tiny"
    return train_vocabulary(sentences, prefix, 40)


@pytest.fixture
def tiny_text_classifier(tiny_vocabulary):
    """A tiny random XLNetClassifier with a preprocessor (tiny vocabulary)."""
    import keras_xlnet

    keras.utils.set_random_seed(0)
    tokenizer = keras_xlnet.XLNetTokenizer(proto=tiny_vocabulary)
    backbone = keras_xlnet.XLNetBackbone(
        **{**TINY_CONFIG, "vocabulary_size": tokenizer.vocabulary_size()}
    )
    preprocessor = keras_xlnet.XLNetPreprocessor(tokenizer, sequence_length=12)
    return keras_xlnet.XLNetClassifier(
        backbone, num_classes=2, preprocessor=preprocessor
    )


@pytest.fixture(scope="session")
def fixture_preset(tmp_path_factory):
    """The tf1 Model Garden fixture converted into a local preset folder,
    with the real vocabulary: `(folder, inputs, expected)`."""
    from keras_xlnet.checkpoints import convert_checkpoint

    checkpoint, inputs, expected = reference_fixture("tf1_original")
    folder = tmp_path_factory.mktemp("fixture_preset") / "preset"
    convert_checkpoint(
        checkpoint,
        folder,
        vocabulary=real_vocabulary(),
        allow_larger_vocabulary=True,  # The fixture's embedding has 64 rows.
    )
    return str(folder), inputs, expected


class ReleaseServer(http.server.ThreadingHTTPServer):
    """Serves files from memory on 127.0.0.1, with HTTP range requests.

    `cut_after` stops one transfer after that many bytes (the connection
    drops, as on a flaky network); `ignore_ranges` answers every request
    with the whole file; `omit_length` sends no Content-Length; a range
    past the end gets HTTP 416. `requests` records every request's path and
    Range header, `bytes_sent` the body bytes served.
    """

    def __init__(self, files):
        self.files = files
        self.requests = []
        self.bytes_sent = 0
        self.cut_after = None
        self.ignore_ranges = False
        self.omit_length = False
        super().__init__(("127.0.0.1", 0), _RangeHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, name):
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


def byte_range(header, size):
    """`(start, stop)` of a `bytes=a-b`, `bytes=a-` or `bytes=-n` header."""
    first, last = header.split("=")[1].split("-")
    if not first:
        return max(0, size - int(last)), size
    return int(first), min(size, int(last) + 1) if last else size


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        name = self.path.lstrip("/")
        server.requests.append((name, self.headers.get("Range")))
        if name not in server.files:
            self.send_error(404)
            return
        body = server.files[name]
        start, stop = 0, len(body)
        if self.headers.get("Range") and not server.ignore_ranges:
            start, stop = byte_range(self.headers["Range"], len(body))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header(
                "Content-Range", f"bytes {start}-{stop - 1}/{len(body)}"
            )
        else:
            self.send_response(200)
        if not server.omit_length:
            self.send_header("Content-Length", str(stop - start))
        self.end_headers()
        payload = body[start:stop]
        if server.cut_after is not None:
            payload = payload[: server.cut_after]
            server.cut_after = None
        self.wfile.write(payload)
        server.bytes_sent += len(payload)
