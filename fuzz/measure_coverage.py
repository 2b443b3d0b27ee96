"""Line coverage of the decision core reached by replaying the fuzz corpora (coverage.py).

    python fuzz/measure_coverage.py                    # the seed corpora, fuzz/corpus/*
    python fuzz/measure_coverage.py --work             # plus a campaign's fuzz/work/*
    python fuzz/measure_coverage.py --fail-under 90    # exit 1 if a module is below 90 %

Every input of every harness's corpus goes once through the harness's
`test_one_input`, without atheris (a stand-in module makes its instrumentation
a no-op), under coverage.py; the table lists the statements of each module of
the decision core that some input executed. A harness that raises on a corpus
input is a finding: it is printed and the exit status is 1. Lines that only
a forked child runs (winscp._run after fork) are never counted. Needs
`coverage` (the [fuzz] extra).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HARNESSES = ("words", "decide", "winscp", "serve", "svnroot")
# The modules the harnesses target, as the coverage table lists them.
MODULES = (
    "scponly_py/words.py",
    "scponly_py/decide.py",
    "scponly_py/winscp.py",
    *sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "scponly_py" / "programs").glob("*.py")
        if path.name != "__init__.py"
    ),
)


def _stand_in_atheris() -> None:
    """A module named atheris whose instrumentation does nothing (coverage.py measures instead)."""
    stand_in = types.ModuleType("atheris")
    stand_in.instrument_imports = lambda **_: contextlib.nullcontext()  # type: ignore[attr-defined]
    stand_in.Setup = lambda *_args, **_kwargs: None  # type: ignore[attr-defined]
    stand_in.Fuzz = lambda: None  # type: ignore[attr-defined]
    sys.modules["atheris"] = stand_in


def _harness(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"fuzz_{name}", HERE / f"fuzz_{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replay(directories: dict[str, list[Path]]) -> tuple[dict[str, int], list[str]]:
    """Run every input through its harness: (inputs per harness, findings)."""
    counts: dict[str, int] = {}
    findings: list[str] = []
    for name, roots in directories.items():
        harness = _harness(name)
        inputs = sorted(path for root in roots if root.is_dir() for path in root.iterdir())
        counts[name] = len(inputs)
        for path in inputs:
            try:
                harness.test_one_input(path.read_bytes())
            except Exception as error:  # noqa: BLE001 - every escape is a finding
                findings.append(f"{name}: {path}: {type(error).__name__}: {error}")
    return counts, findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", action="store_true", help="also replay fuzz/work/NAME")
    parser.add_argument("--harness", action="append", choices=HARNESSES, help="default: all")
    parser.add_argument("--missing", action="store_true", help="list the lines not reached")
    parser.add_argument("--fail-under", type=float, default=0.0, help="percent, every module")
    args = parser.parse_args(argv)
    import coverage  # noqa: PLC0415 - only this tool needs it

    sys.path[:0] = [str(HERE), str(ROOT)]
    _stand_in_atheris()
    directories = {
        name: [HERE / "corpus" / name, *([HERE / "work" / name] if args.work else [])]
        for name in args.harness or HARNESSES
    }
    measure = coverage.Coverage(
        data_file=None, include=[str(ROOT / module) for module in MODULES], branch=False
    )
    measure.start()
    try:
        counts, findings = replay(directories)
    finally:
        measure.stop()
    print("inputs: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    print(f"{'module':36} {'lines':>5} {'run':>5} {'cover':>6}")
    below = []
    for module in MODULES:
        _, statements, _, missing, text = measure.analysis2(str(ROOT / module))
        run = len(statements) - len(missing)
        percent = 100.0 * run / len(statements) if statements else 100.0
        print(f"{module:36} {len(statements):5} {run:5} {percent:5.1f}%")
        if percent < args.fail_under:
            below.append(module)
        if args.missing and missing:
            print(f"    missing: {text}")
    for finding in findings:
        print(f"finding: {finding}", file=sys.stderr)
    for module in below:
        print(f"below {args.fail_under:g} %: {module}", file=sys.stderr)
    return 1 if findings or below else 0


if __name__ == "__main__":
    sys.exit(main())
