"""The frozen shells' bootloader is built from source: PIE with the distribution's hardening.

packaging/build-frozen.sh compiles PyInstaller's bootloader (the ELF part of scponly-py and
scponly-pyc, their program archive appended after it) with `dpkg-buildflags` hardening=+all
and -fPIE/-pie. Read from the built tree, not from the flags: each is a position-independent
executable (ET_DYN with DF_1_PIE), its relocations are read-only after start-up (GNU_RELRO and
BIND_NOW), its stack is not executable, and it calls the stack protector's and
_FORTIFY_SOURCE's checking functions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

pytestmark = pytest.mark.root

DF_BIND_NOW = 0x8
DF_1_NOW = 0x1
DF_1_PIE = 0x08000000
PF_X = 0x1


@pytest.mark.parametrize("name", ["scponly-py", "scponly-pyc"])
def test_bootloader_is_hardened_pie(frozen_tree: Path, name: str) -> None:
    with (frozen_tree / name).open("rb") as file:
        elf = ELFFile(file)
        assert elf.header.e_type == "ET_DYN"
        dynamic = next(s for s in elf.iter_sections() if isinstance(s, DynamicSection))
        tags = {tag.entry.d_tag: tag.entry.d_val for tag in dynamic.iter_tags()}
        assert tags.get("DT_FLAGS_1", 0) & DF_1_PIE
        assert tags.get("DT_FLAGS", 0) & DF_BIND_NOW or tags.get("DT_FLAGS_1", 0) & DF_1_NOW
        segments = {segment.header.p_type: segment.header for segment in elf.iter_segments()}
        assert "PT_GNU_RELRO" in segments
        assert not segments["PT_GNU_STACK"].p_flags & PF_X
        imported = {symbol.name for symbol in elf.get_section_by_name(".dynsym").iter_symbols()}
    assert "__stack_chk_fail" in imported
    assert any(symbol.endswith("_chk") and symbol != "__stack_chk_fail" for symbol in imported)
