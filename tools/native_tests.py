#!/usr/bin/env python3
"""Build and run the native kernel tests (tests/native/, doctest).

    python tools/native_tests.py                # host, aarch64 under qemu, emulated AVX-512
    python tools/native_tests.py host           # only the host build
    python tools/native_tests.py aarch64        # only the cross build + qemu runs
    python tools/native_tests.py avx512-emu     # only the emulated AVX-512 build

The host build tests every ISA level the host CPU runs. The aarch64 build is
cross-compiled with Debian's g++-aarch64-linux-gnu (cmake/aarch64-linux-gnu.cmake)
and run under qemu-user twice: with `-cpu max` (NEON and dotprod) and with a
Cortex-A57 model (NEON without dotprod), so both NEON levels and the refusal
of an unavailable level are exercised on an x86 machine.

No emulator at hand runs AVX-512 (qemu's TCG stops at AVX2), so the third
build, on x86-64 hosts, compiles the AVX-512 kernels without AVX-512 flags
against SIMDe (Debian's libsimde-dev), which implements those intrinsics with
AVX2, and offers the avx512 level on any AVX2 CPU (CMake MCE_EMULATE_AVX512,
a test-only configuration): the same kernel tests then run scalar, avx2 and
avx512.

Builds live in the user cache (MINICPM_EDGE_CACHE, default
~/.cache/minicpm-edge) under native-tests/. The sources are mirrored there
file by file, rewriting only files whose bytes changed, so a fresh clone with
unchanged sources rebuilds nothing and an edit rebuilds only what depends on
it. tests/test_native.py drives the same functions.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APT_PACKAGES = "cmake doctest-dev g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libsimde-dev"
# Debian's cross toolchain keeps the aarch64 C library here; qemu-user loads
# the target's dynamic linker and libraries from it.
AARCH64_SYSROOT = Path(os.environ.get("MCE_AARCH64_SYSROOT", "/usr/aarch64-linux-gnu"))
# What the build needs from the repository (nothing else is mirrored).
SOURCES = ["CMakeLists.txt", "cmake", "csrc", "tests/native"]
QEMU_CPU_WITH_DOTPROD = "max"
QEMU_CPU_WITHOUT_DOTPROD = "cortex-a57"
# The host build with the AVX-512 level emulated through SIMDe.
EMULATED_AVX512 = "avx512-emu"
TARGETS = ["host", "aarch64", EMULATED_AVX512]


class MissingTool(RuntimeError):
    """A tool the native tests need is not installed."""


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float

    def tested_levels(self) -> list[str]:
        m = re.search(r"^ISA levels tested: (.*)$", self.output, re.M)
        return [s.strip() for s in m.group(1).split(",")] if m else []


def cache_root() -> Path:
    base = os.environ.get("MINICPM_EDGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "minicpm-edge")
    return Path(base) / "native-tests"


def is_x86_64_host() -> bool:
    return platform.machine() in ("x86_64", "AMD64", "amd64")


def simde_header_found() -> bool:
    roots = [os.environ.get("MCE_SIMDE_INCLUDE_DIR"), "/usr/include", "/usr/local/include"]
    return any(r and (Path(r) / "simde" / "x86" / "avx512.h").is_file() for r in roots)


def missing_tools(target: str) -> list[str]:
    """Human-readable list of what is missing for a target of TARGETS."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")
    missing = []
    if shutil.which("cmake") is None:
        missing.append("cmake")
    if shutil.which("c++") is None and shutil.which("g++") is None:
        missing.append("a host C++ compiler (g++)")
    if not Path("/usr/include/doctest/doctest.h").exists() and not os.environ.get("MCE_DOCTEST_HEADER"):
        missing.append("doctest/doctest.h (doctest-dev)")
    if target == "aarch64":
        if shutil.which("aarch64-linux-gnu-g++") is None:
            missing.append("aarch64-linux-gnu-g++ (g++-aarch64-linux-gnu)")
        if shutil.which("qemu-aarch64") is None:
            missing.append("qemu-aarch64 (qemu-user)")
        if not (AARCH64_SYSROOT / "lib").is_dir():
            missing.append(f"the aarch64 C library in {AARCH64_SYSROOT} (libc6-dev-arm64-cross)")
    if target == EMULATED_AVX512:
        if not is_x86_64_host():
            missing.append("an x86-64 host (the emulated AVX-512 kernels run on the AVX2 level's instructions)")
        if not simde_header_found():
            missing.append("simde/x86/avx512.h (libsimde-dev, or MCE_SIMDE_INCLUDE_DIR)")
    return missing


def require_tools(target: str) -> None:
    missing = missing_tools(target)
    if missing:
        raise MissingTool(
            "native tests need " + ", ".join(missing) + f"; on Debian/Ubuntu: apt-get install {APT_PACKAGES}"
        )


