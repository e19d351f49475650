#!/usr/bin/env python3
"""Where a review with the shadow spends its time before, between and after the migrations.

Usage: python3 bench/shadow_phases.py [--bin PATH] [--every N] [--keep FILE] DIR [-- MIGAGENT_ARGS...]

Runs `migagent review --format json --advise-on never --shadow auto --no-cache DIR` (or the arguments
after `--` instead of those options) under `strace -f --seccomp-bpf -tt`, tracing only process starts
and exits, connects and sends (seccomp keeps every other system call untraced, so the run is barely
slowed), and prints, in seconds since migagent started:

- the phases outside the trace: `postgres --version`, initdb (start and end), the server's start,
  the first connection, `CREATE DATABASE`, the first migration (the first per-migration session reset
  that the applying connection sends), the last one, `pg_ctl stop`, migagent's exit;
- with `--every N`, the milliseconds per migration over each run of N migrations (from the session
  resets), which shows whether a migration costs more the more came before it.

Needs strace; run as root the server's processes run as `postgres`, which strace follows as well.
`--keep FILE` keeps the strace output.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "profiling", "migagent")

# What the review sends on the applying connection before each migration (`NEW_SESSION`).
SESSION_RESET = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT;"


def seconds(stamp):
    hours, minutes, rest = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def program(call):
    """`initdb`, `pg_ctl stop`, `postgres -D` … from an execve line."""
    args = re.findall(r'"((?:[^"\\]|\\.)*)"', call)
    name = os.path.basename(args[0]) if args else "?"
    first = args[2] if len(args) > 2 else ""
    return f"{name} {first}".strip()


def phases(lines):
    """(seconds, what) marks, and the times of the session resets, from strace -tt lines."""
    start = seconds(lines[0].split()[1])
    main_pid = lines[0].split()[0]
    marks, resets, started = [], [], {}
    for line in lines:
        parts = line.split(None, 2)
        if len(parts) < 3 or ":" not in parts[1]:
            continue
        pid, at, call = parts[0], seconds(parts[1]) - start, parts[2]
        if call.startswith("execve(") and "= 0" in call:
            what = program(call)
            if what.split()[0] in ("initdb", "pg_ctl", "postgres") and not what.endswith("-V"):
                started[pid] = what
                marks.append((at, f"start {what}"))
        elif call.startswith("exit_group(") and started.get(pid, "").startswith("initdb"):
            marks.append((at, "end initdb"))
        elif call.startswith("exit_group(") and pid == main_pid:
            marks.append((at, "migagent exits"))
        elif call.startswith("connect(") and ".s.PGSQL" in call and "= 0" in call and "connected" not in started:
            started["connected"] = True
            marks.append((at, "first connection to the server"))
        elif call.startswith("sendto("):
            if SESSION_RESET in call:
                resets.append(at)
            elif "CREATE DATABASE" in call:
                # Sent as a simple query (`Q`); the server's `C` reply says it is done.
                done = '"C' in call[:20]
                marks.append((at, "CREATE DATABASE " + ("done" if done else "sent")))
    if resets:
        marks += [(resets[0], "first migration (session reset)"), (resets[-1], "last migration (session reset)")]
    return sorted(marks), resets


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir")
    parser.add_argument("--bin", default=BINARY)
    parser.add_argument("--every", type=int, default=0)
    parser.add_argument("--keep")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    extra = args.args[1:] if args.args[:1] == ["--"] else args.args
    review = extra or ["--advise-on", "never", "--shadow", "auto", "--no-cache"]
    with tempfile.TemporaryDirectory(prefix="shadow-phases-") as scratch:
        log = args.keep or os.path.join(scratch, "strace")
        command = ["strace", "-f", "--seccomp-bpf", "-tt", "-s", "60", "-o", log,
                   "-e", "trace=execve,exit_group,connect,sendto",
                   args.bin, "review", "--format", "json", *review, args.dir]
        run = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode not in (0, 1):
            sys.exit(f"shadow_phases: `{' '.join(command)}` exited with {run.returncode}: {run.stderr[-2000:]}")
        with open(log) as trace:
            marks, resets = phases(trace.read().splitlines())
    for at, what in marks:
        print(f"{at:9.3f}  {what}")
    print(f"{len(resets)} migrations")
    if args.every and len(resets) > args.every:
        for first in range(0, len(resets) - 1, args.every):
            last = min(first + args.every, len(resets) - 1)
            per = (resets[last] - resets[first]) / (last - first) * 1000
            print(f"migrations {first + 1}-{last + 1}: {per:.1f} ms each")


if __name__ == "__main__":
    main()
