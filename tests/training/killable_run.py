"""A tiny fine-tuning run that SIGKILLs itself after its first checkpoint.

Started by `test_fault_tolerance.py`. Usage:
    python killable_run.py MODEL_DIR {kill,resume,straight}
        [STEPS EVERY BATCH [grouped]]

With `EVERY` steps of `BATCH` reviews per evaluation interval; above 27
reviews, an interval spans more than one pass over the training reviews.
`grouped` trains on length-grouped batches (`group_by_length`).
"""

import sys

import sigkill

from keras_xlnet.recipes import imdb
from keras_xlnet.recipes import imdb_demo
from keras_xlnet.training import runner

model_dir, mode = sys.argv[1], sys.argv[2]
steps, every, batch = (
    map(int, sys.argv[3:6]) if len(sys.argv) > 3 else (6, 3, 4)
)
grouped = sys.argv[6:] == ["grouped"]
config = imdb.ImdbConfig(
    model_dir=model_dir,
    sequence_length=32,
    max_segments=2,  # Resumes with XLNet's memory between segments of 16.
    batch_size=batch,
    train_steps=steps,
    warmup_steps=1,
    learning_rate=1e-3,
    eval_every=every,
    eval_batch_size=8,
    group_by_length=grouped,
    bucket_width=8,
    dtype="float32",
    distribution="none",
    resume=mode == "resume",
    verbose=0,
)
callbacks = [sigkill.at_first_checkpoint()] if mode == "kill" else []
runner.run(imdb_demo.demo_task(config), callbacks=callbacks)
