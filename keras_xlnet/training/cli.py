"""The command line of a training tool: the runner's flags, `--demo`,
and errors as one `error:` line (`--debug` for the traceback).

A tool adds its task's own flags to `parser(description, config_class)`
and calls `main(args, defaults, config_class, make_task, demo)`.
"""

import argparse
import dataclasses
import sys

from keras_xlnet.training import runner
from keras_xlnet.training.settings import MODES

DISTRIBUTIONS = (
    "auto",
    "none",
    "data_parallel",
    "model_parallel",
    "tpu",
    "mirrored",
    "multi_worker",
)


def user_errors():
    """The errors of bad settings, data or environments: reported as one
    line. Anything else is a bug and keeps its traceback."""
    from keras_xlnet.checkpoints.downloads import DownloadError
    from keras_xlnet.checkpoints.readers import CheckpointError
    from keras_xlnet.checkpoints.registry import PresetUnavailableError
    from keras_xlnet.data.imdb import DataError
    from keras_xlnet.training.distribution import DistributionError
    from keras_xlnet.training.processes import ProcessError
    from keras_xlnet.training.settings import RunError
    from keras_xlnet.training.tf_distributed_fit import KerasVersionError

    return (
        RunError,
        DataError,
        DistributionError,
        ProcessError,
        KerasVersionError,
        CheckpointError,
        DownloadError,
        PresetUnavailableError,
    )


def parser(description, config_class):
    """An argument parser with the runner's flags, defaults from
    `config_class`; `--model-dir` defaults to None (the task's or the
    demo's folder)."""
    defaults = config_class()
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--model-dir",
        help=f"where checkpoints, logs, metrics.json and the trained preset "
        f"go (default: {defaults.model_dir}, with --demo its own folder)",
    )
    p.add_argument(
        "--mode",
        default=defaults.mode,
        choices=MODES,
        help="train_and_eval: train, evaluating at each checkpoint (the "
        "tutorial's); train: train only; eval: evaluate the newest "
        "checkpoint of --model-dir (without one, the task's trained model, "
        "a fine-tuned --preset) and write model_dir/eval/metrics.json; "
        "export_only: export that model for serving (see --export-dir)",
    )
    p.add_argument(
        "--export",
        action="store_true",
        help="at the end of training, also export the model for serving",
    )
    p.add_argument(
        "--export-dir",
        help="where --export and --mode export_only write the serving "
        "export, as a new numbered version folder (default: "
        "<model-dir>/export)",
    )
    for name in (
        "batch_size",
        "train_steps",
        "warmup_steps",
        "eval_every",
        "eval_batch_size",
        "accumulation_steps",
        "seed",
    ):
        p.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            default=getattr(defaults, name),
        )
    p.add_argument(
        "--learning-rate", type=float, default=defaults.learning_rate
    )
    p.add_argument("--distribution", default="auto", choices=DISTRIBUTIONS)
    p.add_argument(
        "--tpu", help="TPU name or address (with --distribution tpu)"
    )
    p.add_argument(
        "--connect-timeout",
        type=int,
        default=defaults.connect_timeout,
        help="several processes (KERAS_DISTRIBUTION_* variables, or "
        "TF_CONFIG): seconds to wait for the coordinator and the other "
        "processes",
    )
    p.add_argument(
        "--dtype",
        default=defaults.dtype,
        help="auto: mixed_bfloat16 with GPUs or TPUs, else float32",
    )
    p.add_argument(
        "--per-replica-clip",
        action="store_true",
        help="clip each micro-batch's gradient like the reference's 8 TPU "
        "replicas (use with --accumulation-steps 8); without it the averaged "
        "gradient is clipped once, which clips harder",
    )
    p.add_argument(
        "--remat",
        action="store_true",
        help="recompute each encoder block in the backward pass (less "
        "activation memory, more compute)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in --model-dir",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="offline demo: bundled data, a tiny model and vocabulary",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an error instead of one line",
    )
    return p


def config_from(args, config_class, model_dir):
    fields = {f.name for f in dataclasses.fields(config_class)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    return config_class(**{**values, "model_dir": model_dir})


def demo_conflicts(args, defaults, demo):
    """The flags given with `--demo` that it would override."""
    return [
        "--" + name.replace("_", "-")
        for name in demo.OWNS
        if getattr(args, name) != getattr(defaults, name)
    ]


def _one_line(error):
    """The message of `error` as one line (TensorFlow's input checks: the
    assertion's message, without the graph's trace)."""
    message = getattr(error, "message", None) or str(error)
    return " ".join(message.strip().splitlines()[0].split())


def main(args, defaults, config_class, make_task, demo):
    """Runs the tool; returns its exit code.

    Args:
        args: the parsed flags.
        defaults: the flags' defaults (the parser's result without flags).
        config_class: the task's `RunConfig` subclass.
        make_task: `config -> Task`.
        demo: the demo's module (`SETTINGS`, `OWNS`, `MODEL_DIR`, `BANNER`,
            `demo_task`).
    """
    import tensorflow as tf

    conflicts = demo_conflicts(args, defaults, demo) if args.demo else []
    if conflicts:
        print(
            f"error: --demo brings its own model, data and schedule; drop "
            f"{', '.join(conflicts)} or drop --demo.",
            file=sys.stderr,
        )
        return 2
    try:
        if args.demo:
            print(demo.BANNER)
            config = config_from(
                args, config_class, args.model_dir or demo.MODEL_DIR
            )
            config = dataclasses.replace(config, **demo.SETTINGS)
            task = demo.demo_task(config)
        else:
            config = config_from(
                args, config_class, args.model_dir or config_class.model_dir
            )
            task = make_task(config)
        summary = runner.run(task)
    except (*user_errors(), tf.errors.InvalidArgumentError) as error:
        if args.debug or (
            isinstance(error, tf.errors.InvalidArgumentError)
            and "assertion failed" not in str(error)
        ):
            raise
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return 1
    from keras_xlnet.training import processes

    if processes.is_chief():
        print(runner.format_summary(summary))
        if config.mode == "eval":
            print(f"Metrics are in {config.model_dir}/eval/metrics.json")
        elif config.mode == "export_only":
            print(f"The serving export is in {summary['export']}")
        else:
            print(
                f"Metrics, logs, checkpoints and the trained preset are in "
                f"{config.model_dir}"
            )
    return 0
