#!/usr/bin/env python3
"""Validation of the built-in drafts on the shadow: how many error findings get an accepted rewrite, how
drafts fare, and how long validating one takes.

Usage: python3 bench/validation.py [--corpus DIR] [--bin PATH] [--latest N] [--concurrency N,N,...]
                                   [--json] [HISTORY ...]

Runs `migagent review --format json --llm off --advise-on warning --shadow auto --no-cache --shadow-concurrency C` with
MIGAGENT_DEBUG=validation,baselines (one stderr line per validated draft and per baseline copy, with its
time) over the bundled example
(fixtures/example/migrations, every migration reviewed) and the corpus histories HISTORY (default: the
four that apply cleanly on PostgreSQL 15, see the corpus README), each reviewed as a directory with
`--latest N` (default 25): the history before them is applied untraced, the last N are reviewed, traced,
advised by the built-in fixers and their drafts validated. The binary is target/release/migagent unless
`--bin PATH` names another (e.g. target/debug/migagent).

For each target it reports:
- errors: `error` findings; covered: those whose migration got an ACCEPTED built-in rewrite that fixes
  them (the rewrite's rationale names each statement and rule it replaced: "statement 2 (line 5):
  index-not-concurrent"), and the share;
- drafts: accepted / rejected / skipped, per kind (rewrite, down);
- validation time per draft from the debug lines of the first concurrency (1 by default, so no draft
  waits for another): cold (a migration's first draft, which also applies the original migration on a
  copy of its baseline to learn the schema every draft is compared with) and warm (its later drafts),
  median and max; and the first draft of the run;
- the time of copying the database before each reviewed migration (a template the drafts are validated
  on) and of dropping a copy no draft turned out to need (MIGAGENT_DEBUG=baselines);
- wall time of the whole review per concurrency, and whether the reports are the same (the traces'
  duration_ms left out): they must be.

Exits 1 when a run fails (see shadow_replay.checked) or the reports of two concurrencies differ.
"""

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time

import shadow_replay
from shadow_replay import CLEAN_ON_PG15, Failure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "fixtures", "example", "migrations")

# "migagent debug: validated rewrite (builtin, attempt 1) of PATH in 12.3 ms (cold: …)"
TIMING = re.compile(r"^migagent debug: validated (\w+) \((\w+), attempt (\d+)\) of (.*) in ([0-9.]+) ms( \(cold)?")
# "migagent debug: kept a copy of the database before PATH in 12.3 ms", "… dropped the unneeded copy …"
BASELINE = re.compile(r"^migagent debug: (kept|dropped) .* in ([0-9.]+) ms$")
# The built-in rewrite's rationale: "statement 1 (line 1): index-not-concurrent".
FIXED = re.compile(r"statement (\d+) \(line \d+\): ([a-z0-9-]+)")


def review(binary, directory, latest, concurrency):
    """One review of `directory`; (seconds, report, debug lines)."""
    # Asked for: a run of more than 20 migrations gets no advice by default.
    args = ["--advise-on", "warning", "--shadow", "auto", "--no-cache", "--shadow-concurrency", str(concurrency)]
    if latest:
        args += ["--latest", str(latest)]
    args.append(directory)
    with tempfile.TemporaryDirectory(prefix="validation-bench-cache-") as cache_home:
        run = shadow_replay.migagent(binary, args, cache_home)
    report = shadow_replay.checked(f"migagent review --format json {' '.join(args)}", run)
    return run[0], report, run[3].splitlines()


def without_durations(value):
    if isinstance(value, dict):
        return {k: without_durations(v) for k, v in value.items() if k != "duration_ms"}
    if isinstance(value, list):
        return [without_durations(v) for v in value]
    return value


def covered_errors(report):
    """(error findings, those an accepted built-in rewrite of their migration fixes)."""
    errors = covered = 0
    for migration in report["migrations"]:
        advice = migration.get("advice") or {}
        fixed = set()
        for draft in advice.get("drafts", []):
            if (draft["kind"], draft["source"], draft["validation"]["status"]) == ("rewrite", "builtin", "accepted"):
                fixed |= {(int(n) - 1, rule) for n, rule in FIXED.findall(draft["rationale"])}
        for finding in migration["findings"]:
            if finding["severity"] == "error":
                errors += 1
                covered += (finding["statement"], finding["rule"]) in fixed
    return errors, covered


