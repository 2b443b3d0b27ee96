"""The attack corpus: known attacks on restricted shells, as data, with the policies they run under.

Each `tests/attacks/*.toml` file holds `[[attack]]` entries:

    [[attack]]
    id = "scp-S-hidden-in-cluster"            # unique across the corpus
    command = "scp -vS/tmp/evil -t /in"       # the SSH command string (TOML escapes allowed)
    policy = "all"                            # a name from POLICIES below
    source = "scponly 4.2 changelog; CVE-2005-4533"
    expect = "option -S"                      # substring of the refusal reason, or "refuse"
    program = "scp"                           # what it targets (for counting), or "shell"

Optional keys:
- `command_hex` instead of `command`: raw bytes in hex, decoded as the login
  shell decodes its arguments (UTF-8 with surrogateescape), for names that
  are not UTF-8;
- `repeat = { text = "a", count = 20000 }`: every `@REPEAT@` in the command is
  replaced by `text * count` (very long inputs without a huge file);
- `uid`: the requesting uid (default 1000; 0 tests the root refusal);
- `note`: what the attack would do if it were allowed.

`@MARKER@` in a command stands for a file the attack would create if it ran
(`load(marker=...)`); the end-to-end runner passes a real path and checks
that it never appears. Every entry must be refused by `decide()` under its
policy (tests/unit/test_attacks.py) and, where it can be sent over SSH
(`Attack.transmittable`), by the real login shell behind sshd.

Use from other tests:

    from tests.attacks.corpus import load, policy, config_toml
    for attack in load(marker="/tmp/pwned"):
        decision = decide(request(attack.command), policy(attack.policy))
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from scponly_py import policy as policies

HERE = Path(__file__).parent
DEFAULT_MARKER = "/tmp/scponly-py-attack-marker"
# Commands longer than this cannot be sent as one `ssh host CMD` argument (ARG_MAX per string).
MAX_TRANSMITTABLE = 100_000

_ALL = [name for name in policies.PROGRAMS]
_SVN = {"svn_root": "/srv/svn"} if "svn_root" in policies.SETTING_CHECKS else {}

# Named policies, as the raw config data of /etc/scponly-py/config.toml.
POLICIES: dict[str, dict[str, object]] = {
    # Built-in defaults: sftp + scp, read-write.
    "default": {},
    "sftp-only": {"defaults": {"programs": ["sftp"]}},
    "scp-only": {"defaults": {"programs": ["scp"]}},
    # Every program the config knows, so that refusals come from the grammars.
    "all": {"defaults": {"programs": _ALL, **_SVN}},
    "read-only": {"defaults": {"programs": _ALL, "access": "read-only", **_SVN}},
    "write-only": {"defaults": {"programs": _ALL, "access": "write-only", **_SVN}},
    "no-links": {"defaults": {"programs": _ALL, "links": False, **_SVN}},
    "winscp": {"defaults": {"programs": ["winscp", "scp", "sftp"]}},
    # Every program with the optional settings set (start_dir, umask, svn tunnel user).
    "tuned": {
        "defaults": {
            "programs": _ALL,
            "start_dir": "in",
            "umask": "0077",
            **({"svn_root": "/srv/svn", "svn_tunnel_user": True} if _SVN else {}),
        }
    },
}


@dataclass(frozen=True)
class Attack:
    id: str
    command: str
    policy: str
    source: str
    expect: str
    program: str
    uid: int = 1000
    note: str = ""
    file: str = ""

    @property
    def transmittable(self) -> bool:
        """True if `ssh host CMD` can deliver the command unchanged (no NUL, not too long).

        An empty command is not: ssh then asks for an interactive session instead.
        """
        return (
            self.command != ""
            and "\x00" not in self.command
            and len(self.command.encode("utf-8", "surrogateescape")) < MAX_TRANSMITTABLE
        )


def policy(name: str, user: str = "alice", groups: tuple[str, ...] = ()) -> policies.Policy:
    """The effective Policy of a named policy (validated like a real config file)."""
    return policies.effective_policy(policies.normalise(POLICIES[name]), user, groups)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(value)


def config_toml(name: str) -> str:
    """The config.toml text for a named policy (for the end-to-end runner)."""
    lines = []
    for section, table in POLICIES[name].items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]  # type: ignore[attr-defined]
        lines.append("")
    return "\n".join(lines)


def _command(entry: dict[str, object], marker: str) -> str:
    if "command_hex" in entry:
        raw = bytes.fromhex(str(entry["command_hex"]))
        command = raw.decode("utf-8", "surrogateescape")
    else:
        command = str(entry["command"])
    repeat = entry.get("repeat")
    if isinstance(repeat, dict):
        command = command.replace("@REPEAT@", str(repeat["text"]) * int(repeat["count"]))
    return command.replace("@MARKER@", marker)


REQUIRED = ("id", "policy", "source", "expect", "program")
KNOWN = frozenset({*REQUIRED, "command", "command_hex", "repeat", "uid", "note"})


def load(marker: str = DEFAULT_MARKER, directory: Path = HERE) -> list[Attack]:
    """Every attack in `directory/*.toml`, in file and entry order; checks the entries' shape."""
    attacks: list[Attack] = []
    seen: set[str] = set()
    for path in sorted(directory.glob("*.toml")):
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        for entry in data.get("attack", []):
            missing = [key for key in REQUIRED if key not in entry]
            unknown = sorted(set(entry) - KNOWN)
            if missing or unknown or ("command" in entry) == ("command_hex" in entry):
                raise ValueError(f"{path.name}: bad entry {entry.get('id')!r}: {missing} {unknown}")
            if entry["id"] in seen:
                raise ValueError(f"{path.name}: duplicate id {entry['id']!r}")
            if entry["policy"] not in POLICIES:
                raise ValueError(f"{path.name}: {entry['id']}: unknown policy {entry['policy']!r}")
            seen.add(entry["id"])
            attacks.append(
                Attack(
                    id=entry["id"],
                    command=_command(entry, marker),
                    policy=entry["policy"],
                    source=entry["source"],
                    expect=entry["expect"],
                    program=entry["program"],
                    uid=int(entry.get("uid", 1000)),
                    note=entry.get("note", ""),
                    file=path.name,
                )
            )
    return attacks
