"""The set-id filter: the kernel refuses the allowed program any set-user/group-ID mode.

`confine()` runs right before the exec of the allowed program (both exec paths:
`shell.execute` and WinSCP mode's child) and installs a seccomp-BPF filter,
inherited by the program and everything it starts and impossible to remove,
that answers EPERM to chmod/fchmod/fchmodat/fchmodat2, to a creating
open/openat/creat and to mknod/mknodat whenever the mode has S_ISUID or
S_ISGID, ENOSYS to openat2 (its mode is in a struct a filter cannot read; libc
falls back to openat) and to io_uring (whose operations bypass seccomp). A
system call of another ABI (i386 or x32 on x86_64) is refused outright. Why
seccomp and not nosuid or per-program grammars: docs/design.md, "Uploaded
files never carry set-id bits".

The program is data: `RULES` (system call -> conditions -> errno) and
`ARCHES` (numbers per architecture), assembled by `program()`. On an
architecture missing from `ARCHES` the login is refused (fail closed).
Cost: `_ctypes` (about 0.9 M instructions to load) is the only way the
standard library offers to pass a pointer to prctl; `struct` is not needed.
"""

import _ctypes
import posix
import sys

from scponly_py.outcome import Refusal

S_ISUID = 0o4000
S_ISGID = 0o2000
SET_ID = S_ISUID | S_ISGID
# Asm-generic values, the same on x86_64 and aarch64; O_TMPFILE without its O_DIRECTORY.
O_CREAT = 0o100
O_TMPFILE = 0o20000000
CREATES = O_CREAT | O_TMPFILE
EPERM = 1
ENOSYS = 38

# name -> (conditions, errno): the call fails with errno when, for every (argument index,
# mask) in conditions, the argument has a bit of mask set; no conditions: it always fails.
RULES: dict[str, tuple[tuple[tuple[int, int], ...], int]] = {
    "chmod": (((1, SET_ID),), EPERM),
    "fchmod": (((1, SET_ID),), EPERM),
    "fchmodat": (((2, SET_ID),), EPERM),
    "fchmodat2": (((2, SET_ID),), EPERM),
    "creat": (((1, SET_ID),), EPERM),
    "open": (((1, CREATES), (2, SET_ID)), EPERM),
    "openat": (((2, CREATES), (3, SET_ID)), EPERM),
    "mknod": (((1, SET_ID),), EPERM),
    "mknodat": (((2, SET_ID),), EPERM),
    "openat2": ((), ENOSYS),
    "io_uring_setup": ((), ENOSYS),
    "io_uring_enter": ((), ENOSYS),
    "io_uring_register": ((), ENOSYS),
}

GENERIC_NUMBERS = {
    "mknodat": 33, "fchmod": 52, "fchmodat": 53, "openat": 56, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "openat2": 437, "fchmodat2": 452,
}  # fmt: skip
X86_64_NUMBERS = {
    "open": 2, "creat": 85, "chmod": 90, "fchmod": 91, "mknod": 133, "openat": 257,
    "mknodat": 259, "fchmodat": 268, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "openat2": 437, "fchmodat2": 452,
}  # fmt: skip
X32_SYSCALL_BIT = 0x40000000
# uname machine -> (AUDIT_ARCH_*, lowest number of a second ABI sharing that value or 0,
# numbers). Both are 64-bit little-endian: arguments' low words at 16 + 8 * index.
ARCHES: dict[str, tuple[int, int, dict[str, int]]] = {
    "x86_64": (0xC000003E, X32_SYSCALL_BIT, X86_64_NUMBERS),
    "aarch64": (0xC00000B7, 0, GENERIC_NUMBERS),
}

# Classic BPF (linux/filter.h) and seccomp (linux/seccomp.h).
LOAD = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
RET = 0x06  # BPF_RET | BPF_K
ALLOW = 0x7FFF0000
ERRNO = 0x00050000
KILL_PROCESS = 0x80000000
NR_OFFSET = 0
ARCH_OFFSET = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_SET_NO_NEW_PRIVS = 38

Instruction = tuple[int, int, int, int]  # code, jump if true, jump if false, k


def argument_offset(index: int) -> int:
    """Offset of the low 32 bits of argument `index` in struct seccomp_data (little-endian)."""
    return 16 + 8 * index


def program(machine: str) -> list[Instruction]:
    """The filter for `machine` (a key of ARCHES) as instructions.

    Layout: a foreign audit arch is killed; on x86_64 an x32 number fails with
    EPERM; then per rule, `jeq nr` over a block that tests each condition with
    `jset` (a miss jumps to ALLOW) and returns the rule's errno; else ALLOW.
    """
    audit_arch, second_abi, numbers = ARCHES[machine]
    code: list[Instruction] = [
        (LOAD, 0, 0, ARCH_OFFSET),
        (JEQ, 1, 0, audit_arch),
        (RET, 0, 0, KILL_PROCESS),
        (LOAD, 0, 0, NR_OFFSET),
    ]
    if second_abi:
        code += [(JGE, 0, 1, second_abi), (RET, 0, 0, ERRNO | EPERM)]
    for name, (conditions, errno) in RULES.items():
        if name not in numbers:
            continue
        block: list[Instruction] = []
        for position, (index, mask) in enumerate(conditions):
            # A miss jumps over the conditions left and the RET errno, to the block's ALLOW.
            skip = 2 * (len(conditions) - position - 1) + 1
            block += [(LOAD, 0, 0, argument_offset(index)), (JSET, 0, skip, mask)]
        block.append((RET, 0, 0, ERRNO | errno))
        if conditions:
            block.append((RET, 0, 0, ALLOW))
        code.append((JEQ, 0, len(block), numbers[name]))
        code += block
    code.append((RET, 0, 0, ALLOW))
    return code


def encode(code: list[Instruction]) -> bytes:
    """struct sock_filter[] for a little-endian machine."""
    return b"".join(
        op.to_bytes(2, "little") + bytes((jt, jf)) + k.to_bytes(4, "little")
        for op, jt, jf, k in code
    )


def machine() -> str | None:
    """This interpreter's key in ARCHES, or None (also for a 32-bit interpreter on x86_64)."""
    name = posix.uname().machine
    return name if name in ARCHES and sys.maxsize > 2**32 else None


MACHINE = machine()
FILTER = encode(program(MACHINE)) if MACHINE else b""


def confine() -> None:
    """Set no_new_privs and install the filter on this process; Refusal if it cannot be.

    no_new_privs is the kernel's condition for an unprivileged filter (scponly-pyc
    has set it already; setting it again changes nothing).
    """
    if not FILTER:
        raise Refusal(
            f"no set-id filter for this architecture ({posix.uname().machine}); "
            "logins are refused until scponly-py supports it"
        )

    class Byte(_ctypes._SimpleCData):
        _type_ = "B"

    buffer = (Byte * len(FILTER)).from_buffer_copy(FILTER)
    # struct sock_fprog on LP64: unsigned short len, padding, the filter's address.
    fprog = (len(FILTER) // 8).to_bytes(8, "little") + _ctypes.addressof(buffer).to_bytes(
        8, "little"
    )
    prctl = _ctypes.dlsym(_ctypes.dlopen(None, posix.RTLD_NOW), "prctl")
    if _ctypes.call_function(prctl, (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) != 0:
        raise Refusal("cannot set no_new_privs for the set-id filter")
    if _ctypes.call_function(prctl, (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog)) != 0:
        raise Refusal("the kernel refused the set-id filter (seccomp filters unavailable?)")
