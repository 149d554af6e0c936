"""Shared fixtures: the default model (downloaded once into the user cache),
the tiny random checkpoints made by tools/make_tiny_models.py, data paths."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
WIKI_TEST = DATA / "wikitext-2-raw-test.txt"
WIKI_VALID = DATA / "wikitext-2-valid.txt"


def read_raw(path: Path) -> str:
    """A text file exactly as its bytes say (CRLF kept), as llama.cpp's tools
    read it; Path.read_text would turn the WikiText files' CRLF into LF."""
    return path.read_bytes().decode("utf-8")


def _cache_dir() -> Path:
    from minicpm_edge.hub import cache_dir
    return cache_dir()


@pytest.fixture(scope="session")
def default_model() -> Path:
    from minicpm_edge.hub import default_model_path
    return default_model_path()


@pytest.fixture(scope="session")
def tiny_models() -> Path:
    """Directory with llama/, llama-tied/, minicpm/, minicpm4/, bitnet/, bitnet-packed/ HF checkpoints."""
    script = REPO / "tools" / "make_tiny_models.py"
    # Keyed by the script's content so a changed generator never reuses old files.
    digest = hashlib.sha256(script.read_bytes()).hexdigest()[:12]
    out = _cache_dir() / "test-fixtures" / f"tiny-models-{digest}"
    if not (out / "done").exists():
        subprocess.run([sys.executable, str(script), str(out)], check=True)
        (out / "done").write_text("ok")
    return out
