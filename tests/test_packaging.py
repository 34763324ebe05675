"""The wheel ships the preset registry."""

import subprocess
import sys

from conftest import REPO_ROOT
from conftest import jax_only


def test_wheel_lists_both_presets(tmp_path):
    jax_only()
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation"]
        + ["--outdir", str(tmp_path / "dist"), str(REPO_ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = (tmp_path / "dist").glob("keras_hub_xlnet-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        + ["--target", str(site), str(wheel)],
        check=True,
        timeout=600,
    )
    # Import the installed wheel, not the source tree.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import keras_xlnet; print(keras_xlnet.__file__); "
            "print(sorted(keras_xlnet.XLNetBackbone.presets))",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "KERAS_BACKEND": "jax", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    location, presets = result.stdout.strip().splitlines()[-2:]
    assert location.startswith(str(site))
    assert presets == "['xlnet_base_cased', 'xlnet_large_cased']"
