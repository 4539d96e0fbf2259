"""The notebooks' Rust kernel: evcxr, installed into .venv, with a build folder that stays warm.

evcxr builds each kernel's code in a fresh temporary folder, and its compilation cache skips
local crates, so every new kernel compiled the digits crate again before its first cell
answered: minutes on two cores. Here every kernel gets a build folder of its own under
.venv/evcxr-builds/ that outlives it (EVCXR_TMPDIR). The first kernel in a folder starts from a
copy of the folder `warm` compiled during setup, so the crate is already built there; two
kernels never share a folder (each holds a lock on its own while it runs).

    python rust_kernel.py install EVCXR_JUPYTER   # the kernel spec, in .venv (make notebooks-setup)
    python rust_kernel.py warm                    # compile the first cell once, and time it
    python rust_kernel.py launch EVCXR_JUPYTER CONNECTION_FILE   # what Jupyter runs (kernel.json)

Run with the virtual environment's Python; every path is inside that environment.
"""
import contextlib
import fcntl
import json
import os
import pathlib
import queue
import re
import shutil
import subprocess
import sys
import threading
import time

VENV = pathlib.Path(sys.prefix)
ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
KERNELS = VENV / "share" / "jupyter"
BUILDS = VENV / "evcxr-builds"
WARM = BUILDS / "warm"
# Set by `warm` for the kernel it starts: build in WARM itself rather than in a copy of it.
BUILD_ENV = "DIGITS_KERNEL_BUILD"
SLOTS = 32


def install(evcxr):
    """Write the `rust` kernel spec into .venv, launching evcxr through this script."""
    env = dict(os.environ, JUPYTER_PATH=str(KERNELS))
    # evcxr writes its logos and front-end files; the spec's command is then replaced.
    subprocess.run([evcxr, "--install"], env=env, check=True, stdout=subprocess.DEVNULL)
    spec_path = KERNELS / "kernels" / "rust" / "kernel.json"
    spec = json.loads(spec_path.read_text())
    spec["argv"] = [sys.executable, str(pathlib.Path(__file__).resolve()), "launch",
                    str(pathlib.Path(evcxr).resolve()), "{connection_file}"]
    spec["display_name"] = "Rust"
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    print(f"kernel spec `rust` written to {spec_path.parent}")


def take_build_folder():
    """A build folder no running kernel holds, locked for this process's life, and its lock."""
    BUILDS.mkdir(parents=True, exist_ok=True)
    names = ["warm"] if os.environ.get(BUILD_ENV) == "warm" else [f"kernel-{i}" for i in range(SLOTS)]
    for name in names:
        fd = os.open(BUILDS / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return BUILDS / name, fd
    sys.exit(f"all {len(names)} build folders in {BUILDS} are in use by running kernels; "
             "shut some down (Kernel > Shut Down Kernel) and start again")


def start_from_warm(folder):
    """Give a new build folder the warm build, copied whole (a copy cut short is thrown away)."""
    if folder == WARM or (folder / "target").exists() or not (WARM / "target").exists():
        return
    partial = folder.with_name(folder.name + ".copying")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(WARM), str(partial)], check=True)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def drop_idle_copies():
    """Delete the kernels' build folders that no running kernel holds: each was copied from an
    older warm build, and the next kernel copies the new one instead."""
    for lock in BUILDS.glob("kernel-*.lock"):
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        else:
            shutil.rmtree(lock.with_suffix(""), ignore_errors=True)
        finally:
            os.close(fd)


