"""Shared helpers of the benchmark scripts: the local stack's settings,
timing a command with GNU time, medians, tables."""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "target" / "release"
# SITEWATCH_BENCH_BINARY: measure another build (an older one, for a
# before/after figure) with the same script; this repository's release
# build otherwise.
SITEWATCH = Path(os.environ.get("SITEWATCH_BENCH_BINARY") or RELEASE / "sitewatch")


def use_the_stack_python():
    """The benchmarks' Python packages (confluent-kafka) live in the local
    stack's virtual environment, never in the system interpreter: a script
    started with another Python runs itself again with that one."""
    import importlib.util
    if importlib.util.find_spec("confluent_kafka") is not None:
        return
    found = subprocess.run([REPO / "scripts" / "stack", "python"], capture_output=True, text=True)
    python = found.stdout.strip()
    if found.returncode != 0 or not python:
        sys.exit("bench: cannot set up the stack's Python: " + found.stderr)
    # A virtual environment's python links to the base one: compare prefixes.
    if os.path.realpath(sys.prefix) == os.path.realpath(os.path.dirname(os.path.dirname(python))):
        sys.exit("bench: the stack's Python has no confluent-kafka: run scripts/stack install")
    os.execv(python, [python] + sys.argv)


use_the_stack_python()


def say(*parts):
    print("bench:", *parts, file=sys.stderr, flush=True)


def stack_env():
    """The SITEWATCH_* settings of the running local stack (`scripts/stack env`);
    installs GNU time, which every script times with, when it is missing."""
    ensure(("/usr/bin/time", "time"))
    status = subprocess.run([REPO / "scripts" / "stack", "status"], capture_output=True, text=True)
    if status.returncode != 0:
        sys.exit("bench: the local stack is not up: run `scripts/stack up` first\n" + status.stderr)
    out = subprocess.run([REPO / "scripts" / "stack", "env"], capture_output=True, text=True, check=True).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            env[key] = value.strip('"')
    return env


def ensure(*needs):
    """Installs the Debian packages behind missing programs, given as
    (path, package) pairs: as root with apt-get, else says what to install."""
    missing = [package for path, package in needs if not os.path.exists(path)]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"bench: missing {', '.join(missing)}: sudo apt-get install {' '.join(missing)}")
    say("installing", *missing)
    quiet = {"stdout": subprocess.DEVNULL}
    subprocess.run(["apt-get", "update", "-qq"], check=True, **quiet)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), **quiet)


def build(*examples):
    ours = SITEWATCH == RELEASE / "sitewatch"
    if not ours and not examples:
        return
    say("building sitewatch (release)" if ours else "building", *examples)
    cmd = ["cargo", "build", "--release", "--quiet"] + (["--bin", "sitewatch"] if ours else [])
    for e in examples:
        cmd += ["--example", e]
    subprocess.run(cmd, cwd=REPO, check=True)


def timed(cmd, env=None, cwd=None, stdout=subprocess.DEVNULL):
    """Runs cmd under GNU time: wall seconds, peak RSS in MB, CPU seconds,
    exit code and stderr."""
    tfile = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-time-{os.getpid()}"
    full = ["/usr/bin/time", "-o", str(tfile), "-f", "%e %M %U %S"] + [str(c) for c in cmd]
    p = subprocess.run(full, env=env, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True)
    fields = tfile.read_text().split()[-4:]
    tfile.unlink()
    wall, rss_kb, user, system = float(fields[0]), int(fields[1]), float(fields[2]), float(fields[3])
    return {
        "wall": wall,
        "rss_mb": rss_kb / 1024,
        "cpu": user + system,
        "code": p.returncode,
        "stderr": p.stderr,
        "stdout": p.stdout if stdout == subprocess.PIPE else None,
    }


def psql_command(env, db, sql):
    """The local stack's psql running `sql` on `db` in UTC, unaligned,
    tuples only, stopping at the first error."""
    import shlex
    return shlex.split(env["STACK_PSQL"]) + ["-d", db, "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                                             "-c", "SET timezone = 'UTC'", "-c", sql]


def psql(env, db, sql):
    """psql_command's output, stripped; a failure ends the benchmark with
    psql's message."""
    out = subprocess.run(psql_command(env, db, sql), env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench: psql failed: {out.stderr.strip()}")
    return out.stdout.strip()


def median(values):
    return statistics.median(values)


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def wait_for(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    sys.exit(f"bench: {what} did not happen within {timeout:.0f} s")


def machine():
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split()[1]
    return f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1024 // 1024} GiB"


class Targets:
    """examples/bench_targets serving `sites` sites, in processes of at most
    CHUNK sites each (a process may not have more open files than that);
    `list` is every target, `ca` one PEM file with every CA."""

    CHUNK = 15000

    def __init__(self, work, sites, delay_ms=100, https_every=10):
        self.procs = []
        self.list = []
        env = dict(os.environ, BENCH_TARGETS_HTTPS_EVERY=str(https_every))
        try:
            for first in range(0, sites, self.CHUNK):
                count = min(self.CHUNK, sites - first)
                p = subprocess.Popen([RELEASE / "examples" / "bench_targets", work, str(count),
                                      str(delay_ms), str(first)], stdout=subprocess.PIPE, text=True,
                                     env=env)
                self.procs.append(p)
                if p.stdout.readline().strip() != "ready":
                    sys.exit("bench: bench_targets did not start")
                self.list += json.loads((Path(work) / f"targets-{first}.json").read_text())
            self.ca = Path(work) / "ca.pem"
            self.ca.write_text("".join((Path(work) / f"ca-{f}.pem").read_text()
                                       for f in range(0, sites, self.CHUNK)))
        except BaseException:
            self.close()
            raise

    def close(self):
        for p in self.procs:
            p.terminate()
            p.wait()
