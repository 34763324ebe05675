"""Every `Example:` block of the public API runs and shows true values.

A block runs in a folder where `spiece.model` is the real vocabulary, with
`keras_xlnet`, `keras_hub`, `keras`, `np` and `tf` imported. An expression
followed by comment lines holding a Python literal (`# [17, 11368]`) must
evaluate to that literal.
"""

import ast
import inspect
import os
import re

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from conftest import real_vocabulary

import keras_xlnet
from keras_xlnet.data import length_buckets

EXAMPLE = re.compile(r"Example:\n\s*```python\n(.*?)\n\s*```", re.DOTALL)

# What runs: the public classes and their documented methods.
DOCUMENTED = {
    "XLNetBackbone": keras_xlnet.XLNetBackbone,
    "XLNetBackbone.encode": keras_xlnet.XLNetBackbone.encode,
    "XLNetTokenizer": keras_xlnet.XLNetTokenizer,
    "XLNetTextClassifierPreprocessor": (
        keras_xlnet.XLNetTextClassifierPreprocessor
    ),
    "XLNetClassifier": keras_xlnet.XLNetClassifier,
    "XLNetPermutationLM": keras_xlnet.XLNetPermutationLM,
    "XLNetPermutationLMPreprocessor": (
        keras_xlnet.XLNetPermutationLMPreprocessor
    ),
    "enable_input_checks": keras_xlnet.enable_input_checks,
}
# Helpers imported from their modules.
DOCUMENTED_HELPERS = {
    "length_buckets.predict_by_length": length_buckets.predict_by_length,
}
# Documented, but needing what a test machine lacks.
NOT_RUN = {
    "XLNetBackbone.get_layout_map": "a mesh of 8 devices",
    "convert_checkpoint": "a released XLNet checkpoint",
    # Fine-tuned presets; tests/serving runs the same calls on tiny ones.
    "XLNetClassifier.quantize": "a fine-tuned classifier preset",
    "XLNetClassifier.export": "a fine-tuned classifier",
    "export_classifier": "a fine-tuned classifier preset",
}


def example_of(documented):
    match = EXAMPLE.search(inspect.getdoc(documented) or "")
    assert match, f"{documented.__qualname__} has no Example: block"
    return match.group(1)


def expected_values(source):
    """`{line of an expression statement's end: literal}` of the comments
    that follow expression statements."""
    lines = source.splitlines()
    expected = {}
    for statement in ast.parse(source).body:
        if not isinstance(statement, ast.Expr):
            continue
        comment = []
        for line in lines[statement.end_lineno :]:
            if not line.strip().startswith("#"):
                break
            comment.append(line.strip().removeprefix("#").strip())
        try:
            expected[statement.end_lineno] = ast.literal_eval(" ".join(comment))
        except (ValueError, SyntaxError):
            continue
    return expected


def as_literal(value, like):
    """`value` (a tensor, array, shape or string) in the form of `like`."""
    if isinstance(like, str):
        value = (
            keras.ops.convert_to_numpy(value) if tf.is_tensor(value) else value
        )
        value = value.item() if isinstance(value, np.ndarray) else value
        return value.decode() if isinstance(value, bytes) else value
    if isinstance(like, tuple):
        return tuple(int(size) for size in value)
    return np.asarray(keras.ops.convert_to_numpy(value)).tolist()


def run_example(source):
    namespace = {
        "keras_xlnet": keras_xlnet,
        "keras_hub": keras_hub,
        "keras": keras,
        "np": np,
        "tf": tf,
    }
    checked = 0
    expected = expected_values(source)
    for statement in ast.parse(source).body:
        if statement.end_lineno in expected:
            code = compile(ast.Expression(statement.value), "<example>", "eval")
            value = eval(code, namespace)
            want = expected[statement.end_lineno]
            assert as_literal(value, want) == want, ast.unparse(statement)
            checked += 1
        else:
            module = ast.Module(body=[statement], type_ignores=[])
            exec(compile(module, "<example>", "exec"), namespace)
    return checked


@pytest.fixture
def example_folder(tmp_path, monkeypatch):
    os.symlink(real_vocabulary(), tmp_path / "spiece.model")
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)


@pytest.mark.parametrize("name", sorted({**DOCUMENTED, **DOCUMENTED_HELPERS}))
def test_example_runs_and_shows_true_values(name, example_folder):
    documented = {**DOCUMENTED, **DOCUMENTED_HELPERS}[name]
    assert run_example(example_of(documented)) >= 1


def has_example(member):
    is_code = inspect.isroutine(member) or isinstance(
        member, (staticmethod, classmethod)
    )
    return is_code and bool(EXAMPLE.search(inspect.getdoc(member) or ""))


def test_every_documented_public_example_is_run_or_explained():
    public = [getattr(keras_xlnet, name) for name in dir(keras_xlnet)]
    names = {
        member.__qualname__
        for member in public
        if (inspect.isclass(member) or has_example(member))
        and EXAMPLE.search(inspect.getdoc(member) or "")
    }
    names |= {
        f"{cls.__name__}.{name}"
        for cls in public
        if inspect.isclass(cls) and cls.__module__.startswith("keras_xlnet")
        for name, member in vars(cls).items()
        if has_example(member)
    }
    assert names <= set(DOCUMENTED) | set(NOT_RUN)
    assert set(DOCUMENTED) <= names
