"""The throughput table of the upload benchmarks (throughput.py, transfer_log.py)."""

from __future__ import annotations

import statistics


def print_throughput(
    times: dict[tuple[str, str], list[float]], mib: int, columns: dict[str, str]
) -> None:
    """Per protocol, the best MB/s of each of two sides and the median and range over rounds of
    their ratio (first side's MB/s / second side's) for an upload of `mib` MiB.

    `times` maps (protocol, side) to the seconds of each round, the rounds of the two sides
    made back to back; `columns` maps the two sides, in order, to their headings.
    """
    first, second = columns
    size = mib << 20
    print(
        f"{'protocol':10} {columns[first]:>12} {columns[second]:>12} {'median ratio':>13}"
        f" {'range':>14}"
    )
    for protocol in dict.fromkeys(protocol for protocol, _ in times):
        ours, theirs = times[(protocol, first)], times[(protocol, second)]
        ratios = [their / our for our, their in zip(ours, theirs, strict=True)]
        spread = f"{min(ratios):.3f}-{max(ratios):.3f}"
        print(
            f"{protocol:10} {size / min(ours) / 1e6:12.1f} {size / min(theirs) / 1e6:12.1f}"
            f" {statistics.median(ratios):13.3f} {spread:>14}"
        )
