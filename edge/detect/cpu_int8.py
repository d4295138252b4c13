"""Whether this CPU runs an INT8 model with full 8-bit weights correctly.

ONNX Runtime's x86 kernels multiply uint8 activations by int8 weights. With VNNI (AVX512-VNNI,
AVX-VNNI) the products are summed in 32 bits. Without it (AVX2, plain AVX-512: most
Celeron / Pentium / older Core boxes and AMD before Zen 4), an instruction sums pairs of
products into a saturating int16, and 255·127·2 overflows it: convolutions are clipped and
detections change with the box. ARM's dot-product unit sums in 32 bits. ``models quantize``
therefore writes 7-bit weights by default; a file made with ``--full-range`` is right only
where this says True, and the detector warns where it says False.
"""

from __future__ import annotations

import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
X86_DOT = {"avx512_vnni", "avx_vnni"}
ARM_DOT = {"asimddp"}


def cpu_flags(cpuinfo: str) -> set[str]:
    """Every flag listed on a ``flags`` (x86) or ``Features`` (ARM) line of ``/proc/cpuinfo``.

    Example:
        >>> sorted(cpu_flags("processor: 0\\nflags\\t: fpu avx2 avx512_vnni\\n"))
        ['avx2', 'avx512_vnni', 'fpu']
    """
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in {"flags", "features"}:
            flags.update(value.split())
    return flags


def int8_dot_product(cpuinfo: str | None = None, machine: str | None = None) -> bool | None:
    """True where 8-bit weights are exact (VNNI / ARM dot-product), False where they saturate
    (x86 without VNNI), None where it cannot be told (no ``/proc/cpuinfo``, other CPUs)."""
    arch = (machine or platform.machine()).lower()
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    flags = cpu_flags(cpuinfo)
    if not flags:
        return None
    if arch in {"x86_64", "amd64", "i686", "i386"}:
        return bool(flags & X86_DOT)
    if arch in {"aarch64", "arm64"}:
        return bool(flags & ARM_DOT)
    return None


def full_range_int8(quantized: str) -> bool:
    """Whether a ``bk_quantized`` description is of 8-bit weights (``--full-range``, or a file
    from before 7-bit weights were the default, which did not say)."""
    return bool(quantized) and "7-bit" not in quantized
