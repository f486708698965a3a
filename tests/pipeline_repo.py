"""Build a throw-away copy of this repository (git + DVC) with tiny params, and run commands in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Tiny but real: the default pipeline shrunk to seconds (32x32 images, 30 per class, 1 epoch).
TINY = {
    "data": {"synthetic": {"images_per_class": 30, "image_size": 32}},
    "images": {"size": [32, 32]},
    "model": {"filters": [8, 16, 32], "dense_units": 16},
    "train": {"epochs": 1, "batch_size": 16},
    "register": {"model_name": "e2e-model", "floor": None},  # 1 epoch on 60 images: any score goes
}


def merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True):
    """Run with this venv's python/dvc first on PATH and no MLflow/DVC settings leaking in."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    clean["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{clean['PATH']}"
    result = subprocess.run(cmd, cwd=cwd, env=clean | (env or {}), capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def make_repo(dest: Path, overrides: dict | None = None) -> Path:
    """Copy the project's files (as in the working tree) to `dest`, apply params, git commit."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        if name.startswith(("reports/", "dvc.lock")):  # results of this checkout's runs: start clean
            continue
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), merge(TINY, overrides or {}))
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "e2e@example.com"],
                ["git", "config", "user.name", "e2e"], ["git", "add", "-A"], ["git", "commit", "-qm", "e2e"]):
        run(cmd, dest)
    return dest


def set_params(repo: Path, overrides: dict) -> None:
    params = merge(yaml.safe_load((repo / "params.yaml").read_text()), overrides)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
