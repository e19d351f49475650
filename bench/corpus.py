#!/usr/bin/env python3
"""Static review of every migration history in a corpus, timed, next to squawk on the same files.

Usage: python3 bench/corpus.py [CORPUS_DIR] [--runs N] [--diff RULE] [--bin PATH] [--save DIR] [--compare DIR]

CORPUS_DIR defaults to ../shared/corpus (real migration histories of public projects). For each history
it runs the release binary's `migagent review --format json` on the whole migrations directory and
reports files/s, MB/s, parse coverage (statements sqlparser parses; and with the fallback
classification), findings per rule, and checks that no locking finding names a table created earlier
in the same migration. When `squawk` is on PATH (`pip install squawk-cli`) it is run on exactly the
files migagent reviewed, in the same process, for a throughput comparison. Exits non-zero when a run
crashes, hangs (60 s per history) or reports an input problem.

Peak resident memory is reported for both tools (the largest of any one process). `--bin PATH` reviews
with that binary instead of building and using the release one. `--save DIR` writes each history's JSON
report there; `--compare DIR` then fails when a report's findings differ from the saved ones (for
checking that a change kept every finding of the corpus).

With `--diff RULE` it runs each tool once and lists, file by file, where migagent's RULE and squawk's
closest rule(s) disagree: the lines each side reports (1-based), for checking differences by hand.
"""

import collections
import json
import os
import re
import shutil
import subprocess
import sys
import time

import measure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "migagent")

# (directory inside the corpus, --tool override or None for auto-detection)
HISTORIES = [
    ("documenso__documenso", None),
    ("MarquezProject__marquez", None),
    ("ente-io__ente", None),
    ("Dokploy__dokploy", None),
    ("LemmyNet__lemmy", None),
    ("UPchieve__subway/migrations", None),
    ("UPchieve__subway/seed-updates", "dbmate"),
    ("tutur3u__platform", "supabase"),
]

LOCKING_CATEGORIES = {"locking"}

# migagent rule -> squawk's closest rule(s), for the side-by-side counts.
SQUAWK_CLOSEST = {
    "index-not-concurrent": ["require-concurrent-index-creation"],
    "drop-index-not-concurrent": ["require-concurrent-index-deletion"],
    "reindex-not-concurrent": ["require-concurrent-reindex"],
    "add-check-without-not-valid": ["constraint-missing-not-valid"],
    "add-foreign-key-without-not-valid": ["adding-foreign-key-constraint"],
    "set-not-null": ["adding-not-nullable-field"],
    "add-column-not-null-without-default": ["adding-required-field"],
    "add-column-rewrites-table": ["adding-field-with-default", "adding-serial-primary-key-field"],
    "add-unique-constraint": ["disallowed-unique-constraint"],
    "add-primary-key": ["adding-serial-primary-key-field"],
    "column-type-change-rewrites": ["changing-column-type"],
    "missing-lock-timeout": ["require-lock-timeout", "require-timeout-settings"],
    "missing-statement-timeout": ["require-statement-timeout"],
    "drop-table": ["ban-drop-table"],
    "drop-column": ["ban-drop-column"],
    "drop-schema": ["ban-drop-schema"],
    "drop-database": ["ban-drop-database"],
    "drop-sequence": ["ban-drop-sequence"],
    "truncate-table": ["ban-truncate-cascade"],
    "rename-column": ["renaming-column"],
    "rename-table": ["renaming-table"],
    "nested-transaction": ["transaction-nesting"],
    "prefer-bigint": ["prefer-bigint-over-int", "prefer-bigint-over-smallint"],
    "prefer-identity": ["prefer-identity"],
    "prefer-timestamptz": ["prefer-timestamp-tz"],
    "prefer-text": ["prefer-text-field"],
    "ban-char-type": ["ban-char-field"],
    "identifier-too-long": ["identifier-too-long"],
    "unparsed-statement": ["syntax-error"],
}
CREATE_TABLE = re.compile(
    r'^\s*CREATE\s+(?:UNLOGGED\s+|TEMP(?:ORARY)?\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w."]+)',
    re.IGNORECASE,
)


def table_key(name):
    """`public."User"` and `"User"` both become `User`; unquoted names fold to lower case."""
    last = name.split(".")[-1]
    return last.strip('"') if last.startswith('"') else last.lower()


def run_migagent(binary, path, tool):
    """The JSON report, wall time, CPU time and peak RSS of one review of a history."""
    command = [binary, "review", "--format", "json", "--fail-on", "never", "--shadow", "off", "--llm", "off", path]
    if tool:
        command[2:2] = ["--tool", tool]
    completed = measure.run(command, 60)
    if completed is None:
        raise SystemExit(f"migagent still running after 60 s on {path}")
    if completed.code not in (0, 1):
        sys.stderr.write(completed.stderr.decode(errors="replace"))
        raise SystemExit(f"migagent exited {completed.code} on {path}")
    return json.loads(completed.stdout), completed.seconds, completed.cpu_seconds, completed.peak_bytes


