#!/usr/bin/env python3
"""Replaying whole migration histories on a shadow PostgreSQL: migagent next to plain psql.

Usage: python3 bench/shadow_replay.py [--corpus DIR] [--runs N] [--bin PATH] [--pg-bin DIR] [--json]
                                      [--whole-dir] [--trace-only] [--url] [--save DIR] [--compare DIR]
                                      [--without-changes] [--generated N,N,...] [HISTORY ...]

Build the binary first (`cargo build --release`); it is looked up as target/release/migagent under the
repository, or under $CARGO_TARGET_DIR when set; `--bin PATH` names another. PostgreSQL's initdb, pg_ctl,
postgres and psql are taken from `--pg-bin DIR`, else `pg_config --bindir`, else the directory of the
`initdb` on PATH. Run as root, the server runs as the `postgres` OS user.

CORPUS (default ../shared/corpus) holds real migration histories of public projects; HISTORY names some
of its directories (default: the four that apply cleanly on PostgreSQL 15). For each history:

- files and statements: from a static review of the whole directory (`--shadow off`), which also gives
  the tool's order of the files, their up parts, and the last migration;
- psql: every migration applied in that order in ONE `psql -f … -f …` session to a new database of a
  throwaway cluster (initdb, Unix socket, fsync/synchronous_commit/full_page_writes/autovacuum off),
  best of N; cluster start-up is not timed;
- cold: `migagent review --format json --shadow auto --no-cache LAST`, the whole process, best of N:
  the history is applied to a fresh shadow;
- cold+store: the same review with the image cache on, in a fresh XDG_CACHE_HOME (applies and stores);
- warm: N more runs on that cache, best and median;
- static: `--shadow off`, best of N, so the shadow's share of the cold time shows.

With `--whole-dir` every migration of each history is reviewed (`migagent review --shadow auto --no-cache
DIR`: every statement is applied with its trace, none as untraced history) and timed next to the same
psql replay, with the CPU time (user + system) of each: psql and the server backend that served it (read
from the postmaster's reaped children in /proc), and migagent with its own cluster's processes (its waited-for
descendants); `--save DIR` writes each history's whole-directory JSON report there and `--compare DIR` fails
when a report's findings, traces (durations left out) or drafts' verdicts differ from the saved ones, for checking that a
change kept what the trace sees. `--generated N,N,...` adds generated directories of N small migration
files each (a table with a primary key and a foreign key to the previous one, an index, and every tenth
file an ALTER TABLE of an earlier table), to show how the cost grows with the number of files.
`--trace-only` adds `--advise-on never` to the whole-directory reviews (findings and traces, no drafts, no
copies of the database to validate them on: the trace's own cost, and what a review of more than 20
migrations does by default); `--compare` then leaves the drafts' verdicts out, so reports saved by a
binary without that option (with drafts) compare too. Without it they get `--advise-on warning`, so
every migration with a warning gets its drafts validated whatever the directory's size.
`--without-changes` leaves each statement's schema changes (`trace.changes`, `trace.changes_unknown`) out
of `--compare` on both sides, for comparing a review that read them with one that did not
(`--trace-changes`: a whole directory of more than 20 migrations reads none by default).
`--url` (implies `--whole-dir`) also reviews each directory in URL mode (`--shadow postgres://…`, a role
with CREATEDB only) on the server psql's replay used, one migagent run right after each psql run: psql's
time leaves the cluster's start-up out, and so does this one, so their ratio is the replay's own cost.

Exits 1 when the corpus or a history is missing, psql fails, or a migagent run crashes, reports an input
problem or an `apply-failed` finding. A binary that rejects `--no-cache` gets "n/a" for cold, and a
report with no sign of the shadow (no statement trace, no finding with `confirmed_by_shadow`) is noted:
both are reported under the table, not failures.
"""

import argparse
import json
import os
import pwd
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "migagent")

# The histories of the corpus that apply cleanly on PostgreSQL 15 (see the corpus README).
CLEAN_ON_PG15 = ["documenso__documenso", "MarquezProject__marquez", "ente-io__ente", "Dokploy__dokploy"]

