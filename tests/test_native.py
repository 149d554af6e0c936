"""Native kernel tests (tests/native/, doctest): every SIMD level against the
scalar level and a double-precision oracle. Built for the host (every level
this CPU runs) and cross-compiled for aarch64, run under qemu-user with
`-cpu max` (NEON and dotprod) and with a Cortex-A57 (NEON only, so the
dotprod level must be refused). On x86-64 a third build runs the AVX-512
kernels emulated through SIMDe (a test-only configuration, see
tools/native_tests.py), so scalar, avx2 and avx512 are all tested on CPUs
without AVX-512. tools/native_tests.py does the building; its build
directories live in the user cache and are rebuilt incrementally, so only the
first run pays for a full build (a few minutes on 2 cores).

Needs Debian's doctest-dev, g++-aarch64-linux-gnu, qemu-user and
libsimde-dev; without them these tests fail and say what to install."""
from __future__ import annotations

import importlib.util
import platform
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("native_tests", REPO / "tools" / "native_tests.py")
native = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = native  # dataclasses look their module up there
_spec.loader.exec_module(native)

pytestmark = pytest.mark.slow

NEON_ONLY = ["scalar", "neon"]
NEON_DOTPROD = ["scalar", "neon", "neon_dotprod"]


def _build(target: str) -> Path:
    try:
        return native.build(target)
    except native.MissingTool as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def host_exe() -> Path:
    return _build("host")


@pytest.fixture(scope="module")
def aarch64_exe() -> Path:
    return _build("aarch64")


@pytest.fixture(scope="module")
def emulated_avx512_exe() -> Path:
    return _build(native.EMULATED_AVX512)


def _report(exe: Path, **kw) -> tuple[int, dict[str, str]]:
    r = native.run(exe, ["--isa-report"], **kw)
    fields = dict(re.findall(r"^([a-zA-Z ]+): (.*)$", r.output, re.M))
    return r.returncode, fields


def _levels(text: str) -> list[str]:
    return [s.strip() for s in text.split(",")]


def _host_levels_from_cpuinfo() -> list[str]:
    """The levels this x86 host should offer, read from the kernel's view of
    the CPU (/proc/cpuinfo), independently of the runtime's own detection."""
    flags: set[str] = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    levels = ["scalar"]
    if {"avx2", "fma", "f16c"} <= flags:
        levels.append("avx2")
        if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"} <= flags:
            levels.append("avx512")
    return levels


def _check_passed(run: native.Run, levels: list[str]) -> None:
    assert run.returncode == 0, run.output[-6000:]
    assert "[doctest] Status: SUCCESS!" in run.output, run.output[-6000:]
    assert run.tested_levels() == levels, run.output[-2000:]


def test_host_levels(host_exe):
    rc, fields = _report(host_exe)
    assert rc == 0, fields
    supported = _levels(fields["supported ISA levels"])
    if platform.machine() in ("x86_64", "AMD64"):
        assert supported == _host_levels_from_cpuinfo()
    assert fields["chosen ISA level"] == supported[-1]
    _check_passed(native.run(host_exe), supported)


@pytest.mark.parametrize("cpu, levels", [(native.QEMU_CPU_WITH_DOTPROD, NEON_DOTPROD),
                                         (native.QEMU_CPU_WITHOUT_DOTPROD, NEON_ONLY)])
def test_aarch64_under_qemu(aarch64_exe, cpu, levels):
    rc, fields = _report(aarch64_exe, qemu_cpu=cpu)
    assert rc == 0, fields
    assert _levels(fields["supported ISA levels"]) == levels
    assert fields["chosen ISA level"] == levels[-1]
    _check_passed(native.run(aarch64_exe, qemu_cpu=cpu), levels)


def test_aarch64_forced_levels(aarch64_exe):
    rc, fields = _report(aarch64_exe, qemu_cpu=native.QEMU_CPU_WITH_DOTPROD, isa="neon")
    assert rc == 0 and fields["chosen ISA level"] == "neon", fields
    rc, fields = _report(aarch64_exe, qemu_cpu=native.QEMU_CPU_WITH_DOTPROD, isa="scalar")
    assert rc == 0 and fields["chosen ISA level"] == "scalar", fields
    # A level the CPU lacks, or one of another architecture, is refused with
    # a sentence naming it and what is available.
    rc, fields = _report(aarch64_exe, qemu_cpu=native.QEMU_CPU_WITHOUT_DOTPROD, isa="neon_dotprod")
    assert rc == 2
    assert fields["error"] == ("MINICPM_EDGE_ISA=neon_dotprod is not available on this CPU "
                               "(supported: scalar, neon)")
    rc, fields = _report(aarch64_exe, qemu_cpu=native.QEMU_CPU_WITH_DOTPROD, isa="avx2")
    assert rc == 2 and "MINICPM_EDGE_ISA=avx2 is not available" in fields["error"], fields


@pytest.mark.skipif(not native.is_x86_64_host(), reason="the AVX-512 kernels are x86-64 code")
def test_emulated_avx512(emulated_avx512_exe):
    # Emulated, the level needs only what the AVX2 level needs; every kernel
    # test must then run it next to scalar and avx2.
    levels = _host_levels_from_cpuinfo()[:2]
    if levels == ["scalar", "avx2"]:
        levels.append("avx512")
    rc, fields = _report(emulated_avx512_exe)
    assert rc == 0, fields
    assert fields["emulated ISA levels"] == "avx512"
    assert _levels(fields["supported ISA levels"]) == levels
    assert fields["chosen ISA level"] == levels[-1]
    rc, fields = _report(emulated_avx512_exe, isa="avx2")
    assert rc == 0 and fields["chosen ISA level"] == "avx2", fields
    run = native.run(emulated_avx512_exe)
    _check_passed(run, levels)
    # The emulation's own check of the intrinsics it adds is part of the run.
    listed = native.run(emulated_avx512_exe, ["--list-test-cases"]).output
    assert "emulated AVX-512: masked loads and stores touch only the masked lanes" in listed
