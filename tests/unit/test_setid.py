"""The set-id filter: its BPF program run as data, then installed for real in a child process."""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path

import pytest

from scponly_py import setid, shell
from scponly_py.outcome import Allow, Refusal
from tests.support import make_request

ALLOW = setid.ALLOW
DENY = setid.ERRNO | setid.EPERM
NOSYS = setid.ERRNO | setid.ENOSYS
KILL = setid.KILL_PROCESS
HEADERS = {
    "x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    "aarch64": Path("/usr/include/asm-generic/unistd.h"),
}
AT_FDCWD = -100


def decode(data: bytes) -> list[setid.Instruction]:
    """struct sock_filter[] back to (code, jt, jf, k)."""
    assert len(data) % 8 == 0
    return [
        (
            int.from_bytes(data[at : at + 2], "little"),
            data[at + 2],
            data[at + 3],
            int.from_bytes(data[at + 4 : at + 8], "little"),
        )
        for at in range(0, len(data), 8)
    ]


def run(code: list[setid.Instruction], arch: int, nr: int, args: tuple[int, ...] = ()) -> int:
    """What the kernel's classic-BPF interpreter returns for this struct seccomp_data."""
    words = {0: nr & 0xFFFFFFFF, 4: arch}
    for index, value in enumerate((*args, 0, 0, 0, 0, 0, 0)[:6]):
        words[16 + 8 * index] = value & 0xFFFFFFFF
        words[20 + 8 * index] = value >> 32
    accumulator = 0
    pc = 0
    while True:
        op, jt, jf, k = code[pc]
        pc += 1
        if op == setid.LOAD:
            accumulator = words[k]
        elif op == setid.RET:
            return k
        else:
            taken = {
                setid.JEQ: accumulator == k,
                setid.JGE: accumulator >= k,
                setid.JSET: bool(accumulator & k),
            }[op]
            pc += jt if taken else jf
        assert pc < len(code), "ran off the end of the program"


@pytest.mark.parametrize("machine", sorted(setid.ARCHES))
def test_each_rule_as_data(machine: str) -> None:
    audit_arch, second_abi, numbers = setid.ARCHES[machine]
    code = setid.program(machine)
    assert decode(setid.encode(code)) == code
    assert all(op in {setid.LOAD, setid.JEQ, setid.JGE, setid.JSET, setid.RET} for op, *_ in code)
    for name, nr in numbers.items():
        conditions, errno = setid.RULES[name]
        refused = setid.ERRNO | errno
        if not conditions:
            assert run(code, audit_arch, nr) == refused, name
            continue
        mode_index = conditions[-1][0]
        flags = {index: mask for index, mask in conditions[:-1]}
        for mode in (0o4755, 0o2755, 0o6000, 0o104755, 0o4000):
            args = [0] * 6
            for index in flags:
                args[index] = setid.O_CREAT | 1
            args[mode_index] = mode
            assert run(code, audit_arch, nr, tuple(args)) == refused, (name, oct(mode))
            for index in flags:  # no O_CREAT/O_TMPFILE: the mode is ignored by the kernel
                plain = list(args)
                plain[index] = 0o2 | 0o1000  # O_RDWR | O_TRUNC
                assert run(code, audit_arch, nr, tuple(plain)) == ALLOW, name
                plain[index] = setid.O_TMPFILE | 0o200000
                assert run(code, audit_arch, nr, tuple(plain)) == refused, name
        for mode in (0o755, 0o1777, 0o100644, 0o040755, 0o4755 << 32):
            args = [0] * 6
            for index in flags:
                args[index] = setid.O_CREAT
            args[mode_index] = mode
            assert run(code, audit_arch, nr, tuple(args)) == ALLOW, (name, oct(mode))
    for nr in (0, 1, 59, 63, 64, 80, 83, 87, 92, 93, 94, 260, 263, 316, 322):
        if nr not in numbers.values():
            assert run(code, audit_arch, nr, (0, 0o4755, 0o4755, 0o4755)) == ALLOW, nr
    for foreign in (0x40000003, 0xC00000B7 if machine == "x86_64" else 0xC000003E, 0x40000028):
        assert run(code, foreign, numbers["fchmod"], (0, 0o755)) == KILL
    if second_abi:  # x32: every number with the bit, whatever the call
        for nr in (0, 90, 91, 268, 0x3FFFFFFF + 1 + 90, 0xFFFFFFFF):
            assert run(code, audit_arch, second_abi | nr, (0, 0o755)) == DENY


@pytest.mark.parametrize("machine", sorted(setid.ARCHES))
def test_numbers_match_the_kernel_headers(machine: str) -> None:
    header = HEADERS[machine]
    if not header.exists():
        pytest.skip(f"{header} is not installed")
    defined = dict(re.findall(r"#define __NR3?2?_(\w+)\s+(\d+)", header.read_text()))
    checked = [name for name in setid.ARCHES[machine][2] if name in defined]
    assert len(checked) >= 8
    for name in checked:
        assert int(defined[name]) == setid.ARCHES[machine][2][name], name
    assert set(setid.RULES) >= set(setid.ARCHES[machine][2])


def test_an_unknown_architecture_refuses_the_login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(setid, "FILTER", b"")
    with pytest.raises(Refusal, match="no set-id filter for this architecture"):
        setid.confine()
    seen: list = []
    monkeypatch.setattr(shell.posix, "execve", lambda *args: seen.append("exec"))
    monkeypatch.setattr(shell, "refuse", lambda request, decision: seen.append(decision) or 1)
    decision = Allow(
        argv=("/bin/true",), cwd="/", env=(), path="/bin/true", program="sftp", umask=0o022
    )
    assert shell.execute(make_request("/bin/true"), decision) == shell.REFUSED
    assert seen[0].reason.startswith("no set-id filter") and "exec" not in seen