def findings_of(report):
    """Every finding of a report, as printed fields, in report order."""
    return [(m["path"], f) for m in report["migrations"] for f in m["findings"]]


def compare_saved(directory, name, report):
    """Differences between this report's findings and the ones saved under `directory`."""
    saved_path = os.path.join(directory, saved_name(name))
    with open(saved_path) as f:
        saved = json.load(f)
    ours, theirs = findings_of(report), findings_of(saved)
    if ours == theirs:
        return []
    differences = [f"{name}: {len(ours)} findings, {len(theirs)} saved in {saved_path}"]
    for mine, old in zip(ours, theirs):
        if mine != old:
            differences.append(f"  first difference: {mine} != saved {old}")
            break
    return differences


def saved_name(name):
    return name.replace("/", "__") + ".json"


def new_table_violations(report):
    """Locking findings on a table created by an earlier statement of the same migration."""
    violations = []
    for migration in report["migrations"]:
        created_before = {}
        for statement in migration["statements"]:
            match = CREATE_TABLE.match(statement["sql"])
            if match:
                created_before.setdefault(table_key(match.group(1)), statement["index"])
        for finding in migration["findings"]:
            if finding["category"] not in LOCKING_CATEGORIES or not finding["table"]:
                continue
            created = created_before.get(table_key(finding["table"]))
            if created is not None and created < finding["statement"]:
                violations.append((migration["path"], finding["line"], finding["rule"], finding["table"]))
    return violations


def run_squawk(squawk, files):
    """squawk's violations on these files, as (file, 1-based line, rule) triples, its CPU time and its
    largest peak RSS."""
    violations, cpu, peak = [], 0.0, 0
    # Split into chunks to stay under the argument-length limit.
    for at in range(0, len(files), 500):
        completed = measure.run([squawk, "--reporter", "json", *files[at : at + 500]], 300)
        if completed is None:
            raise SystemExit("squawk still running after 300 s")
        peak = max(peak, completed.peak_bytes)
        cpu += completed.cpu_seconds
        for violation in json.loads(completed.stdout or b"[]"):
            # squawk numbers lines from 0.
            violations.append((violation["file"], violation["line"] + 1, violation["rule_name"]))
    return violations, cpu, peak


def print_diff(rule, findings, squawk_violations):
    """Files where migagent's `rule` and squawk's closest rules fire a different number of times, with
    the lines each reports (they may point at different lines of the same statement)."""
    closest = SQUAWK_CLOSEST.get(rule, [])
    ours, theirs = collections.defaultdict(list), collections.defaultdict(list)
    for path, line, name in findings:
        if name == rule:
            ours[os.path.normpath(path)].append(line)
    for path, line, name in squawk_violations:
        if name in closest:
            theirs[os.path.normpath(path)].append(line)
    differing = sorted(path for path in ours.keys() | theirs.keys() if len(ours[path]) != len(theirs[path]))
    print(f"{rule} ({sum(map(len, ours.values()))}) vs {' + '.join(closest) or '(none)'} "
          f"({sum(map(len, theirs.values()))}): {len(differing)} files differ")
    for path in differing:
        print(f"  {path}")
        print(f"    migagent lines: {' '.join(map(str, sorted(ours[path]))) or '-'}")
        print(f"    squawk lines:   {' '.join(map(str, sorted(theirs[path]))) or '-'}")


