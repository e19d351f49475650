#!/usr/bin/env python3
"""Static review of generated migrations of growing size: time and peak memory per statement.

Usage: python3 bench/static_scaling.py [--bin PATH] [--runs N] [--timeout S] [--keep DIR] [CASE ...]

Builds the inputs under a temporary directory (or DIR with --keep) and runs
`migagent review --format json --shadow off` on each with the release binary (target/release/migagent,
under $CARGO_TARGET_DIR when set; `--bin PATH` names another, e.g. target/profiling/migagent). For each
input it prints statements, size, the best wall time of N runs with that run's CPU time (user + system,
which a loaded machine disturbs less than wall time) and peak resident memory
(getrusage of the child), and the CPU time per 1,000 statements: linear cost shows as a flat last column.
A run still going after --timeout seconds (default 300) is killed and shown as "> S s".

Cases (default: all):
- ddl-1k, ddl-10k, ddl-100k: a schema dump of N statements: tables with a primary key, an unnamed
  CHECK, foreign keys to the previous table, indexes, comments, enums, sequences, grants, views, a
  column added and altered later;
- ddl-tx-10k, ddl-tx-100k: the same wrapped in one BEGIN … COMMIT (every statement in one
  transaction: locks held to the end, transaction-shape rules);
- select-10k, select-100k: N × `SELECT 1;`;
- dump-30mb: the DDL dump grown to just under 30 MB (the file size limit is 32 MiB);
- history-13k: a 13,500-statement migration reviewed as one file of a directory whose earlier
  migrations (its history, replayed first) hold 135,000 statements.

Exits 1 when a run fails (exit code other than 0 or 1, the code for "findings"), reports an input
problem, or finds no statement.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import measure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "migagent")

DUMP_30MB = 30 * 1000 * 1000


def table_group(i):
    """The statements of one table of the generated dump (13 statements)."""
    t = f"app.t{i}"
    previous = f"app.t{i - 1}" if i else None
    statements = [
        f"CREATE TYPE app.state_{i} AS ENUM ('new', 'active', 'closed')",
        f"CREATE SEQUENCE app.t{i}_seq START 1",
        f"CREATE TABLE {t} (id bigint NOT NULL, parent_id bigint, name text NOT NULL, "
        f"state app.state_{i} DEFAULT 'new', amount numeric(12, 2) CHECK (amount >= 0), "
        f"created_at timestamptz NOT NULL DEFAULT now())",
        f"ALTER TABLE ONLY {t} ADD CONSTRAINT t{i}_pkey PRIMARY KEY (id)",
        f"CREATE INDEX t{i}_name_idx ON {t} USING btree (name)",
        f"CREATE UNIQUE INDEX t{i}_name_state_key ON {t} (name, state) WHERE state <> 'closed'",
        f"COMMENT ON TABLE {t} IS 'generated table {i}'",
        f"ALTER TABLE {t} OWNER TO postgres",
        f"GRANT SELECT, INSERT, UPDATE ON TABLE {t} TO app_user",
        f"ALTER TABLE {t} ADD COLUMN note varchar(200)",
        f"ALTER TABLE {t} ALTER COLUMN note TYPE text",
        f"CREATE VIEW app.v{i} AS SELECT id, name FROM {t} WHERE state = 'active'",
    ]
    if previous:
        statements.append(
            f"ALTER TABLE ONLY {t} ADD CONSTRAINT t{i}_parent_fkey FOREIGN KEY (parent_id) "
            f"REFERENCES {previous} (id) ON DELETE CASCADE"
        )
    else:
        statements.append("CREATE SCHEMA IF NOT EXISTS app_extra")
    return statements


def ddl(statements, start=0):
    """About `statements` DDL statements, table groups numbered from `start`."""
    lines = ["CREATE SCHEMA IF NOT EXISTS app;"] if start == 0 else []
    i = start
    while len(lines) < statements:
        lines.extend(s + ";" for s in table_group(i))
        i += 1
    return "\n".join(lines[:statements]) + "\n"


def ddl_bytes(limit):
    """The DDL dump grown group by group to at most `limit` bytes."""
    parts, size, i = ["CREATE SCHEMA IF NOT EXISTS app;\n"], 0, 0
    while True:
        group = "\n".join(s + ";" for s in table_group(i)) + "\n"
        if size + len(group) > limit:
            return "".join(parts)
        parts.append(group)
        size += len(group)
        i += 1


def in_transaction(sql):
    return "BEGIN;\n" + sql + "COMMIT;\n"


def write(directory, name, text):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def build_cases(base):
    """name -> (path to review, statements in the reviewed file, bytes of the reviewed file)."""
    cases = {}

    def single(name, text, count):
        path = write(os.path.join(base, name), "0001_migration.sql", text)
        cases[name] = (path, count, len(text.encode()))

    for n, label in [(1_000, "1k"), (10_000, "10k"), (100_000, "100k")]:
        single(f"ddl-{label}", ddl(n), n)
    for n, label in [(10_000, "10k"), (100_000, "100k")]:
        single(f"ddl-tx-{label}", in_transaction(ddl(n)), n + 2)
    for n, label in [(10_000, "10k"), (100_000, "100k")]:
        single(f"select-{label}", "SELECT 1;\n" * n, n)
    dump = ddl_bytes(DUMP_30MB)
    single("dump-30mb", dump, dump.count(";\n"))
    # History: ten earlier migrations of 13,500 statements each, then the reviewed one.
    history_dir = os.path.join(base, "history-13k")
    per_file, groups_per_file = 13_500, 13_500 // 13 + 1
    for k in range(10):
        write(history_dir, f"{k + 1:04d}_history.sql", ddl(per_file, start=k * groups_per_file))
    target = ddl(per_file, start=10 * groups_per_file)
    path = write(history_dir, "0011_target.sql", target)
    cases["history-13k"] = (path, per_file, len(target.encode()))
    return cases


def review(binary, path, timeout):
    """One review: (wall seconds, CPU seconds, peak RSS bytes, JSON report), or `None` after `timeout`
    seconds."""
    result = measure.run([binary, "review", "--format", "json", "--shadow", "off", path], timeout)
    if result is None:
        return None
    if result.code not in (0, 1):
        sys.exit(f"{path}: exit {result.code}: {result.stderr.decode(errors='replace')[:2000]}")
    return result.seconds, result.cpu_seconds, result.peak_bytes, result.stdout


def check_report(name, report_bytes):
    report = json.loads(report_bytes)
    if report.get("problems"):
        sys.exit(f"{name}: input problems: {report['problems'][:3]}")
    reviewed = sum(len(m.get("statements", [])) for m in report.get("migrations", []))
    if reviewed == 0:
        sys.exit(f"{name}: no statement reviewed")
    findings = sum(len(m.get("findings", [])) for m in report.get("migrations", []))
    return reviewed, findings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=BINARY)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", help="write the inputs here and keep them")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per run (default 300)")
    parser.add_argument("cases", nargs="*")
    args = parser.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"{args.bin} not found: build it first (cargo build --release)")
    base = args.keep or tempfile.mkdtemp(prefix="migagent-scaling-")
    try:
        cases = build_cases(base)
        unknown = [c for c in args.cases if c not in cases]
        if unknown:
            sys.exit(f"unknown case(s) {unknown}; known: {', '.join(cases)}")
        print(f"{'case':<14} {'stmts':>8} {'MB':>7} {'findings':>9} {'wall s':>8} {'CPU s':>8} "
              f"{'peak MiB':>9} {'CPU ms/1k stmts':>16}")
        for name in args.cases or list(cases):
            path, statements, size = cases[name]
            best = None
            for _ in range(args.runs):
                result = review(args.bin, path, args.timeout)
                if result is None:
                    break
                if best is None or result[0] < best[0]:
                    best = result
            if best is None:
                print(f"{name:<14} {statements:>8} {size / 1e6:>7.2f} {'':>9} "
                      f"{'> ' + str(int(args.timeout)) + ' s':>8}", flush=True)
                continue
            elapsed, cpu, peak, report = best
            reviewed, findings = check_report(name, report)
            print(f"{name:<14} {reviewed:>8} {size / 1e6:>7.2f} {findings:>9} {elapsed:>8.3f} {cpu:>8.3f} "
                  f"{peak / 2**20:>9.1f} {cpu * 1e6 / reviewed:>16.2f}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
