#!/usr/bin/env python3
"""Static review of every migration history in a corpus, timed, next to squawk on the same files.

Usage: python3 bench/corpus.py [CORPUS_DIR] [--runs N] [--diff RULE]

CORPUS_DIR defaults to ../shared/corpus (real migration histories of public projects). For each history
it runs the release binary's `migagent review --format json` on the whole migrations directory and
reports files/s, MB/s, parse coverage (statements sqlparser parses; and with the fallback
classification), findings per rule, and checks that no locking finding names a table created earlier
in the same migration. When `squawk` is on PATH (`pip install squawk-cli`) it is run on exactly the
files migagent reviewed, in the same process, for a throughput comparison. Exits non-zero when a run
crashes, hangs (60 s per history) or reports an input problem.

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


def run_migagent(path, tool):
    command = [BINARY, "review", "--format", "json", "--fail-on", "never", "--shadow", "off", "--llm", "off", path]
    if tool:
        command[2:2] = ["--tool", tool]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, timeout=60)
    elapsed = time.perf_counter() - started
    if completed.returncode not in (0, 1):
        sys.stderr.write(completed.stderr.decode(errors="replace"))
        raise SystemExit(f"migagent exited {completed.returncode} on {path}")
    return json.loads(completed.stdout), elapsed


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
    """squawk's violations on these files, as (file, 1-based line, rule) triples."""
    violations = []
    # Split into chunks to stay under the argument-length limit.
    for at in range(0, len(files), 500):
        completed = subprocess.run(
            [squawk, "--reporter", "json", *files[at : at + 500]], capture_output=True, timeout=300
        )
        for violation in json.loads(completed.stdout or b"[]"):
            # squawk numbers lines from 0.
            violations.append((violation["file"], violation["line"] + 1, violation["rule_name"]))
    return violations


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
    corpus = args[0] if args else os.path.join(ROOT, "..", "shared", "corpus")
    if not os.path.isdir(corpus):
        raise SystemExit(f"no corpus at {corpus}")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)

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
            report, elapsed = run_migagent(path, tool)
            timings.append(elapsed)
        best[directory] = min(timings)
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
        print_diff(diff_rule, findings, run_squawk(squawk, files))
        return

    seconds = sum(best.values())
    print()
    print(f"migagent: {len(files)} files, {total_bytes / 1e6:.2f} MB, {statements} statements in {seconds:.3f} s "
          f"(sum of per-history best of {runs}, process start and history replay included)")
    print(f"  throughput: {len(files) / seconds:,.0f} files/s, {total_bytes / 1e6 / seconds:.2f} MB/s")
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
        squawk_best = None
        for _ in range(runs):
            started = time.perf_counter()
            counts = collections.Counter(name for _, _, name in run_squawk(squawk, files))
            elapsed = time.perf_counter() - started
            squawk_best = elapsed if squawk_best is None else min(squawk_best, elapsed)
        version = subprocess.run([squawk, "--version"], capture_output=True, text=True).stdout.strip()
        print()
        print(f"{version}: same {len(files)} files in {squawk_best:.3f} s (best of {runs}): "
              f"{len(files) / squawk_best:,.0f} files/s, {total_bytes / 1e6 / squawk_best:.2f} MB/s")
        print(f"  migagent / squawk speed: {squawk_best / seconds:.2f}x")
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

    if problems or violations:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
