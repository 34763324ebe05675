"""XLNet's permutation language model: pretraining and generation."""

import keras
from keras import ops
from keras_hub.models import CausalLM

from keras_xlnet.layers.lm_head import XLNetLMHead
from keras_xlnet.models.xlnet_backbone import XLNetBackbone
from keras_xlnet.models.xlnet_backbone import next_memory
from keras_xlnet.models.xlnet_permutation_lm_preprocessor import (
    XLNetPermutationLMPreprocessor,
)

# The token that stands in for the one being generated (Hugging Face's).
_DUMMY_TOKEN = 0
# Generation recomputes the last two tokens at every step, as Hugging
# Face's `XLNetLMHeadModel.prepare_inputs_for_generation` does.
_RECOMPUTED = 2


def permutation_lm_loss():
    """XLNet's pretraining loss: the cross-entropy of the logits at the
    predicted positions, averaged over `target_mask` (the sample weight)."""
    return keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="mean_with_sample_weight"
    )


def _check_two_stream_inputs(inputs):
    """Names a `perm_mask` or `target_mapping` whose known sizes disagree
    with `token_ids`."""
    batch, length = tuple(inputs["token_ids"].shape)
    expected = {
        "perm_mask": (batch, length, length),
        "target_mapping": (batch, None, length),
    }
    for name, sizes in expected.items():
        shape = tuple(inputs[name].shape)
        if len(shape) != 3 or any(
            a is not None and b is not None and a != b
            for a, b in zip(shape, sizes)
        ):
            raise ValueError(
                f"`{name}` must be {list(sizes)} ([batch, predictions, "
                f"length] for target_mapping) for token_ids of shape "
                f"{[batch, length]}. Received shape {list(shape)}."
            )


class XLNetCarriedMemory(keras.layers.Layer):
    """XLNet's memory between training steps, as a non-trainable weight
    `[num_layers, batch, memory_length, hidden_dim]` (see
    `XLNetPermutationLM.use_pretraining_stream`)."""

    def __init__(
        self,
        num_layers,
        batch_size,
        memory_length,
        hidden_dim,
        reuse_length,
        **kwargs,
    ):
        super().__init__(trainable=False, **kwargs)
        self.shape = (num_layers, batch_size, memory_length, hidden_dim)
        self.reuse_length = reuse_length

    def build(self, input_shape=None):
        self.memory = self.add_weight(
            name="memory",
            shape=self.shape,
            initializer="zeros",
            trainable=False,
        )
        self.built = True

    def read(self, dtype, token_ids):
        """The memory of each layer, `[batch, memory_length, D]`, for a
        training batch of `token_ids`."""
        batch_size = ops.shape(token_ids)[0]
        if isinstance(batch_size, int) and batch_size != self.shape[1]:
            raise ValueError(
                f"The carried memory serves batches of {self.shape[1]} rows; "
                f"this training batch has {batch_size}."
            )
        memory = ops.cast(self.memory, dtype)
        return [memory[i] for i in range(self.shape[0])]

    def update(self, layer_inputs, memory):
        """Keeps each layer's next memory (`next_memory`)."""
        new = [
            next_memory(
                layer_input,
                layer_memory,
                memory_length=self.shape[2],
                reuse_length=self.reuse_length,
            )
            for layer_input, layer_memory in zip(layer_inputs, memory)
        ]
        self.memory.assign(ops.cast(ops.stack(new), self.memory.dtype))