def launch(evcxr, connection_file):
    folder, fd = take_build_folder()
    start_from_warm(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.set_inheritable(fd, True)  # the lock is held until evcxr itself exits
    env = dict(os.environ, EVCXR_TMPDIR=str(folder), JUPYTER_PATH=str(KERNELS))
    os.execve(evcxr, [evcxr, "--control_file", connection_file], env)


def first_cells():
    """The first code cell every notebook starts with (they must all be the same, so that the
    warm build is the one each of them needs), and the second cell warm() runs after it."""
    import nbformat
    firsts = {}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        firsts[path.name] = next(c.source for c in nb.cells if c.cell_type == "code")
    distinct = set(firsts.values())
    if len(distinct) != 1:
        sys.exit("the notebooks' first code cells differ, so one warm build cannot serve them all: "
                 + "; ".join(f"{k}: {v!r}" for k, v in firsts.items()))
    return distinct.pop(), 'println!("{}", digits::notebook::Notebook::from_env().describe());'


def crates_to_build():
    """How many crates the digits library needs, for the progress line (None if unknown)."""
    try:
        out = subprocess.run(
            ["cargo", "tree", "--offline", "--no-default-features", "-e", "normal,build",
             "--prefix", "none", "--manifest-path", str(ROOT / "crate" / "Cargo.toml")],
            capture_output=True, text=True, timeout=120, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return len({line.split(" (")[0] for line in out.splitlines() if line.strip()})


def crates_compiled(log):
    """How many crates evcxr has started compiling, and the last one, from its log."""
    try:
        names = re.findall(r"^\s*Compiling (\S+)", log.read_text(errors="replace"), re.M)
    except OSError:
        return 0, ""
    return len(names), names[-1] if names else ""


def run_cell(kc, code, timeout, progress=None):
    """Execute code; return (seconds, error line or None, text printed)."""
    done = queue.Queue()
    outputs = []

    def hook(msg):
        kind = msg["msg_type"]
        if kind == "stream":
            outputs.append(msg["content"]["text"])
        elif kind == "error":
            outputs.append("\n".join(msg["content"].get("traceback") or [msg["content"].get("evalue", "")]))

    def execute():
        try:
            done.put(kc.execute_interactive(code, timeout=timeout, output_hook=hook))
        except Exception as e:  # a timeout, or the kernel died
            done.put(e)

    start = time.monotonic()
    threading.Thread(target=execute, daemon=True).start()
    while True:
        try:
            reply = done.get(timeout=2)
            break
        except queue.Empty:
            if progress:
                progress(time.monotonic() - start)
    took = time.monotonic() - start
    if isinstance(reply, Exception):
        return took, f"{type(reply).__name__}: {reply}", "".join(outputs)
    content = reply["content"]
    if content.get("status") != "ok":
        return took, "".join(outputs).strip() or content.get("evalue", "error"), "".join(outputs)
    return took, None, "".join(outputs)


@contextlib.contextmanager
def running_kernel(build, log):
    """A Rust kernel started as Jupyter starts it (its kernel spec), its messages into log; the
    client is yielded, and the kernel shut down after."""
    from jupyter_client.manager import start_new_kernel
    env = dict(os.environ)
    env.pop(BUILD_ENV, None)
    if build:
        env[BUILD_ENV] = build
    with open(log, "w") as out:
        km, kc = start_new_kernel(kernel_name="rust", startup_timeout=600, cwd=str(NOTEBOOKS),
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def minutes(s):
    return f"{int(s // 60)}:{int(s % 60):02d}"


def warm(timeout):
    """Compile the notebooks' first cell in the warm folder, then time it in a new kernel."""
    first, second = first_cells()
    total = crates_to_build()
    tty = sys.stdout.isatty()

    log = BUILDS / "warm.log"

    printed = [0.0]

    def progress(elapsed):
        built, last = crates_compiled(log)
        of = f"{built} of about {total}" if total else f"{built}"
        line = f"  {minutes(elapsed)} compiling the crate inside evcxr: {of} crates ({last})"
        if tty:
            print("\r" + line.ljust(110), end="", flush=True)
        elif elapsed - printed[0] >= 30:  # a log, not a terminal: a line every 30 s
            printed[0] = elapsed
            print(line, flush=True)

    BUILDS.mkdir(parents=True, exist_ok=True)
    print(f"warming the notebooks' kernel in {WARM} (the first time: minutes; then seconds)")
    with running_kernel("warm", log) as kc:
        took_first, err, _ = run_cell(kc, first, timeout, progress)
        if tty:
            print()
        if err:
            sys.exit(f"the notebooks' first cell failed in the warm-up: {err} (evcxr's log: {log})")
        took_second, err, out = run_cell(kc, second, timeout)
        if err:
            sys.exit(f"a cell using the crate failed in the warm-up: {err}")
    drop_idle_copies()
    print(f"  warm build ready: first cell {took_first:.0f} s, then `{second}` {took_second:.1f} s ({out.strip()})")
    # What a person gets: a new kernel, in a build folder of its own copied from the warm one.
    start = time.monotonic()
    with running_kernel(None, BUILDS / "kernel.log") as kc:
        started = time.monotonic() - start
        took, err, _ = run_cell(kc, first, timeout)
        if err:
            sys.exit(f"the first cell failed in a new kernel: {err}")
    print(f"a new kernel started in {started:.0f} s and ran the notebooks' first cell in {took:.0f} s")


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "launch" and len(sys.argv) == 4:
        launch(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "install":
        install(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "warm":
        sys.stdout.reconfigure(line_buffering=True)
        warm(float(os.environ.get("WARM_TIMEOUT", 3600)))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
