"""What the scripts in scripts/ share: the worldhost release binary, the wasmtime 48 CLI
(installed into a folder of the benchmarks' own, outside the tracked files), the guests built
from tests/guests, and a description of the machine."""

import os
import platform
import re
import subprocess
import sys
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
    return binary


def worldhost_binary() -> Path:
    sh("cargo", "build", "--release", "-p", "worldhost", cwd=ROOT)
    return ROOT / "target" / "release" / "worldhost"


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


def clean_env() -> dict:
    """The environment both contenders run in: no RUST_BACKTRACE (it makes every wasmtime
    error capture a backtrace), no RUST_LOG."""
    return {k: v for k, v in os.environ.items() if k not in ("RUST_BACKTRACE", "RUST_LOG")}


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


def write_section(name: str, section: str):
    """Puts `section` into docs/BENCHMARKS.md between this script's markers, replacing the
    previous figures of the same script and leaving the others."""
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    block = f"{begin}\n{section}\n{end}"
    doc = ROOT / "docs" / "BENCHMARKS.md"
    text = doc.read_text() if doc.exists() else (
        "# Benchmarks\n\nEvery figure here comes from a script in `scripts/`; rerun it to check.\n"
    )
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)
    print(f"wrote {doc}", file=sys.stderr)