def main():
    args = sys.argv[1:]
    runs = 3
    if "--runs" in args:
        at = args.index("--runs")
        runs = int(args[at + 1])
        del args[at : at + 2]
    diff_rule = None
    if "--diff" in args:
        at = args.index("--diff")
        diff_rule = args[at + 1]
        del args[at : at + 2]
        runs = 1
    options = {}
    for option in ("--bin", "--save", "--compare"):
        if option in args:
            at = args.index(option)
            options[option] = args[at + 1]
            del args[at : at + 2]
    corpus = args[0] if args else os.path.join(ROOT, "..", "shared", "corpus")
    if not os.path.isdir(corpus):
        raise SystemExit(f"no corpus at {corpus}")
    binary = options.get("--bin")
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        binary = BINARY
    if "--save" in options:
        os.makedirs(options["--save"], exist_ok=True)
    differences, peak, best_cpu = [], 0, {}

    files, total_bytes, statements, parsed, classified = [], 0, 0, 0, 0
    rules, problems, violations = collections.Counter(), [], []
    findings = []
    best = {}
    print(f"{'history':32} {'files':>6} {'stmts':>6} {'parsed':>7} {'classif':>7} {'best of ' + str(runs):>10}")
    for directory, tool in HISTORIES:
        path = os.path.join(corpus, directory)
        if not os.path.isdir(path):
            print(f"{directory:32} (missing, skipped)")
            continue
        timings = []
        for _ in range(runs):
            report, elapsed, cpu_seconds, peak_bytes = run_migagent(binary, path, tool)
            timings.append((elapsed, cpu_seconds))
            peak = max(peak, peak_bytes)
        best[directory] = min(t[0] for t in timings)
        best_cpu[directory] = min(t[1] for t in timings)
        if "--save" in options:
            with open(os.path.join(options["--save"], saved_name(directory)), "w") as f:
                json.dump(report, f)
        if "--compare" in options:
            differences += compare_saved(options["--compare"], directory, report)
        history_files = [m["path"] for m in report["migrations"]]
        history_statements = [s for m in report["migrations"] for s in m["statements"]]
        files += history_files
        total_bytes += sum(os.path.getsize(f) for f in history_files)
        statements += len(history_statements)
        parsed += sum(s["parsed"] for s in history_statements)
        classified += sum(s["classified"] for s in history_statements)
        findings += [(m["path"], f["line"], f["rule"]) for m in report["migrations"] for f in m["findings"]]
        rules.update(f["rule"] for m in report["migrations"] for f in m["findings"])
        problems += report["problems"]
        violations += new_table_violations(report)
        print(
            f"{directory:32} {len(history_files):6} {len(history_statements):6} "
            f"{100 * sum(s['parsed'] for s in history_statements) / max(1, len(history_statements)):6.2f}% "
            f"{100 * sum(s['classified'] for s in history_statements) / max(1, len(history_statements)):6.2f}% "
            f"{best[directory]:9.3f}s"
        )

    if diff_rule:
        squawk = shutil.which("squawk")
        if not squawk:
            raise SystemExit("--diff needs squawk on PATH (pip install squawk-cli)")
        print()
        print_diff(diff_rule, findings, run_squawk(squawk, files)[0])
        return

    seconds = sum(best.values())
    print()
    print(f"migagent: {len(files)} files, {total_bytes / 1e6:.2f} MB, {statements} statements in {seconds:.3f} s "
          f"(sum of per-history best of {runs}, process start and history replay included)")
    print(f"  throughput: {len(files) / seconds:,.0f} files/s, {total_bytes / 1e6 / seconds:.2f} MB/s")
    print(f"  CPU time (user + system): {sum(best_cpu.values()):.3f} s (sum of per-history best of {runs})")
    print(f"  peak memory: {peak / 2**20:.1f} MiB (largest of any one history's process)")
    print(f"  parse coverage: sqlparser {100 * parsed / statements:.2f}%, "
          f"with fallback classification {100 * classified / statements:.2f}%")
    print(f"  input problems: {len(problems)}")
    for problem in problems[:10]:
        print(f"    {problem['path']}:{problem['line']}: {problem['message']}")
    print(f"  locking findings on tables created earlier in the same migration: {len(violations)}")
    for violation in violations[:10]:
        print("    {}:{} {} on {}".format(*violation))
    print("  findings per rule:")
    for rule, count in sorted(rules.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"    {rule:40} {count:6}")

    squawk = shutil.which("squawk")
    if squawk:
        squawk_best, squawk_cpu, squawk_peak = None, None, 0
        for _ in range(runs):
            started = time.perf_counter()
            violations_found, cpu, squawk_peak = run_squawk(squawk, files)
            counts = collections.Counter(name for _, _, name in violations_found)
            elapsed = time.perf_counter() - started
            squawk_best = elapsed if squawk_best is None else min(squawk_best, elapsed)
            squawk_cpu = cpu if squawk_cpu is None else min(squawk_cpu, cpu)
        version = subprocess.run([squawk, "--version"], capture_output=True, text=True).stdout.strip()
        print()
        print(f"{version}: same {len(files)} files in {squawk_best:.3f} s (best of {runs}): "
              f"{len(files) / squawk_best:,.0f} files/s, {total_bytes / 1e6 / squawk_best:.2f} MB/s")
        print(f"  migagent / squawk speed: {squawk_best / seconds:.2f}x "
              f"(migagent's wall time is {seconds / squawk_best:.2f}x squawk's); squawk's CPU time "
              f"{squawk_cpu:.3f} s (migagent's is {sum(best_cpu.values()) / squawk_cpu:.2f}x); squawk's "
              f"peak memory {squawk_peak / 2**20:.1f} MiB")
        print()
        print(f"  {'migagent rule':40} {'count':>6}   {'squawk closest':50} {'count':>6}  ratio")
        for rule, count in sorted(rules.items(), key=lambda kv: (-kv[1], kv[0])):
            closest = SQUAWK_CLOSEST.get(rule, [])
            theirs = sum(counts.get(name, 0) for name in closest)
            ratio = f"{count / theirs:5.2f}" if theirs else "    -"
            print(f"  {rule:40} {count:6}   {' + '.join(closest) or '(none)':50} {theirs:6}  {ratio}")
        mapped = {name for names in SQUAWK_CLOSEST.values() for name in names}
        print("  squawk rules without a migagent counterpart:")
        for rule, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if rule not in mapped:
                print(f"    {rule:40} {count:6}")
    else:
        print("\nsquawk not found on PATH (pip install squawk-cli): comparison skipped")

    if "--compare" in options:
        print()
        print(f"findings compared with {options['--compare']}: "
              f"{'identical' if not differences else 'DIFFERENT'}")
        for line in differences:
            print(f"  {line}")
    if problems or violations or differences:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