def mirror_sources(dst: Path) -> None:
    """Copies SOURCES into dst, touching only files whose content changed and
    removing files that no longer exist, so mtimes drive an incremental build."""
    wanted: set[Path] = set()
    for entry in SOURCES:
        src = REPO / entry
        files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
        for f in files:
            if "__pycache__" in f.parts:
                continue
            rel = f.relative_to(REPO)
            wanted.add(rel)
            out = dst / rel
            data = f.read_bytes()
            if out.exists() and out.read_bytes() == data:
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
    for entry in SOURCES:
        root = dst / entry
        if root.is_dir():
            for f in root.rglob("*"):
                if f.is_file() and f.relative_to(dst) not in wanted:
                    f.unlink()


def _run(cmd: list[str], log: Path, env: dict | None = None) -> None:
    with open(log, "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-6000:]
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")


def build(target: str, jobs: int = 2) -> Path:
    """Configures (once) and builds the native tests; returns the executable.
    Holds a lock on the cache meanwhile: runs from several checkouts share it."""
    require_tools(target)
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(root, target, jobs)


def _build_locked(root: Path, target: str, jobs: int) -> Path:
    src = root / "src"
    mirror_sources(src)
    # One build directory per target and toolchain configuration.
    config = f"{target}|{AARCH64_SYSROOT}"
    if target == EMULATED_AVX512:
        config += "|" + os.environ.get("MCE_SIMDE_INCLUDE_DIR", "")
    key = hashlib.sha256(config.encode()).hexdigest()[:8]
    bdir = root / f"build-{target}-{key}"
    bdir.mkdir(parents=True, exist_ok=True)
    if not (bdir / "CMakeCache.txt").exists():
        cmd = ["cmake", "-S", str(src), "-B", str(bdir), "-DCMAKE_BUILD_TYPE=Release", "-DMCE_BUILD_PYTHON=OFF",
               "-DMCE_BUILD_NATIVE_TESTS=ON"]
        if shutil.which("ninja"):
            cmd += ["-G", "Ninja"]
        if os.environ.get("MCE_DOCTEST_HEADER"):
            cmd.append("-DMCE_DOCTEST_HEADER=" + os.environ["MCE_DOCTEST_HEADER"])
        if target == "aarch64":
            cmd.append("-DCMAKE_TOOLCHAIN_FILE=" + str(src / "cmake" / "aarch64-linux-gnu.cmake"))
        if target == EMULATED_AVX512:
            cmd.append("-DMCE_EMULATE_AVX512=ON")
            if os.environ.get("MCE_SIMDE_INCLUDE_DIR"):
                cmd.append("-DMCE_SIMDE_INCLUDE_DIR=" + os.environ["MCE_SIMDE_INCLUDE_DIR"])
        try:
            _run(cmd, bdir / "configure.log")
        except RuntimeError:
            (bdir / "CMakeCache.txt").unlink(missing_ok=True)
            raise
    _run(["cmake", "--build", str(bdir), "--target", "mce_native_tests", "-j", str(jobs)], bdir / "build.log")
    return bdir / "mce_native_tests"


def run(exe: Path, args: list[str] = (), qemu_cpu: str | None = None, isa: str | None = None,
        timeout: float = 600) -> Run:
    """Runs the test executable (under qemu-aarch64 when qemu_cpu is given),
    with MINICPM_EDGE_ISA=isa when given."""
    cmd = [str(exe), *args]
    if qemu_cpu is not None:
        cmd = ["qemu-aarch64", "-L", str(AARCH64_SYSROOT), "-cpu", qemu_cpu, *cmd]
    env = dict(os.environ)
    env.pop("MINICPM_EDGE_ISA", None)
    if isa is not None:
        env["MINICPM_EDGE_ISA"] = isa
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=timeout, text=True)
    return Run(proc.returncode, proc.stdout, time.monotonic() - t0)


def main(argv: list[str]) -> int:
    targets = argv[1:] or ["host", "aarch64"] + ([EMULATED_AVX512] if is_x86_64_host() else [])
    ok = True
    for target in targets:
        t0 = time.monotonic()
        exe = build(target)
        print(f"[{target}] built in {time.monotonic() - t0:.0f} s: {exe}")
        cpus = [QEMU_CPU_WITH_DOTPROD, QEMU_CPU_WITHOUT_DOTPROD] if target == "aarch64" else [None]
        for cpu in cpus:
            r = run(exe, qemu_cpu=cpu)
            where = target if cpu is None else f"{target} qemu -cpu {cpu}"
            summary = [line for line in r.output.splitlines() if line.startswith(("[doctest] test cases", "ISA levels"))]
            print(f"[{where}] exit {r.returncode} in {r.seconds:.0f} s; " + "; ".join(summary))
            if r.returncode != 0:
                print(r.output[-6000:])
                ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
