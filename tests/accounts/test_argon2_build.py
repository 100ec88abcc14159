"""`make install` compiles Argon2 for AVX2 where the CPU has it (Makefile ARGON2_MARCH): the
installed argon2-cffi-bindings must then be that build, not PyPI's SSE2 wheel, or Argon2id
silently takes ~60 % longer and every sign-in ~25 % more CPU. That the
build answers as Django's hasher does: tests/accounts/test_hasher_threads.py."""

from __future__ import annotations

import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import _argon2_cffi_bindings
import pytest

CPU_FLAGS = Path("/proc/cpuinfo")


def _cpu_has_avx2() -> bool:
    return CPU_FLAGS.exists() and " avx2" in CPU_FLAGS.read_text()


@pytest.mark.skipif(
    not _cpu_has_avx2() or shutil.which("cc") is None or shutil.which("objdump") is None,
    reason="the Makefile builds for AVX2 only on a CPU with AVX2 and a C compiler",
)
def test_argon2_is_the_avx2_build_on_an_avx2_cpu():
    wheel = metadata.distribution("argon2-cffi-bindings").read_text("WHEEL") or ""
    tags = [line.split(": ", 1)[1] for line in wheel.splitlines() if line.startswith("Tag: ")]
    assert tags, wheel
    assert not any("manylinux" in tag for tag in tags), f"PyPI's wheel is installed: {tags}"
    # The compiled code uses the 256-bit AVX registers (PyPI's SSE2 build has none).
    library = next(Path(_argon2_cffi_bindings.__file__).parent.glob("_ffi*.so"))
    disassembly = subprocess.run(
        ["objdump", "-d", str(library)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert disassembly.count("%ymm") > 100