def test_machine_needs_a_64_bit_interpreter_on_a_known_architecture(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert setid.machine() == os.uname().machine  # this CI runs on a known one
    monkeypatch.setattr(setid.sys, "maxsize", 2**31 - 1)
    assert setid.machine() is None


REFUSED_PROBES = (
    "chmod 4755", "chmod 2755", "fchmod 2755", "fchmodat 6755", "open O_CREAT 4755",
    "mknod S_IFREG|4755", "fchmodat2 4755",
)  # fmt: skip
ALLOWED_PROBES = ("chmod 0755", "chmod 1777", "open O_CREAT 0644", "write", "open read, mode 4755")


def probes(path: str, fd: int) -> dict[str, int]:
    """Each set-id attempt and each ordinary call in this process: its errno (0: succeeded)."""
    directory = os.open(os.path.dirname(path), os.O_RDONLY)
    name = os.path.basename(path)
    calls = {  # the modes are the attacks under test
        "chmod 4755": lambda: os.chmod(path, 0o4755),  # noqa: S103
        "chmod 2755": lambda: os.chmod(path, 0o2755),  # noqa: S103
        "fchmod 2755": lambda: os.fchmod(fd, 0o2755),
        "fchmodat 6755": lambda: os.chmod(name, 0o6755, dir_fd=directory),  # noqa: S103
        "open O_CREAT 4755": lambda: os.open(path + ".new", os.O_CREAT | os.O_WRONLY, 0o4755),
        "mknod S_IFREG|4755": lambda: os.mknod(path + ".node", 0o100000 | 0o4755),
        "chmod 0755": lambda: os.chmod(path, 0o755),  # noqa: S103
        "chmod 1777": lambda: os.chmod(path, 0o1777),  # noqa: S103
        "open O_CREAT 0644": lambda: os.close(os.open(path + ".ok", os.O_CREAT, 0o644)),
        "write": lambda: os.write(fd, b"data"),
        "open read, mode 4755": lambda: os.close(os.open(path, os.O_RDONLY, 0o4755)),
    }
    results = {}
    for probe, call in calls.items():
        try:
            call()
            results[probe] = 0
        except OSError as error:
            results[probe] = error.errno
    return results


def raw_syscalls(path: str) -> dict[str, int]:
    """Calls libc has no wrapper for on Debian 12: each result's errno (0: it succeeded)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    encoded = path.encode()
    calls = {
        "fchmodat2 4755": (452, ctypes.c_int(AT_FDCWD), encoded, 0o4755, 0),
        "openat2": (437, ctypes.c_int(AT_FDCWD), encoded, ctypes.c_char_p(bytes(24)), 24),
        "io_uring_setup": (425, 1, ctypes.c_char_p(bytes(120))),
    }
    if os.uname().machine == "x86_64":
        calls["x32 chmod 4755"] = (setid.X32_SYSCALL_BIT | 90, encoded, 0o4755)
    results = {}
    for name, (number, *args) in calls.items():
        ctypes.set_errno(0)
        status = libc.syscall(ctypes.c_long(number), *args)
        results[name] = 0 if status >= 0 else ctypes.get_errno()
    return results


def test_the_kernel_refuses_set_id_modes_once_installed(tmp_path: Path) -> None:
    path = str(tmp_path / "program")
    Path(path).write_bytes(b"#!/bin/sh\n")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child installs the filter for good and reports every errno
        try:
            os.close(read)
            setid.confine()
            fd = os.open(path, os.O_WRONLY)
            results = probes(path, fd) | raw_syscalls(path)
            os.write(write, repr(results).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        results = eval(pipe.read().decode())  # noqa: S307 - our own child's repr of a dict
    os.waitpid(pid, 0)
    assert {name: results[name] for name in REFUSED_PROBES} == dict.fromkeys(REFUSED_PROBES, 1)
    assert results["openat2"] == results["io_uring_setup"] == 38  # ENOSYS: libc falls back
    if os.uname().machine == "x86_64":
        assert results["x32 chmod 4755"] == 1  # EPERM from the filter (the kernel says ENOSYS)
    assert {name: results[name] for name in ALLOWED_PROBES} == dict.fromkeys(ALLOWED_PROBES, 0)
    assert os.stat(path).st_mode & 0o7777 == 0o1777
    assert not os.path.exists(path + ".new") and not os.path.exists(path + ".node")
    assert Path(path).read_bytes().startswith(b"data")


@pytest.mark.parametrize(("front_filtered", "expected"), [(False, "refused"), (True, "allowed")])
def test_launch_installs_the_filter_unless_the_front_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, front_filtered: bool, expected: str
) -> None:
    """shell.launch confines the program itself, except where the front's report says the
    filter is in place already (this process has none: the exec'd probe shows which ran)."""
    target = tmp_path / "target"
    target.write_bytes(b"")
    probe = (
        "import os, sys\n"
        "try:\n"
        f"    os.chmod({str(target)!r}, 0o4755)\n"
        "    print('allowed')\n"
        "except PermissionError:\n"
        "    print('refused')\n"
    )
    monkeypatch.setattr(shell, "front_filtered", front_filtered)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            os.dup2(write, 1)
            command = (shell.sys.executable, "-I", "-c", probe)
            decision = Allow(
                argv=command, cwd=str(tmp_path), env=(), path=command[0], program="x", umask=0o022
            )
            shell.launch(decision)
        finally:
            os._exit(1)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        seen = pipe.read().decode().strip()
    os.waitpid(pid, 0)
    assert seen == expected
