"""cpu_int8: which CPUs run 8-bit INT8 weights exactly, read from /proc/cpuinfo."""

from __future__ import annotations

from edge.detect.cpu_int8 import cpu_flags, full_range_int8, int8_dot_product

X86_AVX2 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma\n\n" * 2
X86_VNNI = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n"
X86_AVX_VNNI = "processor\t: 0\nflags\t\t: fpu avx2 avx_vnni\n"
ARM_DP = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 asimddp\n"
ARM_OLD = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32\n"


def test_flags_are_read_from_x86_and_arm_lines() -> None:
    assert {"avx2", "fma"} <= cpu_flags(X86_AVX2)
    assert "asimddp" in cpu_flags(ARM_DP)
    assert cpu_flags("model name : something\n") == set()


def test_vnni_or_dot_product_means_exact_and_plain_avx2_means_saturating() -> None:
    assert int8_dot_product(X86_VNNI, "x86_64") is True
    assert int8_dot_product(X86_AVX_VNNI, "x86_64") is True
    assert int8_dot_product(X86_AVX2, "x86_64") is False
    assert int8_dot_product(ARM_DP, "aarch64") is True
    assert int8_dot_product(ARM_OLD, "aarch64") is False


def test_unknown_cpus_are_not_guessed() -> None:
    assert int8_dot_product("", "x86_64") is None
    assert int8_dot_product(X86_AVX2, "riscv64") is None
    assert isinstance(int8_dot_product(), bool | None)  # this machine, whatever it is


def test_only_8_bit_descriptions_count_as_full_range() -> None:
    assert full_range_int8("int8 qdq static, per-channel weights, percentile ranges")
    assert full_range_int8(
        "int8 qdq static, per-channel 8-bit (VNNI / ARM dot-product only) weights"
    )
    assert not full_range_int8("int8 qdq static, per-channel 7-bit weights, percentile ranges")
    assert not full_range_int8("")
