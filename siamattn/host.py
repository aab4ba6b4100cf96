"""What the machine a figure was measured on is: benchmark JSONs, check reports and export measurements name it
the same way."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what ``platform`` knows (often only the architecture)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The CPU features that decide INT8 speed on x86 (ONNX Runtime's u8s8 kernels use VNNI dot products; AMX tiles
# where present); recorded with every INT8 figure.
INT8_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def cpu_flags(wanted: tuple[str, ...] = INT8_FLAGS) -> dict[str, bool]:
    """Which of ``wanted`` the CPU reports (Linux ``/proc/cpuinfo``; all False where it cannot be read)."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {f: f in flags for f in wanted}