def draft_counts(report):
    counts = {}
    for migration in report["migrations"]:
        for draft in (migration.get("advice") or {}).get("drafts", []):
            key = (draft["kind"], draft["validation"]["status"])
            counts[key] = counts.get(key, 0) + 1
    return counts


def timings(lines):
    """Cold and warm validation times (ms) from the debug lines, and the first one of the run."""
    cold, warm, first = [], [], None
    for line in lines:
        match = TIMING.match(line)
        if not match:
            continue
        ms = float(match.group(5))
        first = ms if first is None else first
        (cold if match.group(6) else warm).append(ms)
    return cold, warm, first


def baseline_timings(lines):
    """The times (ms) of copying the database before a reviewed migration, and of dropping a copy no
    draft needed."""
    kept, dropped = [], []
    for line in lines:
        match = BASELINE.match(line)
        if match:
            (kept if match.group(1) == "kept" else dropped).append(float(match.group(2)))
    return kept, dropped


def measure(name, directory, binary, latest, concurrencies):
    result = {"target": name, "latest": latest, "wall": {}}
    reports = []
    for concurrency in concurrencies:
        seconds, report, lines = review(binary, directory, latest, concurrency)
        result["wall"][concurrency] = seconds
        reports.append(without_durations(report))
        if len(reports) == 1:
            result["migrations"] = len(report["migrations"])
            result["errors"], result["covered"] = covered_errors(report)
            result["drafts"] = {f"{kind} {status}": n for (kind, status), n in sorted(draft_counts(report).items())}
            result["cold"], result["warm"], result["first"] = timings(lines)
            result["kept"], result["dropped"] = baseline_timings(lines)
    result["same_reports"] = all(r == reports[0] for r in reports)
    return result


def summary(values):
    if not values:
        return "-"
    return f"{statistics.median(values):.0f} / {max(values):.0f} ms (n={len(values)})"


def print_results(results, concurrencies):
    header = "| target | reviewed | errors | covered | drafts | cold median / max | warm median / max | first | " + \
        " | ".join(f"wall c={c}" for c in concurrencies) + " |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in results:
        share = f"{r['covered']} ({100.0 * r['covered'] / r['errors']:.0f} %)" if r["errors"] else "0"
        drafts = ", ".join(f"{key}: {n}" for key, n in r["drafts"].items()) or "-"
        first = f"{r['first']:.0f} ms" if r["first"] is not None else "-"
        walls = " | ".join(f"{r['wall'][c]:.1f} s" for c in concurrencies)
        print(f"| {r['target']} | {r['migrations']} | {r['errors']} | {share} | {drafts} | {summary(r['cold'])} | "
              f"{summary(r['warm'])} | {first} | {walls} |")
    errors = sum(r["errors"] for r in results)
    covered = sum(r["covered"] for r in results)
    cold = [ms for r in results for ms in r["cold"]]
    warm = [ms for r in results for ms in r["warm"]]
    print(f"\nall: {covered} of {errors} error findings covered by an accepted built-in rewrite"
          f" ({100.0 * covered / errors:.0f} %)" if errors else "\nall: no error findings")
    print(f"all: cold {summary(cold)}, warm {summary(warm)}")
    kept = [ms for r in results for ms in r["kept"]]
    dropped = [ms for r in results for ms in r["dropped"]]
    print(f"all: copying the database before a reviewed migration {summary(kept)}; "
          f"dropping a copy no draft needed {summary(dropped)}")
    for r in results:
        if not r["same_reports"]:
            print(f"{r['target']}: the reports of concurrency {', '.join(map(str, concurrencies))} DIFFER")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("histories", nargs="*", default=CLEAN_ON_PG15, metavar="HISTORY")
    parser.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "corpus"))
    parser.add_argument("--bin", default=shadow_replay.BINARY)
    parser.add_argument("--latest", type=int, default=25)
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    os.environ["MIGAGENT_DEBUG"] = "validation,baselines"
    targets = [("fixtures/example", EXAMPLE, None)]
    for name in args.histories:
        directory = os.path.join(args.corpus, name)
        if not os.path.isdir(directory):
            print(f"history {name} is missing from the corpus at {args.corpus}", file=sys.stderr)
            return 1
        targets.append((name, directory, args.latest))
    started = time.perf_counter()
    try:
        results = [measure(name, directory, args.bin, latest, concurrencies) for name, directory, latest in targets]
    except Failure as failure:
        print(failure, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_results(results, concurrencies)
        print(f"\n{time.perf_counter() - started:.0f} s in all; load: {os.getloadavg()}")
    return 0 if all(r["same_reports"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
