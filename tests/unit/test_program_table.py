"""One program table (scponly_py/programs/__init__.py): every consumer agrees with it.

Each consumer's set of programs is compared with the table's, and shipped code
may not spell out a list of programs of its own: a program added to (or
dropped from) the table reaches validation, `decide()`, the chroot preload,
`create --profile`, the frozen build, the man pages, `explain` and the fuzz
seeds, or this file fails.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from scponly_py import policy, programs, winscp
from scponly_py.programs import PROGRAMS
from setup_chroot import cli, plan
from tests import oracles

ROOT = Path(__file__).resolve().parents[2]
PATH_KEYS = {key for record in PROGRAMS.values() for key in record["paths"]}
NAMES = set(PROGRAMS) | PATH_KEYS
SHIPPED = sorted(
    [
        *(ROOT / "scponly_py").rglob("*.py"),
        *(ROOT / "setup_chroot").rglob("*.py"),
        *(ROOT / "packaging").rglob("*.py"),
        ROOT / "packaging" / "pyinstaller" / "scponly-py.spec",
    ]
)
TABLE_FILE = ROOT / "scponly_py" / "programs" / "__init__.py"
# A grammar's own per-tool table: allowed, and compared with the program table below; and
# rssh's own vocabulary (its allow* keywords and user= access bits), a foreign program's table.
GRAMMAR_TABLES = {
    ("scponly_py/winscp.py", "TOOLS"),
    ("setup_chroot/migrate.py", "RSSH_PROGRAMS"),
    ("setup_chroot/migrate.py", "BITS"),
}


def _literal_lists(source: str) -> list[tuple[str, int, set[str]]]:
    """(assigned name or "", line, program names) of each literal collection naming >= 2."""
    found = []
    tree = ast.parse(source)
    targets = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            names = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in names:
                if isinstance(target, ast.Name) and node.value is not None:
                    targets[id(node.value)] = target.id
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [key for key in node.keys if key is not None]
        else:
            continue
        named = {
            item.value for item in items if isinstance(item, ast.Constant) and item.value in NAMES
        }
        if len(named) >= 2:
            found.append((targets.get(id(node), ""), node.lineno, named))
    return found


def test_no_shipped_module_keeps_its_own_list_of_programs() -> None:
    offenders = []
    for path in SHIPPED:
        if path == TABLE_FILE:
            continue
        relative = str(path.relative_to(ROOT))
        for name, line, named in _literal_lists(path.read_text(encoding="utf-8")):
            if (relative, name) not in GRAMMAR_TABLES:
                offenders.append(f"{relative}:{line} {sorted(named)}")
    assert offenders == [], "derive these from scponly_py.programs.PROGRAMS"


def test_the_scan_finds_lists_sets_and_dict_keys() -> None:
    source = 'A = ("sftp", "scp")\nB = {"ls": 1, "cp": 2}\nf(["rsync", "md5sum", "x"])\n'
    assert _literal_lists(source) == [
        ("A", 1, {"sftp", "scp"}),
        ("B", 2, {"ls", "cp"}),
        ("", 3, {"rsync", "md5sum"}),
    ]


def test_policy_validation_follows_the_table() -> None:
    assert tuple(PROGRAMS) == policy.PROGRAMS
    assert set(policy.BUILTIN_PATHS) == PATH_KEYS
    defaults = {name for name, record in PROGRAMS.items() if record["default"]}
    assert set(policy.BUILTIN_DEFAULTS["programs"]) == defaults  # type: ignore[arg-type]
    for key in PATH_KEYS:
        policy.normalise({"paths": {key: "/opt/x"}})
    with pytest.raises(policy.ConfigError, match="unknown program"):
        policy.normalise({"paths": {"winscp": "/opt/x"}})


def test_every_record_is_complete_and_its_module_loads() -> None:
    for name, record in PROGRAMS.items():
        assert set(record) == {"module", "words", "paths", "distros", "home", "default", "role"}
        module = programs.grammar(name)
        assert hasattr(module, "check" if record["words"] else "serve"), name
        assert getattr(module, "NAME", name) == name
        assert record["paths"] and all(path.startswith("/") for path in record["paths"].values())
        assert record["home"] in ("", "/")
        for distro, paths in record["distros"].items():
            assert distro in programs.DISTROS and set(paths) <= set(record["paths"])


def test_each_distributions_sftp_server_is_recognised() -> None:
    for distro in programs.DISTROS:
        path = programs.default_paths(distro)["sftp"]
        assert programs.identify(path, ()) == "sftp", distro


def test_grammar_tables_and_oracles_match_the_table() -> None:
    assert tuple(winscp.TOOLS) == tuple(PROGRAMS["winscp"]["paths"])
    assert tuple(PROGRAMS["hashsum"]["paths"]) == programs.HASHSUM_TOOLS
    commanded = {name for name, record in PROGRAMS.items() if record["words"]}
    assert set(oracles.PROGRAM_CHECKS) == commanded


def test_create_profiles_are_the_programs_and_their_files() -> None:
    assert set(plan.PROFILES) == set(PROGRAMS)
    spec = plan.Spec("/srv/jail", ("winscp", "hashsum"))
    assert spec.programs() == [
        *PROGRAMS["winscp"]["paths"].values(),
        *PROGRAMS["hashsum"]["paths"].values(),
    ]
    with pytest.raises(plan.PlanError, match="unknown profile 'ls'"):
        plan.Spec("/srv/jail", ("ls",)).programs()
    help_text = CliRunner().invoke(cli.create, ["--help"]).output
    listed = re.sub(r"\s+", " ", help_text)
    assert all(name in listed for name in PROGRAMS), listed


def test_frozen_build_lists_every_program_module() -> None:
    spec = ROOT / "packaging" / "pyinstaller" / "scponly-py.spec"
    analysed: list[list[str]] = []

    def analysis(*_args: object, hiddenimports: list[str], **_kwargs: object) -> object:
        analysed.append(hiddenimports)
        return type("Analysed", (), {"pure": [], "scripts": [], "binaries": [], "datas": []})()

    def anything(*_args: object, **_kwargs: object) -> None:
        return None

    namespace = {
        "SPECPATH": str(spec.parent),
        "Analysis": analysis,
        "PYZ": anything,
        "EXE": anything,
        "COLLECT": anything,
    }
    exec(compile(spec.read_text(encoding="utf-8"), str(spec), "exec"), namespace)  # noqa: S102
    modules = {record["module"] for record in PROGRAMS.values()}
    assert analysed and all(set(hidden) == modules for hidden in analysed)


def test_packaged_config_and_stage_follow_the_table() -> None:
    import sys  # noqa: PLC0415

    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import stage  # noqa: PLC0415
    finally:
        sys.path.remove(str(ROOT / "packaging"))
    for distro, settings in stage.DISTROS.items():
        assert settings["sftp_server"] == programs.default_paths(distro)["sftp"]
    assert set(stage.DISTROS) == set(programs.DISTROS)
    text = (ROOT / "packaging" / "config.toml.in").read_text(encoding="utf-8")
    listed = re.search(r"# programs = .*# (.*)", text)
    assert listed is not None and listed.group(1).split(", ") == list(PROGRAMS)
