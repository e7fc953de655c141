"""What `import neuronperf; neuronperf.list_metrics()` adds to an interpreter's start.

Target: under 200 ms above a bare `python -c pass`, and no torch imported,
with every plugin of this repository installed. Both commands run alternately
in fresh interpreters (so disk cache and machine noise hit both alike); the
table shows the medians.

    python bench/startup.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

BARE = "pass"
LISTING = "import io, neuronperf; neuronperf.list_metrics(file=io.StringIO())"
CHECK = (
    "import io, json, sys, neuronperf; neuronperf.list_metrics(file=io.StringIO()); "
    "from neuronperf_core.plugins import get_host; "
    "print(json.dumps({'plugins': [p.name for p in get_host().plugins], "
    "'torch': 'torch' in sys.modules, 'numpy': 'numpy' in sys.modules}))"
)


def run_ms(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    facts = json.loads(
        subprocess.run(
            [sys.executable, "-c", CHECK], check=True, capture_output=True, text=True
        ).stdout
    )
    run_ms(BARE), run_ms(LISTING)  # warm the disk cache
    bare, listing = [], []
    for _ in range(args.rounds):
        bare.append(run_ms(BARE))
        listing.append(run_ms(LISTING))
    bare_ms, listing_ms = statistics.median(bare), statistics.median(listing)

    print(f"plugins loaded: {', '.join(facts['plugins'])}")
    print(f"torch imported: {facts['torch']}; numpy imported: {facts['numpy']}")
    print(f"{'command':<52} {'median ms':>10} {'min ms':>8}")
    print(f"{'python -c pass':<52} {bare_ms:>10.1f} {min(bare):>8.1f}")
    print(
        f"{'python -c ' + repr(LISTING)[:40] + '...':<52} {listing_ms:>10.1f} {min(listing):>8.1f}"
    )
    added = listing_ms - bare_ms
    verdict = "meets" if added < 200 and not facts["torch"] else "MISSES"
    print(
        f"added by neuronperf: {added:.1f} ms (ratio {listing_ms / bare_ms:.2f}x); "
        f"{verdict} the target of < 200 ms with no torch import"
    )


if __name__ == "__main__":
    main()
