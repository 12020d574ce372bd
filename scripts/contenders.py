"""What the scripts in scripts/ share: the worldhost release binary, the wasmtime 48 CLI
(installed into a folder of the benchmarks' own, outside the tracked files), the guests built
from tests/guests, and a description of the machine."""

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(os.environ.get("WORLDHOST_BENCH_DIR", ROOT / "bench"))
WASMTIME_VERSION = "48.0.8"


def sh(*cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, **kw)


def wasmtime_binary() -> Path:
    """wasmtime-cli 48.0.8, installed by `cargo install --locked` on first use."""
    root = BENCH / f"wasmtime-{WASMTIME_VERSION}"
    binary = root / "bin" / "wasmtime"
    if not binary.exists():
        sh("cargo", "install", f"wasmtime-cli@{WASMTIME_VERSION}", "--locked", "--root", str(root))
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    if WASMTIME_VERSION not in out.stdout:
        sys.exit(f"{binary} is {out.stdout.strip()}, not {WASMTIME_VERSION}")
    return as_read_from_disk(binary)


def worldhost_binary() -> Path:
    """The working tree's worldhost, built and copied into the bench folder, as the baseline
    is (baseline_binary), and dropped from the page cache like it (as_read_from_disk): a
    binary the linker has just written starts measurably slower (about 60 more page faults,
    0.3-0.6 ms, seen 2026-12-02) than one read from disk, which would be counted against
    whichever contender was linked last."""
    sh("cargo", "build", "--release", "-p", "worldhost", cwd=ROOT)
    binary = BENCH / "worldhost-working-tree"
    shutil.copy(ROOT / "target" / "release" / "worldhost", binary)
    return as_read_from_disk(binary)


def as_read_from_disk(binary: Path) -> Path:
    """Drops `binary` from the page cache, so that its first run reads it as any installed
    program is read (by the loader's readahead) and every contender starts from the same
    state. A file just written (by the linker, or by a copy) stays cached in the shape of its
    writes, and a run of it was seen 0.3 ms slower or faster than a run of the same bytes read
    from disk (2026-12-02), depending on which contender was copied last."""
    os.sync()
    fd = os.open(binary, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return binary


def baseline_binary(rev: str) -> Path:
    """worldhost as of git revision REV, to measure what a change did: built in a worktree under
    the bench folder, into a target folder the baselines share (bench/baseline-target), and
    copied out. Cargo names a workspace's units by their path inside the workspace, so two
    trees of this repository get the same unit names in one target folder, and a build of one
    takes the other's artifacts for fresh when its sources are older than them (the working
    tree's binary came out as a baseline's when they shared target/). So the working tree keeps
    target/, and a baseline's sources are touched before its build: its own crates are
    compiled again, the registry's are shared."""
    commit = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    tree = BENCH / f"baseline-{commit}"
    if not tree.exists():
        sh("git", "worktree", "add", "--detach", str(tree), commit, cwd=ROOT)
    sh("find", str(tree), "-path", str(tree / "target"), "-prune", "-o", "-type", "f",
       "-exec", "touch", "{}", "+")
    target = BENCH / "baseline-target"
    sh("cargo", "build", "--release", "-p", "worldhost", "--target-dir", str(target), cwd=tree)
    binary = BENCH / f"worldhost-{commit}"
    shutil.copy(target / "release" / "worldhost", binary)
    return as_read_from_disk(binary)


def guest(name: str, target_triple: str = "wasm32-wasip2") -> Path:
    """The guest tests/guests/NAME, built for wasm32-wasip2 (or wasm32-wasip1: a core module)
    into the bench folder."""
    target = BENCH / "guests-target"
    sh(
        "cargo", "build", "--quiet", "--release", "--target", target_triple, "-p", name,
        "--manifest-path", str(ROOT / "tests" / "guests" / "Cargo.toml"),
        env={**os.environ, "CARGO_TARGET_DIR": str(target)},
    )
    release = target / target_triple / "release"
    # A `bin` guest keeps its name; a `cdylib` one gets underscores.
    for file in (f"{name}.wasm", f"{name.replace('-', '_')}.wasm"):
        if (release / file).exists():
            return release / file
    sys.exit(f"guest {name} built, but no {name}.wasm in {release}")


def python_guest(name: str, world: str) -> Path:
    """The Python guest tests/guests-py/NAME, built for WORLD ("command" or "proxy") by
    componentize-py (installed by scripts/setup) into the bench folder, as the tests build it."""
    tool = ROOT / "target" / "py" / "bin" / "componentize-py"
    if not tool.exists():
        sh(str(ROOT / "scripts" / "setup"))
    work = BENCH / "python" / name
    work.mkdir(parents=True, exist_ok=True)
    # componentize-py bundles what is beside the app: an earlier build's __pycache__ would make
    # this one differ (18.46 MB against 18.43 for hello-py).
    shutil.rmtree(work / "__pycache__", ignore_errors=True)
    shutil.copy(ROOT / "tests" / "guests-py" / name / "app.py", work / "app.py")
    out = work / f"{name}.wasm"
    sh(str(tool), "-q", "-d", str(ROOT / "tests" / "guests-py" / "wit"), "-w", world,
       "componentize", "app", "-o", str(out), cwd=work, env={**os.environ, "RUST_BACKTRACE": "0"})
    return out


def clean_env() -> dict:
    """The environment both contenders run in: no RUST_BACKTRACE (it makes every wasmtime
    error capture a backtrace), no RUST_LOG, no OTEL_* (telemetry only where a benchmark
    turns it on)."""
    return {k: v for k, v in os.environ.items()
            if k not in ("RUST_BACKTRACE", "RUST_LOG") and not k.startswith("OTEL_")}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def write_section(name: str, section: str, doc_name: str = "BENCHMARKS.md",
                  title: str = "Benchmarks"):
    """Puts `section` into docs/DOC_NAME between this script's markers, replacing the previous
    figures of the same script and leaving the others."""
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    block = f"{begin}\n{section}\n{end}"
    doc = ROOT / "docs" / doc_name
    text = doc.read_text() if doc.exists() else (
        f"# {title}\n\nEvery figure here comes from a script in `scripts/`; rerun it to check.\n"
    )
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)
    print(f"wrote {doc}", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cmd, log: Path | None = None, env: dict | None = None):
    """Starts a server and returns once it prints its "Serving HTTP on" (or "Serving HTTPS on")
    line (never a sleep).
    The rest of its stderr goes to `log` (or nowhere), drained so that it never blocks."""
    proc = subprocess.Popen([str(c) for c in cmd], env={**clean_env(), **(env or {})},
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "Serving HTTP on" in line or "Serving HTTPS on" in line:
            break
    else:
        sys.exit(f"{cmd} did not start")

    def drain():
        with open(log or os.devnull, "w") as out:
            for line in proc.stderr:
                out.write(line)

    threading.Thread(target=drain, daemon=True).start()
    return proc


class Wrk:
    """What one wrk run measured: requests, requests/s, p50 and p99 (ms), responses that were
    not 2xx or 3xx, and socket errors."""

    def __init__(self, out: str):
        def latency(label):
            m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
            value, unit = float(m.group(1)), m.group(2)
            return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

        self.requests = int(re.search(r"(\d+) requests in", out).group(1))
        self.rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        self.p50, self.p99 = latency("50"), latency("99")
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        self.non_2xx = int(m.group(1)) if m else 0
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      out)
        self.socket_errors = sum(int(g) for g in m.groups()) if m else 0


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system, all threads) process PID has used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_command(url: str, duration: int, connections: int, threads: int = 2, headers=()):
    return ["wrk", "--latency", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
            *[part for header in headers for part in ("-H", header)], url]


