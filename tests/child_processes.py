"""Test scripts run as child processes side by side, bounded in time.

The runs of one comparison (a reference and its peers) start together: on
a machine with few cores, their imports and compilations overlap.
"""

import json
import subprocess
import time

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