# Tools that keep the down part in the same file: psql would run it too, so their up statements (as
# migagent splits them) are written to a temp file instead.
DOWN_IN_SAME_FILE = {"dbmate", "liquibase"}

SERVER_OS_USER = "postgres"
SERVER_SETTINGS = {
    "listen_addresses": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "autovacuum": "off",
}
PORT = "5432"  # only names the socket file, in a private directory
MIGAGENT_TIMEOUT = 600


class Failure(Exception):
    """A run that went wrong: the message says what, where, and what was seen."""


def server_user():
    """The OS user to run PostgreSQL as: itself refuses to run as root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        raise Failure(f"running as root needs an OS user `{SERVER_OS_USER}` for the PostgreSQL server "
                      "(PostgreSQL refuses to run as root); create it or run as an unprivileged user")


def find_pg_bin(explicit):
    """The directory holding initdb, pg_ctl, postgres and psql: `explicit` only when given."""
    candidates = [explicit] if explicit else []
    if not explicit:
        try:
            bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
            candidates.append(bindir.stdout.strip())
        except OSError:
            pass
        if shutil.which("initdb"):
            candidates.append(os.path.dirname(os.path.realpath(shutil.which("initdb"))))
    for directory in candidates:
        if directory and all(os.access(os.path.join(directory, p), os.X_OK)
                             for p in ("initdb", "pg_ctl", "postgres", "psql")):
            return directory
    raise Failure("no directory with PostgreSQL's initdb, pg_ctl, postgres and psql found "
                  f"(looked in: {', '.join(filter(None, candidates)) or 'nothing'}); "
                  "install PostgreSQL 15 or name its bin directory with --pg-bin DIR")


class Cluster:
    """A throwaway PostgreSQL cluster in a private temp dir, reachable only over a Unix socket there."""

    def __init__(self, pg_bin):
        self.pg_bin = pg_bin
        self.user = server_user()
        self.dir = tempfile.mkdtemp(prefix="shadow-replay-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "log")
        self.started = False
        if self.user:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)

    def __enter__(self):
        try:
            self._server("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync",
                         "-E", "UTF8", "--locale=C")
            options = " ".join(f"-c {name}={value}" for name, value in SERVER_SETTINGS.items())
            options += f" -c unix_socket_directories='{self.dir}' -c port={PORT}"
            self._server("pg_ctl", "start", "-w", "-D", self.data, "-l", self.log, "-o", options)
            self.started = True
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_):
        try:
            if self.started:
                self._server("pg_ctl", "stop", "-w", "-m", "immediate", "-D", self.data)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _server(self, program, *args):
        as_user = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []} if self.user else {}
        completed = subprocess.run([os.path.join(self.pg_bin, program), *args], capture_output=True,
                                   text=True, cwd=self.dir, **as_user)
        if completed.returncode != 0:
            log = open(self.log).read()[-2000:] if os.path.exists(self.log) else ""
            raise Failure(f"{program} failed ({completed.returncode}):\n{completed.stdout}{completed.stderr}{log}")

    def psql(self, database, *args):
        """Runs psql as the database superuser over the socket; returns the wall-clock seconds and the
        CPU seconds of psql and of the server's backend that served it."""
        command = [os.path.join(self.pg_bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.dir,
                   "-p", PORT, "-U", "postgres", "-d", database, *args]
        started, cpu_before = time.perf_counter(), children_cpu() + self.reaped_cpu()
        completed = subprocess.run(command, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if completed.returncode != 0:
            raise Failure(f"psql stopped ({completed.returncode}) on database {database}; the history does not "
                          f"apply on this server, so there is nothing to compare:\n{completed.stderr[-3000:]}")
        # The backend has exited with psql's session; the postmaster reaps it a moment later.
        time.sleep(0.2)
        return elapsed, children_cpu() + self.reaped_cpu() - cpu_before

    def reaped_cpu(self):
        """CPU seconds of the server's exited backends (the postmaster's reaped children), from /proc."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as pid_file:
                pid = pid_file.readline().strip()
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        # Fields 16 and 17 of proc(5) (cutime, cstime), counted after the ")" that ends the name.
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")

    def server_version(self):
        return subprocess.run([os.path.join(self.pg_bin, "postgres"), "--version"],
                              capture_output=True, text=True).stdout.strip()


def migagent(binary, args, cache_home):
    """Runs `migagent review --format json … ARGS` with XDG_CACHE_HOME=cache_home.
    Returns (seconds, exit code, parsed report or None, stderr, CPU seconds): the CPU time is user +
    system of migagent and its descendants it waited for (its own cluster's server processes)."""
    command = [binary, "review", "--format", "json", "--fail-on", "never", "--llm", "off", *args]
    environment = dict(os.environ, XDG_CACHE_HOME=cache_home)
    started, cpu_before = time.perf_counter(), children_cpu()
    try:
        completed = subprocess.run(command, capture_output=True, text=True, env=environment,
                                   timeout=MIGAGENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Failure(f"`{' '.join(command)}` did not finish within {MIGAGENT_TIMEOUT} s")
    elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu_before
    try:
        report = json.loads(completed.stdout) if completed.stdout.strip() else None
    except json.JSONDecodeError:
        report = None
    return elapsed, completed.returncode, report, completed.stderr, cpu


def children_cpu():
    """User + system seconds of the waited-for child processes so far (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def checked(command_text, run):
    """The report of a migagent run that completed and reviewed everything; else a Failure that shows
    its stderr, its input problems and the migrations that failed on the shadow."""
    _, code, report, stderr, _ = run
    problems = report["problems"] if report else []
    apply_failed = [f"{m['path']}:{f['line']}: {f['message']}" for m in (report or {}).get("migrations", [])
                    for f in m["findings"] if f["rule"] == "apply-failed"]
    if code in (0, 1) and report is not None and not problems and not apply_failed:
        return report
    details = [f"`{command_text}` exited {code}"]
    if report is None:
        details.append("no JSON report on stdout")
    if stderr.strip():
        details.append("stderr:\n" + stderr.strip())
    details += [f"problem: {p['path']}:{p['line'] or '-'}: {p['message']}" for p in problems]
    details += [f"apply-failed: {line}" for line in apply_failed]
    raise Failure("\n".join(details))


def rejected_flag(run, flag):
    """Whether the binary refused `flag` as an unknown argument (a version before it existed)."""
    _, code, _, stderr, _ = run
    return code == 2 and f"'{flag}'" in stderr


NO_SIGN_OF_SHADOW = ("no statement trace and no finding with confirmed_by_shadow in the report: this migagent "
                     "does not run the shadow, or reports no trace and the last file has no finding to confirm; "
                     "compare the time with static")


def shadow_seen(report):
    """Whether the report shows the shadow ran: a statement trace or a finding it confirmed or not."""
    return any(s.get("trace") is not None for m in report["migrations"] for s in m["statements"]) or any(
        f.get("confirmed_by_shadow") is not None for m in report["migrations"] for f in m["findings"])


def timed_runs(binary, args, cache_home, runs, label, notes, cpu=None):
    """`runs` timings of one migagent command, each run checked, and the last report; (None, None) when
    the binary rejects `--no-cache`. What a run said on stderr is noted. Each run's CPU seconds go to
    `cpu` when given."""
    timings, report, said = [], None, set()
    command = f"migagent review --format json {' '.join(args)}"
    for _ in range(runs):
        run = migagent(binary, args, cache_home)
        if "--no-cache" in args and rejected_flag(run, "--no-cache"):
            notes.append(f"{label}: this migagent rejects --no-cache ({run[3].strip().splitlines()[0]}), "
                         "so there is no cold time")
            return None, None
        report = checked(command, run)
        timings.append(run[0])
        if cpu is not None:
            cpu.append(run[4])
        said.update(line for line in run[3].splitlines() if line.strip())
    notes += [f"{label}: `{' '.join(args[:-1])}` said on stderr: {line}" for line in sorted(said)]
    return timings, report


def history_files(binary, directory, cache_home):
    """The static review of a whole directory: its migrations in the tool's order, and the count of
    their statements."""
    command = ["--shadow", "off", directory]
    report = checked(f"migagent review --format json {' '.join(command)}", migagent(binary, command, cache_home))
    return report["migrations"], report["summary"]["statements"]


def psql_inputs(migrations, scratch):
    """The files psql applies, in order: the migration files themselves, or for tools that keep the down
    part in the same file, a temp file of the up statements."""
    files = []
    for index, migration in enumerate(migrations):
        if migration["tool"] not in DOWN_IN_SAME_FILE:
            files.append(migration["path"])
            continue
        # Named after the migration, so psql's error messages point at it.
        path = os.path.join(scratch, f"{index:05}_up_of_{os.path.basename(migration['path'])}")
        with open(path, "w") as up:
            # The terminator on a line of its own, so a statement ending in a `--` comment still ends.
            up.writelines(statement["sql"] + "\n;\n" for statement in migration["statements"])
        files.append(path)
    return files


def psql_baseline(pg_bin, files, runs, after_each=None):
    """Best-of-`runs` seconds to apply `files` in one psql session to a new database. `after_each(cluster)`,
    when given, runs after each psql run on the same server (URL mode's runs, alternated with psql's)."""
    arguments = [argument for path in files for argument in ("-f", path)]
    with Cluster(pg_bin) as cluster:
        timings = []
        for run in range(runs):
            database = f"replay_{run}"
            cluster.psql("postgres", "-c", f"CREATE DATABASE {database}")
            timings.append(cluster.psql(database, *arguments))
            cluster.psql("postgres", "-c", f"DROP DATABASE {database}")
            if after_each:
                after_each(cluster)
        (best, cpu) = min(timings)
        return best, cpu, cluster.server_version()


URL_ROLE = "migagent_bench"


def url_mode_runner(binary, args, directory, cache_home, name, notes, timings, cpu):
    """What `--url` adds after each psql run: `migagent review … --shadow postgres://…` on the server psql
    just used, as a role that may create databases and nothing else (the README's advice for URL mode),
    timed with the server backends' CPU (the postmaster's reaped children) added to migagent's."""
    def run(cluster):
        if not getattr(cluster, "url_role", False):
            cluster.psql("postgres", "-c", f"CREATE ROLE {URL_ROLE} LOGIN CREATEDB")
            cluster.url_role = True
        url = f"postgres://{URL_ROLE}@/postgres?host={cluster.dir}&port={PORT}"
        server_before = cluster.reaped_cpu()
        elapsed, report = timed_runs(binary, [*args, "--shadow", url, "--no-cache", directory], cache_home, 1,
                                     name, notes, cpu)
        # The backends have exited with migagent's sessions; the postmaster reaps them a moment later.
        time.sleep(0.2)
        cpu[-1] += cluster.reaped_cpu() - server_before
        timings.extend(elapsed)
        if not shadow_seen(report):
            notes.append(f"{name}: URL mode: {NO_SIGN_OF_SHADOW}")
    return run


def measure(name, corpus, binary, pg_bin, runs, notes):
    directory = os.path.join(corpus, name)
    if not os.path.isdir(directory):
        raise Failure(f"history {name} is missing from the corpus at {corpus}")
    with tempfile.TemporaryDirectory(prefix="shadow-replay-cache-") as cache_home:
        migrations, statements = history_files(binary, directory, cache_home)
        last = migrations[-1]["path"]
        result = {"history": name, "tool": migrations[0]["tool"], "files": len(migrations),
                  "statements": statements, "last": last}
        with tempfile.TemporaryDirectory(prefix="shadow-replay-up-") as scratch:
            result["psql"], _, result["server"] = psql_baseline(pg_bin, psql_inputs(migrations, scratch), runs)

        static, _ = timed_runs(binary, ["--shadow", "off", last], cache_home, runs, name, notes)
        result["static"] = min(static)
        cold, report = timed_runs(binary, ["--shadow", "auto", "--no-cache", last], cache_home, runs, name, notes)
        result["cold"] = min(cold) if cold else None
        if report and not shadow_seen(report):
            notes.append(f"{name}: --shadow auto --no-cache: {NO_SIGN_OF_SHADOW}")
    with tempfile.TemporaryDirectory(prefix="shadow-replay-cache-") as cache_home:
        store, report = timed_runs(binary, ["--shadow", "auto", last], cache_home, 1, name, notes)
        warm, _ = timed_runs(binary, ["--shadow", "auto", last], cache_home, runs, name, notes)
        result["cold_store"] = store[0]
        result["warm_best"], result["warm_median"] = min(warm), statistics.median(warm)
        if not shadow_seen(report):
            notes.append(f"{name}: --shadow auto: {NO_SIGN_OF_SHADOW}")
        if not any(files for _, _, files in os.walk(cache_home)):
            notes.append(f"{name}: --shadow auto stored nothing under XDG_CACHE_HOME, so the warm runs "
                         "started from no image")
    result["cold_over_psql"] = result["cold"] / result["psql"] if result["cold"] is not None else None
    result["warm_over_psql"] = result["warm_best"] / result["psql"]
    return result


def generated_history(directory, files):
    """`files` small migrations of a plain layout: each creates a table referencing the previous one and
    an index, and every tenth alters an earlier table."""
    os.makedirs(directory, exist_ok=True)
    for i in range(files):
        parent = f", parent_id bigint REFERENCES t{i - 1}(id)" if i else ""
        statements = [f"CREATE TABLE t{i} (id bigint PRIMARY KEY, name text NOT NULL{parent})",
                      f"CREATE INDEX t{i}_name_idx ON t{i} (name)"]
        if i % 10 == 9:
            statements.append(f"ALTER TABLE t{i - 5} ADD COLUMN note_{i} text")
        with open(os.path.join(directory, f"{i + 1:06}_create_t{i}.sql"), "w") as migration:
            migration.write("".join(f"{statement};\n" for statement in statements))


def comparable(report, directory, verdicts_too=True):
    """What a change to the shadow's speed must not change: findings, traces (durations left out) and
    (unless `verdicts_too` is false) the validator's verdicts on the drafts."""
    def trace(statement):
        t = dict(statement.get("trace") or {})
        t.pop("duration_ms", None)
        return t

    def verdicts(migration):
        drafts = (migration.get("advice") or {}).get("drafts", [])
        return [{"source": d["source"], "kind": d["kind"], "data_loss": d.get("data_loss"),
                 "validation": d["validation"]} for d in drafts]
    return [{"path": os.path.relpath(m["path"], directory), "findings": m["findings"],
             "traces": [trace(s) for s in m["statements"]], "verdicts": verdicts(m) if verdicts_too else None}
            for m in report["migrations"]]


def measure_whole_dir(name, directory, binary, pg_bin, runs, notes, save, compare, trace_only=False, url=False,
                      without_changes=False):
    """One psql session's replay of a whole directory next to migagent reviewing every migration of it
    (`--advise-on warning`, or with `trace_only` `never`: no drafts to validate; with `url`, also in URL mode on the
    server psql used)."""
    advise = ["--advise-on", "never" if trace_only else "warning"]
    with tempfile.TemporaryDirectory(prefix="shadow-replay-cache-") as cache_home:
        migrations, statements = history_files(binary, directory, cache_home)
        result = {"history": name, "tool": migrations[0]["tool"], "files": len(migrations),
                  "statements": statements}
        url_timings, url_cpu = [], []
        after_each = url_mode_runner(binary, advise, directory, cache_home, name, notes, url_timings,
                                     url_cpu) if url else None
        with tempfile.TemporaryDirectory(prefix="shadow-replay-up-") as scratch:
            result["psql"], result["psql_cpu"], result["server"] = psql_baseline(
                pg_bin, psql_inputs(migrations, scratch), runs, after_each)
        if url:
            result["url"] = min(url_timings)
            result["url_cpu"] = url_cpu[url_timings.index(result["url"])]
            result["url_over_psql"] = result["url"] / result["psql"]
        cpu = []
        whole, report = timed_runs(binary, [*advise, "--shadow", "auto", "--no-cache", directory], cache_home,
                                   runs, name, notes, cpu)
        result["whole"] = min(whole)
        result["whole_cpu"] = cpu[whole.index(result["whole"])]
        result["whole_over_psql"] = result["whole"] / result["psql"]
        if not shadow_seen(report):
            notes.append(f"{name}: whole directory: {NO_SIGN_OF_SHADOW}")
        saved_name = name.replace("/", "_") + ".json"
        if save:
            os.makedirs(save, exist_ok=True)
            with open(os.path.join(save, saved_name), "w") as out:
                json.dump(comparable(report, directory), out, indent=1)
        if compare:
            with open(os.path.join(compare, saved_name)) as saved:
                before = json.load(saved)
            now = comparable(report, directory, not trace_only)
            if trace_only:
                for migration in before:
                    migration["verdicts"] = None
            if without_changes:
                for trace in (t for m in before + now for t in m["traces"]):
                    trace.pop("changes", None)
                    trace.pop("changes_unknown", None)
            if before != now:
                differing = [b["path"] for b, a in zip(before, now) if b != a] or ["(the list of migrations)"]
                raise Failure(f"findings, traces or verdicts differ from {compare}/{saved_name} in: {', '.join(differing[:10])}")
            result["compared"] = True
    return result


def print_whole_dir_table(results, runs, notes, trace_only=False):
    print(f"{results[0]['server']}; best of {runs}; seconds, whole process; every migration reviewed")
    print(f"{'history':26} {'files':>6} {'stmts':>6} {'psql':>8} {'review':>8} {'review/psql':>11} {'ms/file':>8} "
          f"{'psql cpu':>8} {'rev. cpu':>8} {'cpu ratio':>9}")
    for r in results:
        print(f"{r['history']:26} {r['files']:6} {r['statements']:6} {seconds(r['psql'])} {seconds(r['whole'])} "
              f"{ratio(r['whole_over_psql']):>11} {1000 * r['whole'] / r['files']:8.2f} {seconds(r['psql_cpu'])} "
              f"{seconds(r['whole_cpu'])} {ratio(r['whole_cpu'] / r['psql_cpu'] if r['psql_cpu'] else None)}"
              + ("  (same findings, traces" + ("" if trace_only else " and verdicts") + ")" if r.get("compared") else ""))
    print("psql: every file in one psql session, cluster start-up excluded; review: `migagent review "
          + ("--advise-on never " if trace_only else "--advise-on warning ") + "--shadow auto "
          "--no-cache DIR` (initdb, start and teardown included); cpu: user + system seconds of the same run "
          "(psql: psql and its server backend; review: migagent and its own cluster's processes)")
    if any("url" in r for r in results):
        print(f"{'history':26} {'URL mode':>8} {'URL/psql':>9} {'URL cpu':>8} {'cpu ratio':>9}")
        for r in results:
            print(f"{r['history']:26} {seconds(r['url'])} {ratio(r['url_over_psql'])} {seconds(r['url_cpu'])} "
                  f"{ratio(r['url_cpu'] / r['psql_cpu'] if r['psql_cpu'] else None)}")
        print("URL mode: the same review with `--shadow postgres://…` on the server psql used (running, as psql's "
              "is), as a role with CREATEDB only, each run right after a psql run; cpu: migagent and the server "
              "backends that served it")
    for note in notes:
        print(f"note: {note}")


def seconds(value):
    return f"{value:8.3f}" if value is not None else f"{'n/a':>8}"


def ratio(value):
    return f"{value:8.2f}x" if value is not None else f"{'n/a':>9}"


def print_table(results, runs, notes):
    print(f"{results[0]['server']}; best of {runs} unless said; seconds, whole process")
    print(f"{'history':26} {'files':>5} {'stmts':>5} {'psql':>8} {'cold':>8} {'cold+st':>8} {'warm':>8} "
          f"{'warm med':>8} {'static':>8} {'cold/psql':>9} {'warm/psql':>9}")
    for r in results:
        print(f"{r['history']:26} {r['files']:5} {r['statements']:5} {seconds(r['psql'])} {seconds(r['cold'])} "
              f"{seconds(r['cold_store'])} {seconds(r['warm_best'])} {seconds(r['warm_median'])} "
              f"{seconds(r['static'])} {ratio(r['cold_over_psql'])} {ratio(r['warm_over_psql'])}")
    print("psql: every file in one psql session, cluster start-up excluded; cold: --shadow auto --no-cache "
          "(history applied to a fresh shadow); cold+st: one run with the cache, storing the image (once); "
          "warm: from the cached image (best, median); static: --shadow off")
    for note in notes:
        print(f"note: {note}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("histories", nargs="*", default=CLEAN_ON_PG15, metavar="HISTORY")
    parser.add_argument("--corpus", default=os.path.normpath(os.path.join(ROOT, "..", "shared", "corpus")))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bin", default=BINARY)
    parser.add_argument("--pg-bin")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--whole-dir", action="store_true")
    parser.add_argument("--trace-only", action="store_true")
    parser.add_argument("--url", action="store_true")
    parser.add_argument("--save")
    parser.add_argument("--compare")
    parser.add_argument("--without-changes", action="store_true")
    parser.add_argument("--generated", type=lambda text: [int(n) for n in text.split(",") if n], default=[])
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs takes a count of at least 1")
    # SIGTERM unwinds like Ctrl-C, so every throwaway cluster is stopped and removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    histories = [] if args.generated and args.histories == CLEAN_ON_PG15 else args.histories
    if histories and not os.path.isdir(args.corpus):
        raise SystemExit(f"no corpus at {args.corpus}: pass the directory of migration histories with --corpus DIR")
    if not os.access(args.bin, os.X_OK):
        raise SystemExit(f"no migagent binary at {args.bin}: run `cargo build --release` or pass --bin PATH")
    notes, results = [], []
    try:
        pg_bin = find_pg_bin(args.pg_bin)
    except Failure as failure:
        raise SystemExit(f"shadow_replay: {failure}")
    if args.trace_only or args.url:
        args.whole_dir = True
    if (args.save or args.compare) and not args.whole_dir:
        parser.error("--save and --compare compare whole-directory reviews: add --whole-dir")
    for name in histories:
        try:
            if args.whole_dir:
                results.append(measure_whole_dir(name, os.path.join(args.corpus, name), args.bin, pg_bin,
                                                 args.runs, notes, args.save, args.compare, args.trace_only,
                                                 args.url, args.without_changes))
            else:
                results.append(measure(name, args.corpus, args.bin, pg_bin, args.runs, notes))
        except Failure as failure:
            raise SystemExit(f"shadow_replay: {name}: {failure}")
    for files in args.generated:
        with tempfile.TemporaryDirectory(prefix="shadow-replay-generated-") as scratch:
            directory = os.path.join(scratch, f"files-{files}")
            generated_history(directory, files)
            try:
                results.append(measure_whole_dir(f"generated-{files}", directory, args.bin, pg_bin, args.runs,
                                                 notes, args.save, args.compare, args.trace_only, args.url,
                                                 args.without_changes))
            except Failure as failure:
                raise SystemExit(f"shadow_replay: generated {files} files: {failure}")
    if args.json:
        json.dump({"runs": args.runs, "histories": results, "notes": notes}, sys.stdout, indent=2)
        print()
    elif args.whole_dir or args.generated:
        print_whole_dir_table(results, args.runs, notes, args.trace_only)
    else:
        print_table(results, args.runs, notes)


if __name__ == "__main__":
    main()