class _TwoStreamLogits(keras.layers.Layer):
    """The query stream and the LM head as one node of the task's graph.

    The backbone's blocks return one stream in the backbone's own graph
    and two here; a Keras functional graph cannot hold a layer whose
    calls return different numbers of outputs, so the two-stream pass
    runs inside this layer (the weights stay the backbone's and the
    head's, tracked by the task).
    """

    def __init__(self, logits_fn, vocabulary_size, **kwargs):
        super().__init__(**kwargs)
        self._logits_fn = logits_fn
        self.vocabulary_size = vocabulary_size
        self.built = True

    def call(self, inputs, training=None):
        return self._logits_fn(inputs, training=training)

    def compute_output_spec(self, inputs, training=None):
        batch, predictions = inputs["target_mapping"].shape[:2]
        return keras.KerasTensor(
            (batch, predictions, self.vocabulary_size),
            dtype=self.compute_dtype,
        )


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetPermutationLM(CausalLM):
    """XLNet with its language-model head: permutation language modelling
    (the pretraining objective) and text generation.

    Inputs are the backbone's (`token_ids`, `padding_mask`, `segment_ids`)
    plus `perm_mask` (`[batch, T, T]`, 1 where token `i` may not attend to
    token `j`) and `target_mapping` (`[batch, P, T]`, one-hot rows placing
    the `P` predictions); the output is the logits of the query stream at
    the predictions, `[batch, P, vocabulary_size]`:
    `h_query · embeddingᵀ + bias` with the word embedding tied. The loss
    (`compile` default) is XLNet's: cross-entropy against the target ids,
    weighted by `target_mask` (the sample weight), averaged over it.

    A preset or checkpoint without an LM head (a classifier's, say) starts
    with a zero bias.

    `generate()` works as XLNet generates (Hugging Face's
    `XLNetLMHeadModel`): a dummy token appended after the text is
    predicted by the query stream and hidden from every other token; the
    states of earlier tokens are reused as memory, the last two tokens are
    recomputed at each step. Sampling follows `compile(sampler=...)`
    (KerasHub's samplers: `"greedy"`, `"top_k"`, `"top_p"`, `"beam"`...).
    A batch generates from the end of its shortest prompt: the rest of a
    longer prompt enters token by token, each seeing the tokens before it,
    which differs from generating that prompt alone (prompt attention is
    bidirectional): batch prompts of equal length for Hugging Face's
    output.

    `use_pretraining_stream()` lays out training steps as the original
    pretraining: memory carried between steps, `bi_data`.

    Args:
        backbone: an `XLNetBackbone`.
        preprocessor: optional `XLNetPermutationLMPreprocessor`; needed for
            raw text in `fit` and `generate`.

    Example:
    ```python
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32,
    )
    lm = keras_xlnet.XLNetPermutationLM(backbone)
    perm_mask = np.zeros((1, 5, 5))
    perm_mask[0, :, 3] = 1  # Nobody sees token 3 ...
    target_mapping = np.zeros((1, 1, 5))
    target_mapping[0, 0, 3] = 1  # ... which is predicted.
    logits = lm.predict({
        "token_ids": np.array([[7, 8, 9, 10, 11]]),
        "padding_mask": np.ones((1, 5)),
        "segment_ids": np.zeros((1, 5)),
        "perm_mask": perm_mask,
        "target_mapping": target_mapping,
    })
    logits.shape
    # (1, 1, 100)
    ```
    """

    backbone_cls = XLNetBackbone
    preprocessor_cls = XLNetPermutationLMPreprocessor

    def __init__(self, backbone, preprocessor=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.lm_head = XLNetLMHead(
            backbone.vocabulary_size,
            dtype=backbone.dtype_policy,
            name="lm_head",
        )
        self.lm_head.build()
        # === Functional Model ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in ("token_ids", "padding_mask", "segment_ids")
        }
        for name in ("perm_mask", "target_mapping"):
            inputs[name] = keras.Input(
                shape=(None, None), dtype="float32", name=name
            )
        logits = _TwoStreamLogits(
            self._logits,
            backbone.vocabulary_size,
            dtype=backbone.dtype_policy,
            name="two_stream_logits",
        )(inputs)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        # Used inside `_TwoStreamLogits`, outside the functional graph:
        # assigning them again makes the model track their weights.
        self.backbone = self.backbone
        self.lm_head = self.lm_head

    def compile(self, optimizer="auto", loss="auto", **kwargs):
        """As `keras_hub.models.CausalLM.compile`, with XLNet's loss
        (`permutation_lm_loss`) by default."""
        if loss == "auto":
            loss = permutation_lm_loss()
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def preprocess_samples(self, x, y=None, sample_weight=None):
        """KerasHub's preprocessing of a batch; examples already made (a
        dict with `token_ids`, the pretraining stream's, say) skip the
        preprocessor."""
        if isinstance(x, dict) and "token_ids" in x:
            return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
        return super().preprocess_samples(x, y, sample_weight)

    def use_pretraining_stream(
        self, batch_size, memory_length=0, reuse_length=None, bi_data=False
    ):
        """Lays out training steps as the original pretraining does; other
        calls (evaluation, prediction, generation) are unchanged: forward
        positions, no memory.

        With `memory_length`, XLNet's memory is carried from each training
        step to the next: row `i` of a batch attends to the states that row
        `i` of the previous batch left (the first `reuse_length` positions
        of each layer's input, appended to the memory and trimmed to the
        last `memory_length`); zeros before the first step. The memory is a
        non-trainable weight (checkpoints hold it, resumes continue it) and
        training batches must have `batch_size` rows. With `bi_data`, the
        second half of each training batch reads backward (backward
        relative positions; the rows are reversed text). A backbone made
        with `bi_data=True` is set to forward positions: the layout
        decides. Not part of the config: a saved model has neither. Call
        once, before training.

        Args:
            batch_size: int, rows per training step.
            memory_length: int, memory positions per layer (0: none).
            reuse_length: int, the positions of each step kept as memory.
            bi_data: bool.
        """
        if hasattr(self, "backward_half"):
            raise ValueError(
                "use_pretraining_stream() was called on this model already."
            )
        backbone = self.backbone
        backbone.bi_data = backbone.position_encoding.bi_data = False
        self.carried_memory = None
        if memory_length:
            self.carried_memory = XLNetCarriedMemory(
                backbone.num_layers,
                batch_size,
                memory_length,
                backbone.hidden_dim,
                reuse_length,
                name="carried_memory",
            )
            self.carried_memory.build()
        self.backward_half = bi_data
        for attribute in ("train_function", "test_function"):
            setattr(self, attribute, None)

    def _logits(self, inputs, training=None):
        """The query stream's logits: the model's output."""
        carried = getattr(self, "carried_memory", None)
        use_memory = carried is not None and training
        memory = None
        if use_memory:
            memory = carried.read(self.compute_dtype, inputs["token_ids"])
        position_encoding = self.backbone.position_encoding
        backbone_bi_data = position_encoding.bi_data
        # Read when the step is traced (each compiled function once).
        if training and getattr(self, "backward_half", False):
            position_encoding.bi_data = True
        try:
            outputs = self.backbone._encode(
                inputs["token_ids"],
                inputs["padding_mask"],
                inputs["segment_ids"],
                memory=memory,
                perm_mask=inputs["perm_mask"],
                target_mapping=inputs["target_mapping"],
                training=training,
                keep_layer_inputs=use_memory,
            )
        finally:
            position_encoding.bi_data = backbone_bi_data
        if use_memory:
            carried.update(outputs["layer_inputs"], memory)
        return self.lm_head(
            outputs["query_output"], self.backbone.token_embedding.embeddings
        )

    def lm_outputs(self, inputs, memory=None, memory_mask=None, training=False):
        """The logits and XLNet's memory (`XLNetBackbone.encode`).

        Args:
            inputs: dict of the model's five inputs.
            memory, memory_mask: as `XLNetBackbone.encode`.
            training: bool, enables dropout.

        Returns:
            `encode`'s dict (`"query_output"`, `"sequence_output"`,
            `"new_memory"`, `"new_memory_mask"`) with `"logits"`
            `[batch, P, vocabulary_size]` added.
        """
        _check_two_stream_inputs(inputs)
        outputs = self.backbone.encode(
            inputs["token_ids"],
            inputs["padding_mask"],
            inputs["segment_ids"],
            memory=memory,
            memory_mask=memory_mask,
            perm_mask=ops.cast(inputs["perm_mask"], self.compute_dtype),
            target_mapping=ops.cast(
                inputs["target_mapping"], self.compute_dtype
            ),
            training=training,
        )
        outputs["logits"] = self.lm_head(
            outputs["query_output"], self.backbone.token_embedding.embeddings
        )
        return outputs

    # === Generation ===

    def _prefill(self, token_ids, index):
        """The generation cache at `index` (the first position to
        generate): each layer's input states of tokens `0 .. index - 3`,
        computed over tokens `0 .. index - 1` as Hugging Face's first step
        does, right-aligned in `[batch, layers, S, D]` (slot `s` holds
        token `s - S + index - 2`), and their mask `[batch, S]`."""
        length = ops.shape(token_ids)[1]
        positions = ops.arange(length, dtype="int32")
        visible = ops.cast(positions < index, "int32")[None, :]
        states = self.backbone._encode(
            token_ids,
            ops.broadcast_to(visible, ops.shape(token_ids)),
            ops.zeros_like(token_ids),
            layer_inputs_only=True,
        )["layer_inputs"]
        source = positions - length + index - _RECOMPUTED
        slots = ops.mod(source, length)
        memory = ops.stack([ops.take(s, slots, axis=1) for s in states], 1)
        memory_mask = ops.broadcast_to(
            ops.cast(source >= 0, "int32")[None, :], ops.shape(token_ids)
        )
        return memory, memory_mask

    def _generation_step(self, prompt, cache, index):
        """Logits `[batch, V]` for position `index` from the two tokens
        before it and a dummy token, attending to the cached memory; the
        cache with the first of the two appended."""
        memory, memory_mask = cache
        batch_size = ops.shape(prompt)[0]
        previous = index - _RECOMPUTED + ops.arange(_RECOMPUTED, dtype="int32")
        window = ops.take(prompt, ops.maximum(previous, 0), axis=1)
        token_ids = ops.concatenate(
            [window, ops.full((batch_size, 1), _DUMMY_TOKEN, window.dtype)],
            axis=1,
        )
        real = ops.concatenate(
            [ops.cast(previous >= 0, "int32"), ops.ones((1,), "int32")], 0
        )
        window_length = _RECOMPUTED + 1
        # Nobody sees the dummy token; the query stream predicts it.
        dummy = ops.arange(window_length) == window_length - 1
        outputs = self.backbone._encode(
            token_ids,
            ops.broadcast_to(real[None, :], (batch_size, window_length)),
            ops.zeros_like(token_ids),
            memory=[memory[:, i] for i in range(self.backbone.num_layers)],
            memory_mask=memory_mask,
            perm_mask=ops.broadcast_to(
                ops.cast(dummy, self.compute_dtype)[None, None, :],
                (batch_size, window_length, window_length),
            ),
            target_mapping=ops.broadcast_to(
                ops.cast(dummy, self.compute_dtype)[None, None, :],
                (batch_size, 1, window_length),
            ),
            keep_layer_inputs=True,
        )
        logits = self.lm_head(
            outputs["query_output"], self.backbone.token_embedding.embeddings
        )[:, 0]
        first = ops.stack([s[:, 0] for s in outputs["layer_inputs"]], 1)
        memory = ops.concatenate(
            [memory[:, :, 1:], ops.cast(first, memory.dtype)[:, :, None]],
            axis=2,
        )
        memory_mask = ops.concatenate(
            [
                memory_mask[:, 1:],
                ops.broadcast_to(real[None, :1], (batch_size, 1)),
            ],
            axis=1,
        )
        return logits, (memory, memory_mask)

    def generate_step(self, inputs, stop_token_ids=None):
        """One compilable generation of a batch `{"token_ids",
        "padding_mask"}` (prompts right-padded to the output length);
        returns the filled `token_ids` and their `padding_mask` (what
        follows a stop token is masked)."""
        if self.backbone.bi_data:
            raise ValueError(
                "`generate` needs a backbone with `bi_data=False` (forward "
                "positions only); this one has `bi_data=True`."
            )
        token_ids = ops.convert_to_tensor(inputs["token_ids"], "int32")
        padding_mask = ops.cast(inputs["padding_mask"], "bool")
        index = ops.min(ops.sum(ops.cast(padding_mask, "int32"), axis=-1))
        cache = self._prefill(token_ids, index)

        def next(prompt, cache, index):
            logits, cache = self._generation_step(prompt, cache, index)
            return logits, None, cache

        token_ids = self.sampler(
            next=next,
            prompt=token_ids,
            cache=cache,
            index=index,
            mask=padding_mask,
            stop_token_ids=stop_token_ids,
            model=self,
        )
        return {
            "token_ids": token_ids,
            "padding_mask": _mask_after_stop(
                token_ids, padding_mask, stop_token_ids
            ),
        }


def _mask_after_stop(token_ids, prompt_mask, stop_token_ids):
    """`True` up to and including each row's first generated stop token;
    everywhere without stop tokens."""
    if stop_token_ids is None:
        return ops.ones_like(token_ids, dtype="bool")
    generated = ops.logical_not(prompt_mask)
    stops = ops.zeros_like(prompt_mask)
    for stop in stop_token_ids:
        stops = ops.logical_or(stops, ops.equal(token_ids, stop))
    stops = ops.cast(ops.logical_and(stops, generated), "int32")
    after = ops.cumsum(stops, axis=-1) - stops
    return ops.equal(after, 0)
