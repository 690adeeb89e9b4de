"""README's command blocks, run as written, so the README cannot drift from the code.

Every fenced ```sh block of README.md runs in order, in one bash session (``set -euo pipefail``),
in a scratch folder laid out like a fresh clone after `make demo`: `.venv` is this interpreter's
environment, `experiments/configs` is copied in (its relative paths must resolve inside the
clone), and `gdo-demo/tiny-model` is written the way `make demo` writes it -- the only thing
README's blocks take from the demo (``MODEL=gdo-demo/tiny-model`` is the documented stand-in for a
real model path such as /models/Qwen3-VL-8B-Instruct). Other blocks (```text: GPU set-up, real
training) are shown, not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M)


def test_readme_blocks_cover_the_pipeline():
    joined = "\n".join(sh_blocks(README.read_text(encoding="utf-8")))
    for command in ("ingest", "extract", "merge", "select", "build", "audit", "train", "pipeline"):
        assert f"gdo-opt {command} " in joined, command
    code = re.sub(r"#.*", "", joined)
    assert "/models/" not in code and "..." not in code  # real model paths / elisions only in comments


@pytest.mark.slow
def test_readme_blocks_run_as_written(tmp_path):
    pytest.importorskip("torch")
    from gdo_opt.descriptors.tiny_model import make_tiny_model
    from gdo_opt.subset.demo import DEMO_MAX_PIXELS

    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    shutil.copytree(ROOT / "experiments" / "configs", tmp_path / "experiments" / "configs")
    make_tiny_model(tmp_path / "gdo-demo" / "tiny-model", seed=0, max_pixels=DEMO_MAX_PIXELS)  # as `make demo`
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    script = "set -euo pipefail\n" + "\n".join(sh_blocks(README.read_text(encoding="utf-8")))
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=1500)
    assert run.returncode == 0, f"a README command failed:\n{run.stderr[-4000:]}"
    for goal in ("minloss", "diverse", "temp", "temp_plus"):
        assert (tmp_path / "outputs" / goal / "report.html").is_file()
    assert (tmp_path / "outputs" / "temp_plus" / "gdo_1x.parquet").is_file()
    assert "swift sft" in run.stdout  # the train dry runs printed their commands
    assert "Writing model shards" not in run.stderr and "FutureWarning" not in run.stderr  # quiet by default
