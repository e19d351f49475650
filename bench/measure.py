"""Running a benchmarked command: wall time and peak resident memory of the child process."""

import collections
import os
import signal
import tempfile
import time

Measured = collections.namedtuple("Measured", "code stdout stderr seconds cpu_seconds peak_bytes")


def run(command, timeout):
    """Runs `command` (its first element a path) to completion; its exit code, output, wall time, CPU
    time (user + system: what a loaded machine disturbs least) and peak RSS (getrusage of the child,
    via wait4). `None` when it is still running after `timeout`
    seconds: it is killed."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        pid = os.posix_spawn(command[0], command, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
        ])
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            seconds = time.perf_counter() - started
            if done:
                break
            if seconds > timeout:
                os.kill(pid, signal.SIGKILL)
                os.wait4(pid, 0)
                return None
            time.sleep(0.002)
        out.seek(0)
        err.seek(0)
        return Measured(os.waitstatus_to_exitcode(status), out.read(), err.read(), seconds,
                        usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024)