def wrk(url: str, duration: int, connections: int, threads: int = 2, headers=()) -> Wrk:
    if not shutil.which("wrk"):
        sh("apt-get", "install", "-y", "-qq", "wrk")
    out = subprocess.run(wrk_command(url, duration, connections, threads, headers),
                         capture_output=True, text=True, check=True).stdout
    return Wrk(out)


class H2load:
    """What one h2load run (HTTP/2) measured: requests done, requests/s, mean time per request
    (ms), and requests that failed, errored or were not 2xx."""

    def __init__(self, out: str):
        m = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
        self.rps = float(m.group(1))
        m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                      r"(\d+) failed, (\d+) errored", out)
        self.requests = int(m.group(2))
        self.failed = int(m.group(4)) + int(m.group(5))
        m = re.search(r"status codes: (\d+) 2xx", out)
        self.failed += self.requests - int(m.group(1))
        m = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b", out)
        self.mean = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def h2load(url: str, duration: int, connections: int, streams: int) -> H2load:
    """h2load (Debian's nghttp2-client) on `url` for `duration` s: `connections` connections
    with `streams` streams open on each, 2 threads; over TLS (ALPN h2) for an https URL, with
    prior knowledge (h2c) for an http one."""
    if not shutil.which("h2load"):
        sh("apt-get", "install", "-y", "-qq", "nghttp2-client")
    out = subprocess.run(["h2load", "-D", str(duration), "-c", str(connections),
                          "-m", str(streams), "-t", "2", url],
                         capture_output=True, text=True, check=True).stdout
    return H2load(out)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and its key (P-256), made by openssl in `directory`."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not cert.exists():
        directory.mkdir(parents=True, exist_ok=True)
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
           "-days", "2", "-keyout", str(key), "-out", str(cert), stderr=subprocess.DEVNULL)
    return cert, key


def otlp_sink() -> str:
    """An OTLP/HTTP receiver on 127.0.0.1 that reads each export and answers 200 (in this
    process, on threads of its own); returns its endpoint. What a telemetry-on server sends its
    spans and metrics to, so that they are really encoded and sent."""
    import http.server

    class Sink(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"
