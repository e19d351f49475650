#!/usr/bin/env python3
"""Round trips per traced statement: how often migagent waits for the shadow server.

Usage: python3 bench/round_trips.py [--bin PATH] [--corpus DIR] [--history NAME] [--first N]
                                    [--keep-trace FILE] [--trace-only]

Reviews the first N migrations of a history (default: documenso's first 40) as a whole directory
(`migagent review --format json --fail-on never --llm off --shadow auto --no-cache DIR`) under
`strace -f -yy`, and counts on each of migagent's Unix-socket connections the turns from writing to
reading: the first read that returns data after one or more writes is one round trip, the
latency-bound unit on a loaded machine. The busiest connection is the applying session. Prints the
round trips of the applying session, per traced statement (statements with `applied` in the report),
and of all connections, then migagent's and the server's CPU time from a second run without strace
(`/usr/bin/time`: the server's processes are migagent's descendants, so children's time is the
server's). `--trace-only` adds `--advise-on never`: no drafts, so no copies of the database to
validate them on, and the counts are the trace's own.

Needs strace, /usr/bin/time, a built binary (default target/debug/migagent) and the corpus.
"""

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# `write(7<UNIX-STREAM:[123->124]>, …) = 42` and the like, after the thread's id (`strace -f -o`).
LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<rest>.*)$")
SYSCALL = re.compile(
    r"^(?P<call>read|write|readv|writev|recvfrom|sendto|recvmsg|sendmsg)"
    r"\(\d+<UNIX-STREAM:\[(?P<inode>\d+)(?:->\d+)?\]>.*\)\s+=\s+(?P<result>-?\d+)"
)
THREAD = re.compile(r"^clone3?\(.*CLONE_THREAD.*\)\s+=\s+(?P<child>\d+)")
RESUMED = re.compile(r"^<\.\.\. \w+ resumed>(?P<rest>.*)$")
WRITES = {"write", "writev", "sendto", "sendmsg"}
# The start of the trace's observation of the applying session (`shadow::trace`, prepared once per
# connection), and of the watchdog's query (`shadow::session`), as strace prints them (`-s 120`).
OBSERVATION = "WITH locks AS MATERIALIZED"
WATCHDOG = "now() - query_start"


def first_migrations(corpus, history, first, scratch):
    """A copy of the history's first `first` migrations (sorted names, as Prisma orders them) and of
    its other files (Prisma's migration_lock.toml)."""
    source = os.path.join(corpus, history)
    entries = sorted(os.listdir(source))
    folders = [n for n in entries if os.path.isdir(os.path.join(source, n))][:first]
    directory = os.path.join(scratch, history)
    os.mkdir(directory)
    for name in folders:
        shutil.copytree(os.path.join(source, name), os.path.join(directory, name))
    for name in entries:
        if os.path.isfile(os.path.join(source, name)):
            shutil.copy(os.path.join(source, name), directory)
    return directory


def whole_calls(trace_file):
    """(thread id, call text) of every finished call, an interrupted call joined with its resumption."""
    unfinished = {}
    with open(trace_file, errors="replace") as lines:
        for line in lines:
            match = LINE.match(line.rstrip("\n"))
            if not match:
                continue
            pid, rest = int(match["pid"]), match["rest"]
            if rest.endswith("<unfinished ...>"):
                unfinished[pid] = rest[: -len("<unfinished ...>")]
                continue
            resumed = RESUMED.match(rest)
            if resumed:
                rest = unfinished.pop(pid, "") + resumed["rest"]
            yield pid, rest


def count_turns(trace_file):
    """Round trips per connection (socket inode) of migagent's own threads (the first process and
    the threads it starts; the server's processes are left out), by the writes-then-first-read rule,
    and the connections that sent the trace's observation (the applying sessions: one per database
    connection the reviewed migrations were applied on) and the watchdog's query (time-driven, so
    left out of the totals)."""
    migagent = set()
    wrote = collections.defaultdict(bool)
    turns = collections.Counter()
    applying, watchdog = set(), set()
    for pid, call in whole_calls(trace_file):
        if not migagent:
            migagent.add(pid)
        if pid not in migagent:
            continue
        thread = THREAD.match(call)
        if thread:
            migagent.add(int(thread["child"]))
            continue
        match = SYSCALL.match(call)
        if not match or int(match["result"]) <= 0:
            continue
        inode = match["inode"]
        if match["call"] in WRITES:
            wrote[inode] = True
            if OBSERVATION in call:
                applying.add(inode)
            if WATCHDOG in call:
                watchdog.add(inode)
        elif wrote[inode]:
            turns[inode] += 1
            wrote[inode] = False
    for inode in watchdog:
        del turns[inode]
    return turns, applying


def traced_statements(report):
    return sum(
        1
        for migration in report.get("migrations", [])
        for statement in migration.get("statements", [])
        if (statement.get("trace") or {}).get("applied")
    )


def review_command(binary, directory, trace_only):
    advise = ["--advise-on", "never"] if trace_only else []
    return [binary, "review", "--format", "json", "--fail-on", "never", "--llm", "off", *advise, "--shadow", "auto",
            "--no-cache", directory]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "debug", "migagent"))
    parser.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "corpus"))
    parser.add_argument("--history", default="documenso__documenso")
    parser.add_argument("--first", type=int, default=40)
    parser.add_argument("--keep-trace", help="write strace's output to this file")
    parser.add_argument("--trace-only", action="store_true")
    args = parser.parse_args()
    if not os.path.isdir(os.path.join(args.corpus, args.history)):
        sys.exit(f"round_trips: no history {args.history} under {args.corpus}; pass --corpus DIR")
    with tempfile.TemporaryDirectory(prefix="round-trips-") as scratch:
        directory = first_migrations(args.corpus, args.history, args.first, scratch)
        trace_file = args.keep_trace or os.path.join(scratch, "strace.out")
        command = review_command(args.bin, directory, args.trace_only)
        run = subprocess.run(["strace", "-f", "-yy", "-s", "120", "-o", trace_file,
                              "-e", "trace=read,write,readv,writev,recvfrom,sendto,recvmsg,sendmsg,clone,clone3"] + command,
                             capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"round_trips: migagent exited {run.returncode}: {run.stderr.strip()[-2000:]}")
        report = json.loads(run.stdout)
        turns, applying = count_turns(trace_file)
        timed = subprocess.run(["/usr/bin/time", "-f", "%U %S"] + command, capture_output=True, text=True)
        if timed.returncode != 0:
            sys.exit(f"round_trips: migagent exited {timed.returncode}: {timed.stderr.strip()[-2000:]}")
        total_user, total_system = (float(x) for x in timed.stderr.strip().splitlines()[-1].split())
    statements = traced_statements(report)
    applying_turns = sum(turns[inode] for inode in applying)
    total = sum(turns.values())
    print(f"traced statements: {statements}")
    print(f"applying sessions: {applying_turns} round trips on {len(applying)} connections, "
          f"{applying_turns / max(statements, 1):.1f} per traced statement")
    print(f"all connections but the watchdog: {total} round trips on {len(turns)} connections, "
          f"{total / max(statements, 1):.1f} per traced statement")
    print(f"CPU (migagent and server, whole run without strace): user {total_user:.2f} s, "
          f"system {total_system:.2f} s")

if __name__ == "__main__":
    main()
