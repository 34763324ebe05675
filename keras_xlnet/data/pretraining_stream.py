"""XLNet's pretraining data stream, as the original `create_tfrecords`.

Documents become one token stream (each line a sentence, `<eod>` after
each document), cut into `batch_size` rows of consecutive text; with
`bi_data` the second half of the rows are the first half reversed. Step
`k` of a pass gives row `r` the example starting at `k * reuse_length` of
that row: its reuse part, then A and B after it (B the continuation of A
or, half of the time, a random piece of the row, cut at sentence
boundaries as the original's `_split_a_and_b`), so that each row's reuse
part continues the previous step's: the memory a step leaves is the
context of the next. Targets and factorization orders are drawn as
`XLNetPermutationLMPreprocessor` draws them, from a generator seeded by
`(seed, pass, step, row)`: any step can be made directly, which is what
exact resume needs.
"""

import numpy as np

from keras_xlnet.models.xlnet_permutation_lm_preprocessor import SPECIAL_TOKENS
from keras_xlnet.models.xlnet_text_classifier_preprocessor import CLS_SEGMENT_ID

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - TF is a dependency.
    tf = None


def split_a_and_b(sentence_ids, begin, total, rng):
    """`(a_begin, a_end, b_begin, b_end)` of A and B, `total` pieces
    together, A starting at `begin` (the original's `_split_a_and_b`).

    A ends at a sentence boundary; B follows it, or (half of the time, and
    always when no boundary lies within reach) is a random run of whole
    sentences of the row; the longer of the two loses pieces at its end
    until they fit.
    """
    length = len(sentence_ids)
    end = begin + 1
    cuts = []
    while end < length:
        if sentence_ids[end] != sentence_ids[end - 1]:
            if end - begin >= total:
                break
            cuts.append(end)
        end += 1
    if not cuts or rng.random() < 0.5:
        a_end = int(rng.choice(cuts)) if cuts else end
        b_length = max(1, total - (a_end - begin))
        b_begin = int(rng.integers(0, length - b_length))
        b_end = b_begin + b_length
        while (
            b_begin > 0 and sentence_ids[b_begin - 1] == sentence_ids[b_begin]
        ):
            b_begin -= 1
        while (
            b_end < length - 1
            and sentence_ids[b_end - 1] == sentence_ids[b_end]
        ):
            b_end += 1
    else:
        a_end = int(rng.choice(cuts))
        b_begin, b_end = a_end, end
    while (a_end - begin) + (b_end - b_begin) > total:
        if a_end - begin > b_end - b_begin:
            a_end -= 1
        else:
            b_end -= 1
    return begin, a_end, b_begin, b_end


class PretrainingStream:
    """Batches of pretraining examples from documents, in stream order.

    Args:
        documents: list of strings; each line of a document is a sentence.
        preprocessor: an `XLNetPermutationLMPreprocessor` (tokenizer and
            sampling settings).
        batch_size: int, rows per batch (even with `bi_data`).
        bi_data: bool, the second half of the rows read backward (train
            with `XLNetPermutationLM.use_pretraining_stream(...,
            bi_data=True)`).
        seed: int.
    """

    def __init__(self, documents, preprocessor, batch_size, bi_data, seed):
        self.preprocessor = preprocessor
        self.settings = preprocessor.settings
        self.batch_size = batch_size
        self.bi_data = bi_data
        self.seed = seed
        if bi_data and batch_size % 2:
            raise ValueError(
                f"bi_data needs an even batch size; received {batch_size}."
            )
        tokens, sentence_ids = self._stream(documents)
        forward_rows = batch_size // 2 if bi_data else batch_size
        row_length = len(tokens) // forward_rows
        rows = tokens[: row_length * forward_rows].reshape(forward_rows, -1)
        ids = sentence_ids[: row_length * forward_rows].reshape(
            forward_rows, -1
        )
        if bi_data:
            rows = np.concatenate([rows, rows[:, ::-1]])
            ids = np.concatenate([ids, ids[:, ::-1]])
        self.rows, self.sentence_ids = rows, ids
        settings = self.settings
        # The original stops when A and B would reach the row's end.
        room = row_length - settings.sequence_length
        self.steps_per_pass = (
            room // settings.reuse_length + 1 if room >= 0 else 0
        )
        if self.steps_per_pass < 1:
            raise ValueError(
                f"The documents hold {len(tokens)} pieces: {forward_rows} "
                f"rows of {row_length}, fewer than the "
                f"{settings.sequence_length} one example needs. Give "
                "more text or a smaller batch_size or sequence_length."
            )

    def _stream(self, documents):
        tokenizer = self.preprocessor.tokenizer
        sentences = []
        for document in documents:
            sentences.extend(
                line for line in document.splitlines() if line.strip()
            )
            sentences.append(None)  # The document's end.
        texts = [s for s in sentences if s is not None]
        pieces = iter(tokenizer(texts) if texts else [])
        tokens, sentence_ids, flag = [], [], False
        for sentence in sentences:
            if sentence is None:
                # `<eod>` shares the id of the sentence before it.
                ids, flag = [tokenizer.token_to_id("<eod>")], not flag
            else:
                ids = [int(i) for i in next(pieces)]
            if not ids:
                continue
            tokens.extend(ids)
            sentence_ids.extend([flag] * len(ids))
            flag = not flag
        return np.array(tokens, "int32"), np.array(sentence_ids, bool)

    def example(self, row, begin, rng):
        """The example of `row` whose reuse part starts at `begin`."""
        settings = self.settings
        tokenizer = self.preprocessor.tokenizer
        reuse = settings.reuse_length
        data, ids = self.rows[row], self.sentence_ids[row]
        total = settings.sequence_length - reuse - SPECIAL_TOKENS
        _, a_end, b_begin, b_end = split_a_and_b(ids, begin + reuse, total, rng)
        sep, cls = tokenizer.sep_token_id, tokenizer.cls_token_id
        a = data[begin + reuse : a_end]
        b = data[b_begin:b_end]
        token_ids = np.concatenate(
            [data[begin : begin + reuse], a, [sep], b, [sep, cls]]
        ).astype("int32")
        segment_ids = np.array(
            [0] * (reuse + len(a) + 1) + [1] * (len(b) + 1) + [CLS_SEGMENT_ID],
            "int32",
        )
        reverse = self.bi_data and row >= self.batch_size // 2
        return self.preprocessor.sampled_example(
            token_ids, segment_ids, 0, rng, reverse=reverse
        )

    def batch(self, index):
        """Batch `index` of the stream (pass after pass): a dict of arrays
        `[batch_size, ...]`, the model's five inputs, `target_ids` and
        `target_mask`."""
        pass_index, step = divmod(int(index), self.steps_per_pass)
        begin = step * self.settings.reuse_length
        examples = [
            self.example(
                row,
                begin,
                np.random.default_rng([self.seed, pass_index, step, row]),
            )
            for row in range(self.batch_size)
        ]
        return self.preprocessor.stack_examples(examples)

    def dataset(self, start=0):
        """A `tf.data.Dataset` of `(x, y, target_mask)` batches from batch
        `start` on, without end."""
        return self.preprocessor.batches_from_indices(
            tf.data.Dataset.range(start, np.iinfo(np.int64).max),
            self.batch,
            self.batch_size,
        )
