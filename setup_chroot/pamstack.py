"""The PAM stack of a service (sshd), read as data, and what its pam_env lines read.

Follows libpam's own reading (libpam/pam_handlers.c, libpam_internal/pam_line.c
in Linux-PAM): `#` starts a comment anywhere; a line ending in a backslash
continues on the next one unless it holds a comment; fields are separated by
blanks, a `[...]` group (with `\\]` inside) is one field; a leading `-` on the
type only silences a missing module. `include` and `substack` pull the lines of
the same type from another file, Debian's `@include FILE` pulls every line;
a relative name is looked up in /etc/pam.d, then /usr/lib/pam.d; nesting stops
at libpam's depth (16), so an include cycle ends as a problem, not a hang.
Nothing here runs or loads a module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

PAM_DIRS = ("/etc/pam.d", "/usr/lib/pam.d")
TYPES = ("auth", "account", "password", "session")
MAX_DEPTH = 16  # libpam's PAM_SUBSTACK_MAX_LEVEL
MAX_FILE = 1 << 20
# Linux-PAM >= 1.4.0 (commit f83fb5f2, "Change the default to not read the user
# .pam_environment file"); before that the default was 1.
USER_READENV_DEFAULT = 0
USER_ENVFILE_DEFAULT = ".pam_environment"

Reader = Callable[[str], "tuple[str, str] | None"]


@dataclass(frozen=True)
class Rule:
    """One module line of the resolved stack; `origin` is FILE:LINE."""

    type: str
    control: str
    module: str
    args: tuple[str, ...]
    origin: str


@dataclass(frozen=True)
class Stack:
    rules: tuple[Rule, ...]
    problems: tuple[str, ...]  # unreadable includes, depth exceeded, malformed lines


@dataclass(frozen=True)
class EnvRead:
    """A pam_env line of the auth (setcred) or session stack and the files it reads."""

    rule: Rule
    user_readenv: bool
    user_envfile: str  # relative to the home directory, as pam_env joins it
    readenv: bool
    envfile: str | None
    conffile: str | None


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each configuration line, comments and continuations done."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.split("\n"), 1):
        stripped = raw.rstrip(" \t\r")
        continued = stripped.endswith("\\") and "#" not in stripped
        body = (stripped[:-1] + " " if continued else raw).split("#", 1)[0]
        if not pending:
            start = number
        pending.append(body)
        if continued:
            continue
        joined = "".join(pending).strip()
        pending = []
        if joined:
            lines.append((start, joined))
    if pending and "".join(pending).strip():
        lines.append((start, "".join(pending).strip()))
    return lines


def fields(line: str) -> list[str]:
    """Split on blanks; `[a b\\]c]` is one field `[a b]c]` (`stack` unwraps arguments)."""
    found: list[str] = []
    index = 0
    while index < len(line):
        if line[index] in " \t\r\n":
            index += 1
            continue
        if line[index] == "[":
            end = index + 1
            text = []
            while end < len(line) and line[end] != "]":
                if line[end] == "\\" and line[end + 1 : end + 2] == "]":
                    end += 1
                text.append(line[end])
                end += 1
            found.append("[" + "".join(text) + "]")
            index = end + 1
            continue
        end = index
        while end < len(line) and line[end] not in " \t\r\n":
            end += 1
        found.append(line[index:end])
        index = end
    return found


def directory_reader(directories: tuple[str, ...] = PAM_DIRS) -> Reader:
    """A reader for `stack`: NAME -> (path, text) from the first directory holding it."""

    def read(name: str) -> tuple[str, str] | None:
        candidates = [name] if name.startswith("/") else [f"{d}/{name}" for d in directories]
        for path in candidates:
            try:
                with open(path, "rb") as handle:
                    return path, handle.read(MAX_FILE).decode("utf-8", "replace")
            except OSError:
                continue
        return None

    return read


def stack(service: str, read: Reader) -> Stack:
    """The service's rules in the order libpam runs them, includes expanded."""
    rules: list[Rule] = []
    problems: list[str] = []

    def load(name: str, wanted: str | None, depth: int, via: str) -> None:
        if depth >= MAX_DEPTH:
            problems.append(f"{via}: include depth {MAX_DEPTH} reached at {name} (a cycle?)")
            return
        found = read(name)
        if found is None:
            problems.append(f"{via}: cannot read {name}")
            return
        path, text = found
        for number, line in logical_lines(text):
            origin = f"{path}:{number}"
            words = fields(line)
            if words[0] == "@include":
                if len(words) < 2:
                    problems.append(f"{origin}: @include without a file")
                else:
                    load(words[1], wanted, depth + 1, origin)
                continue
            kind = words[0].lstrip("-").lower()
            if kind not in TYPES or len(words) < 3:
                problems.append(f"{origin}: not a PAM rule: {line!r}")
                continue
            if wanted is not None and kind != wanted:
                continue
            control = words[1]
            if control.lower() in ("include", "substack"):
                load(words[2], kind, depth + 1, origin)
                continue
            args = tuple(word[1:-1] if word.startswith("[") else word for word in words[3:])
            rules.append(Rule(kind, control, words[2], args, origin))

    load(service, None, 0, service)
    return Stack(tuple(rules), tuple(problems))


def _atoi(text: str) -> int:
    """C atoi: optional blanks and sign, then leading digits; anything else is 0."""
    text = text.lstrip(" \t\n\r\f\v")
    sign = -1 if text[:1] == "-" else 1
    text = text[1:] if text[:1] in "+-" else text
    digits = len(text) - len(text.lstrip("0123456789"))
    return sign * int(text[:digits]) if digits else 0


def env_reads(rules: tuple[Rule, ...] | list[Rule]) -> list[EnvRead]:
    """Every pam_env.so rule sshd runs (auth: pam_setcred; session: open) with its options.

    Options are read as pam_env's _pam_parse does: the last one wins, numbers
    with atoi, an empty `user_envfile=`/`envfile=`/`conffile=` is ignored.
    """
    found = []
    for rule in rules:
        if rule.type not in ("auth", "session") or os.path.basename(rule.module) != "pam_env.so":
            continue
        user_readenv, readenv = USER_READENV_DEFAULT, 1
        user_envfile, envfile, conffile = USER_ENVFILE_DEFAULT, None, None
        for arg in rule.args:
            key, equals, value = arg.partition("=")
            if not equals:
                continue
            if key == "user_readenv":
                user_readenv = _atoi(value)
            elif key == "readenv":
                readenv = _atoi(value)
            elif key == "user_envfile" and value:
                user_envfile = value
            elif key == "envfile" and value:
                envfile = value
            elif key == "conffile" and value:
                conffile = value
        found.append(
            EnvRead(rule, bool(user_readenv), user_envfile, bool(readenv), envfile, conffile)
        )
    return found


def modules(rules: tuple[Rule, ...] | list[Rule], kind: str, name: str) -> list[Rule]:
    """The rules of type `kind` loading module `name` (by file name, any directory)."""
    return [rule for rule in rules if rule.type == kind and os.path.basename(rule.module) == name]
