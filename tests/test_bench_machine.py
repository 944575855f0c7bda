"""The machine record every benchmark writes: CPU name and torch's instruction set included."""

from __future__ import annotations

from pathlib import Path

from reprogram_bench.machine import cpu_capability, cpu_model, describe, machine


def test_cpu_model_reads_the_model_name_line(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: Acme\nmodel name\t: Acme Turbo 9000 @ 3GHz\n")
    assert cpu_model(info) == "Acme Turbo 9000 @ 3GHz"


def test_cpu_model_falls_back_without_cpuinfo(tmp_path: Path) -> None:
    name = cpu_model(tmp_path / "absent")
    assert isinstance(name, str) and name  # platform's answer, never an exception


def test_machine_names_cpu_and_capability() -> None:
    mach = machine()
    for key in ("platform", "cpu_model", "cpu_capability", "cpu_count", "torch", "torch_threads"):
        assert mach[key] not in (None, ""), key
    assert mach["cpu_capability"] == cpu_capability()
    line = describe(mach)
    assert mach["cpu_capability"] in line and f"{mach['cpu_count']} CPUs" in line


def test_describe_leaves_out_fields_old_records_lack() -> None:
    old = {"processor": "x86_64", "cpu_count": 2, "torch": "2.14.1"}
    assert describe(old) == "x86_64, 2 CPUs, torch 2.14.1"
    new = {**old, "cpu_model": "AMD EPYC", "cpu_capability": "AVX512"}
    assert describe(new) == "x86_64 (AMD EPYC, AVX512), 2 CPUs, torch 2.14.1"
