"""Test scripts run as child processes side by side, bounded in time.

The runs of one comparison (a reference and its peers) start together: on
a machine with few cores, their imports and compilations overlap.
"""

import json
import os
import socket
import subprocess
import time

import keras

# Seconds a test waits for its child processes before killing them.
DEADLINE = 600


def start(command, env=None):
    """A running `command`, its output captured as text."""
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(procs, deadline=DEADLINE):
    """Waits for every process, killing all that run past `deadline`
    seconds; returns `(returncode, stdout, stderr)` of each."""
    end = time.monotonic() + deadline
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1, end - time.monotonic()))
            outputs.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return outputs


def results(outputs):
    """The `RESULT {...}` line of each successful output, parsed."""
    found = []
    for returncode, out, err in outputs:
        assert returncode == 0, err[-3000:]
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        found.append(json.loads(line.removeprefix("RESULT ")))
    return found


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_env(devices=1, index=None, count=None, port=None):
    """The environment of process `index` of `count` (none: alone)."""
    env = dict(
        os.environ,
        KERAS_BACKEND=keras.config.backend(),
        JAX_PLATFORMS="cpu",
        CUDA_VISIBLE_DEVICES="",
        XLA_FLAGS=os.environ.get("XLA_FLAGS", "")
        + f" --xla_force_host_platform_device_count={devices}",
    )
    for name in [n for n in env if n.startswith("KERAS_DISTRIBUTION_")]:
        del env[name]
    env.pop("TF_CONFIG", None)
    if count and keras.config.backend() == "jax":
        env.update(
            KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
            KERAS_DISTRIBUTION_NUM_PROCESSES=str(count),
            KERAS_DISTRIBUTION_PROCESS_ID=str(index),
        )
    elif count:
        workers = [f"127.0.0.1:{port + i}" for i in range(count)]
        env["TF_CONFIG"] = json.dumps(
            {
                "cluster": {"worker": workers},
                "task": {"type": "worker", "index": index},
            }
        )
    return env


def free_ports(count):
    """A first port of `count` consecutive free ones."""
    for _ in range(100):
        port = free_port()
        if port + count < 65536 and all(
            _is_free(port + i) for i in range(1, count)
        ):
            return port
    raise RuntimeError(f"No {count} consecutive free ports.")


def _is_free(port):
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_all(command, count):
    """`count` processes of `command` (one without the variables)."""
    if count == 1:
        envs = [process_env()]
    else:
        port = free_ports(count)
        envs = [process_env(1, i, count, port) for i in range(count)]
    return [start(command, env) for env in envs]
