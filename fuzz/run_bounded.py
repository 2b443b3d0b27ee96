"""Run every atheris harness for a bounded time or number of runs; exit 1 on any finding.

    python fuzz/run_bounded.py --seconds 60            # each harness 60 s (CI)
    python fuzz/run_bounded.py --runs 20000            # each harness 20000 inputs
    python fuzz/run_bounded.py --seconds 600 --keep    # long run; keep new inputs in fuzz/work/

Each harness starts from its seed corpus (fuzz/corpus/NAME, never written to)
plus, with --keep, what earlier runs found (fuzz/work/NAME). A finding is a
non-zero exit of the harness (an oracle failure, an unexpected exception, a
timeout of one input, memory exhaustion); libFuzzer writes the input that
caused it into the artifact directory, printed on failure, for
`python fuzz/fuzz_NAME.py ARTIFACT` to reproduce.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESSES = ("words", "decide", "winscp", "serve", "svnroot")
STATS = re.compile(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/")


def run_one(name: str, args: argparse.Namespace, work: Path, artifacts: Path) -> dict[str, object]:
    corpus = work / name
    corpus.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        str(HERE / f"fuzz_{name}.py"),
        f"-dict={HERE / 'dict'}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        f"-max_len={args.max_len}",
        f"-artifact_prefix={artifacts}/{name}-",
        "-print_final_stats=1",
    ]
    if args.seconds:
        command.append(f"-max_total_time={args.seconds}")
    if args.runs:
        command.append(f"-runs={args.runs}")
    command += [str(corpus), str(HERE / "corpus" / name)]
    started = time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, errors="replace", check=False, cwd=HERE
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    matches = list(STATS.finditer(output))
    match = matches[-1] if matches else None
    found = sorted(path.name for path in artifacts.glob(f"{name}-*"))
    return {
        "name": name,
        "status": result.returncode,
        "seconds": round(elapsed, 1),
        "runs": int(match.group(1)) if match else None,
        "cov": int(match.group(2)) if match else None,
        "ft": int(match.group(3)) if match else None,
        "corpus": int(match.group(4)) if match else None,
        "artifacts": found,
        "tail": "\n".join(output.splitlines()[-40:]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=0, help="per harness (max_total_time)")
    parser.add_argument("--runs", type=int, default=0, help="inputs per harness")
    parser.add_argument("--max-len", type=int, default=4096, help="longest input (bytes)")
    parser.add_argument("--keep", action="store_true", help="keep the corpus in fuzz/work/")
    parser.add_argument("--harness", action="append", choices=HARNESSES, help="default: all")
    args = parser.parse_args(argv)
    if not args.seconds and not args.runs:
        args.seconds = 60
    try:
        import atheris  # noqa: F401, PLC0415
    except ImportError:
        print("atheris is not installed: pip install 'scponly-py[fuzz]'", file=sys.stderr)
        return 2
    artifacts = Path(tempfile.mkdtemp(prefix="scponly-py-fuzz-artifacts-"))
    scratch = None
    if args.keep:
        work = HERE / "work"
    else:
        scratch = Path(tempfile.mkdtemp(prefix="scponly-py-fuzz-"))
        work = scratch
    failed = False
    try:
        for name in args.harness or HARNESSES:
            report = run_one(name, args, work, artifacts)
            line = (
                f"{name:7} status={report['status']} runs={report['runs']} cov={report['cov']} "
                f"ft={report['ft']} corpus={report['corpus']} seconds={report['seconds']}"
            )
            print(line, flush=True)
            if report["status"] != 0 or report["artifacts"]:
                failed = True
                print(report["tail"], file=sys.stderr)
                for artifact in report["artifacts"]:
                    print(f"finding: {artifacts / artifact}", file=sys.stderr)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if not failed:
            shutil.rmtree(artifacts, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
