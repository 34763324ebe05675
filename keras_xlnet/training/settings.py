"""The settings of a training run and their checks.

`RunConfig` holds what every task shares (schedule, optimizer, batching,
distribution, files); a task subclasses it with its own fields, extends
`RESUME_SETTINGS` with those that fix its model or data order and
`check` with their checks.
"""

import dataclasses
import typing

from keras_xlnet.training import processes


class RunError(ValueError):
    """Settings, files or inputs that a run cannot proceed with."""


# What a run does, as the tutorial's `--mode`: train and evaluate at each
# checkpoint, train only, or evaluate or export for serving the newest
# checkpoint of `model_dir` (or, without one, the task's trained model).
MODES = ("train_and_eval", "train", "eval", "export_only")


@dataclasses.dataclass
class RunConfig:
    """Settings of a training run.

    `batch_size` is the global batch of one optimizer step (split into
    `accumulation_steps` micro-batches); the run trains `train_steps`
    steps, evaluates every `eval_every` steps and writes a checkpoint at
    each evaluation into `model_dir`.
    """

    model_dir: str = "model"
    mode: str = "train_and_eval"
    # A training run's end (or `export_only`) writes the serving export
    # into `<export_dir>/<version>` (default `export_dir`:
    # `<model_dir>/export`).
    export: bool = False
    export_dir: str = None
    batch_size: int = 32
    train_steps: int = 4000
    warmup_steps: int = 500
    learning_rate: float = 2e-5
    clip_norm: float = 1.0
    per_replica_clip: bool = False
    accumulation_steps: int = 1
    eval_every: int = 500
    eval_batch_size: int = 32
    distribution: str = "auto"
    tpu: str = None
    # Several processes: seconds a process waits for the coordinator (and
    # the coordinator for the others) before failing.
    connect_timeout: int = processes.CONNECT_TIMEOUT
    remat: bool = False
    # "auto": mixed bfloat16 with accelerators, float32 on the CPU.
    dtype: str = "auto"
    resume: bool = False
    seed: int = 0
    verbose: int = 1

    # Settings a resumed run must share with its checkpoint: they fix the
    # model, the schedule and the order of the training data.
    RESUME_SETTINGS: typing.ClassVar[tuple] = (
        "batch_size",
        "train_steps",
        "warmup_steps",
        "learning_rate",
        "clip_norm",
        "per_replica_clip",
        "accumulation_steps",
        "eval_every",
        "seed",
        "dtype",
    )
    # Integer settings and the smallest value each may take.
    MINIMA: typing.ClassVar[dict] = {
        "batch_size": 1,
        "train_steps": 1,
        "warmup_steps": 0,
        "eval_every": 1,
        "eval_batch_size": 1,
        "accumulation_steps": 1,
        "connect_timeout": 1,
    }

    def check(self):
        """Raises `RunError` naming the first setting the run cannot take."""
        for name, minimum in self.MINIMA.items():
            value = getattr(self, name)
            if not isinstance(value, int) or value < minimum:
                raise RunError(
                    f"{name} must be an integer of at least {minimum}; "
                    f"received {value!r}."
                )
        for name in ("learning_rate", "clip_norm"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise RunError(f"{name} must be positive; received {value!r}.")
        if self.warmup_steps > self.train_steps:
            raise RunError(
                f"warmup_steps ({self.warmup_steps}) exceeds train_steps "
                f"({self.train_steps})."
            )
        if self.train_steps % self.eval_every:
            raise RunError(
                f"eval_every ({self.eval_every}) must divide train_steps "
                f"({self.train_steps})."
            )
        if self.batch_size % self.accumulation_steps:
            raise RunError(
                f"accumulation_steps ({self.accumulation_steps}) must "
                f"divide batch_size ({self.batch_size})."
            )
        if not self.model_dir:
            raise RunError("model_dir must name a folder.")
        if self.mode not in MODES:
            raise RunError(
                f"mode must be one of {MODES}; received {self.mode!r}."
            )
        if self.export and self.mode not in ("train_and_eval", "train"):
            raise RunError(
                f"--export applies to training runs; --mode {self.mode} "
                "does not train (--mode export_only exports)."
            )

    @property
    def micro_batch_size(self):
        """Examples per training step (per gradient, with accumulation)."""
        return self.batch_size // self.accumulation_steps

    @property
    def intervals(self):
        """Evaluation intervals of the run (one checkpoint each)."""
        return self.train_steps // self.eval_every

    @property
    def batches_per_interval(self):
        """Micro-batches read in one evaluation interval."""
        return self.eval_every * self.accumulation_steps

    def resume_settings(self, dtype):
        """The settings a resumed run must share, `dtype` resolved."""
        settings = {name: getattr(self, name) for name in self.RESUME_SETTINGS}
        settings["dtype"] = dtype
        return settings


def changed_settings(settings, recorded):
    """`name=value (checkpoint: value)` of each setting that differs."""
    return [
        f"{name}={settings[name]!r} (checkpoint: {recorded.get(name)!r})"
        for name in settings
        if recorded.get(name) != settings[name]
    ]
