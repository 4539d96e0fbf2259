"""Open the notebooks in JupyterLab with no person at the keyboard, and check that they work.

Starts `jupyter lab` from the virtual environment headless (127.0.0.1 only, a free port, a
random token, no browser) on notebooks/, with DIGITS_QUICK=1 in its environment, then checks
through the server's REST API and a kernel websocket, the way the Lab front-end talks to it:

1. the server answers (GET /api/status) and serves the Lab page (GET /lab);
2. the Rust kernel is installed (GET /api/kernelspecs lists "rust");
3. notebook 1 is served and is a valid notebook (GET /api/contents/01-mlp.ipynb);
4. a Rust kernel starts (POST /api/kernels) and, over /api/kernels/ID/channels, runs notebook
   1's code cells in order, each with status ok, until a cell of Rust code (not only evcxr
   `:` commands) produces an output. That compiles the digits crate inside evcxr (minutes when
   evcxr's cache is cold) and loads the quick-mode data through it.

The kernel is deleted and the server stopped at the end, whatever happened. Fails with a
one-line reason (after any details: compiler errors, the end of the server's log).

Usage (from the repository root, after `make notebooks-setup` and `make data`):
    .venv/bin/python notebooks/tests/check_lab.py [--timeout SECONDS] [--code 'println!("hi")']
`--code` runs the given cell(s) instead of notebook 1's (a quick check of the protocol), in the
kernel named by `--kernel` (default rust).
"""
import argparse
import datetime
import json
import os
import pathlib
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import nbformat
import websocket

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK = "01-mlp.ipynb"
KERNEL = "rust"


class Failed(Exception):
    pass


class CellFailed(Failed):
    """A cell ran and answered an error: its outputs say why, not the server's log."""


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A headless `jupyter lab` on 127.0.0.1, reached with its token."""

    def __init__(self, scratch, quick=True, env_extra=None, args_extra=()):
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = scratch / "server.log"
        env = dict(os.environ)
        if quick:
            env["DIGITS_QUICK"] = "1"
        else:
            env.pop("DIGITS_QUICK", None)
        env.update(env_extra or {})
        # Settings, workspaces and runtime files in a scratch folder, not the user's; kernel
        # specs are still found where `evcxr_jupyter --install` put them.
        env["JUPYTER_CONFIG_DIR"] = str(scratch / "config")
        env["JUPYTER_RUNTIME_DIR"] = str(scratch / "runtime")
        jupyter = pathlib.Path(sys.executable).parent / "jupyter"
        cmd = [
            str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--notebook-dir={NOTEBOOKS}", *args_extra,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # CI runs as root; jupyter refuses to without this
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=NOTEBOOKS, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def request(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            kind = resp.headers.get("Content-Type", "")
            return resp.status, (json.loads(raw) if raw and "json" in kind else raw)

    def wait_ready(self, deadline):
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failed(f"jupyter lab exited with code {self.proc.returncode} before answering")
            try:
                status, _ = self.request("GET", "/api/status", timeout=5)
                if status == 200:
                    return
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            time.sleep(0.5)
        raise Failed("jupyter lab did not answer /api/status in time")

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group this script started
                self.proc.wait()
        self.log.close()


class Kernel:
    """A kernel started through the server, driven over its websocket channels."""

    def __init__(self, server, name, deadline):
        self.server = server
        # path "" (the notebooks folder): the kernel runs there, as for a notebook opened in
        # Lab, so the notebooks' relative paths (../crate, ../data) hold.
        status, model = server.request("POST", "/api/kernels", {"name": name, "path": ""})
        if status not in (200, 201) or not isinstance(model, dict) or "id" not in model:
            raise Failed(f"POST /api/kernels answered {status}: {model!r:.200}")
        self.id = model["id"]
        self.session = uuid.uuid4().hex
        url = (f"ws://127.0.0.1:{server.port}/api/kernels/{self.id}/channels"
               f"?session_id={self.session}")
        self.ws = websocket.create_connection(
            url, header=[f"Authorization: token {server.token}"],
            timeout=max(1.0, deadline - time.monotonic()))

    def send(self, msg_type, content):
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": msg_type, "session": self.session,
                       "username": "lab-test", "version": "5.3",
                       "date": datetime.datetime.now(datetime.timezone.utc).isoformat()},
            "parent_header": {}, "metadata": {}, "content": content,
            "channel": "shell", "buffers": [],
        }))
        return msg_id

    def replies(self, msg_id, deadline, what):
        """Yield the messages answering msg_id until the deadline."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"timed out waiting for {what}")
            self.ws.settimeout(left)
            try:
                frame = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                raise Failed(f"timed out waiting for {what}") from None
            except websocket.WebSocketConnectionClosedException:
                raise Failed(f"the kernel websocket closed while waiting for {what}") from None
            if not isinstance(frame, str):
                continue  # binary frames carry buffers, which these messages do not need
            msg = json.loads(frame)
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                yield msg

    def info(self, deadline):
        msg_id = self.send("kernel_info_request", {})
        for msg in self.replies(msg_id, deadline, "the kernel's kernel_info_reply"):
            if msg["msg_type"] == "kernel_info_reply":
                return msg["content"]

    def execute(self, code, deadline, what):
        """Run code; return (reply content, outputs) once the reply and idle have both come."""
        msg_id = self.send("execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True,
        })
        reply, idle, outputs = None, False, []
        for msg in self.replies(msg_id, deadline, what):
            kind = msg["msg_type"]
            if kind == "execute_reply":
                reply = msg["content"]
            elif kind == "status" and msg["content"].get("execution_state") == "idle":
                idle = True
            elif kind in ("stream", "execute_result", "display_data", "error"):
                outputs.append((kind, msg["content"]))
            if reply is not None and idle:
                return reply, outputs

    def delete(self):
        try:
            self.ws.close()
        finally:
            self.server.request("DELETE", f"/api/kernels/{self.id}")


def output_text(kind, content):
    if kind == "stream":
        return content.get("text", "")
    if kind == "error":
        return "\n".join(content.get("traceback") or [f"{content.get('ename')}: {content.get('evalue')}"])
    data = content.get("data", {})
    if "text/plain" in data:
        return data["text/plain"]
    return f"<{', '.join(sorted(data))}>"


def error_line(reply, outputs):
    """One line saying why a cell failed: the reply's or an error output's name and value, else
    the first line of its traceback (evcxr puts the compiler's message there)."""
    for content in [reply] + [c for k, c in outputs if k == "error"]:
        reason = f"{content.get('ename') or ''}: {content.get('evalue') or ''}".strip(": \n")
        if reason:
            return ANSI.sub("", reason.splitlines()[0])
        for line in content.get("traceback") or []:
            if ANSI.sub("", line).strip():
                return ANSI.sub("", line).strip().splitlines()[0]
    return "no reason given"


def only_commands(code):
    """True for a cell of evcxr `:` commands only (e.g. `:dep`), which runs no Rust code."""
    lines = [l.strip() for l in code.splitlines() if l.strip() and not l.strip().startswith("//")]
    return all(l.startswith(":") for l in lines)


def short(code, n=60):
    one = " / ".join(l.strip() for l in code.strip().splitlines())
    return one if len(one) <= n else one[: n - 3] + "..."


def run(args, scratch, passed):
    start = time.monotonic()
    deadline = start + args.timeout
    server = Server(scratch)
    kernel = None
    failed, show_log = True, True
    try:
        server.wait_ready(min(deadline, time.monotonic() + 180))
        status, page = server.request("GET", "/lab")
        if status != 200 or b"jupyterlab" not in page.lower():
            raise Failed(f"GET /lab answered {status} without the JupyterLab page")
        print(f"jupyter lab answered on 127.0.0.1:{server.port} in "
              f"{time.monotonic() - start:.1f} s and serves /lab")
        passed.append("server")

        _, specs = server.request("GET", "/api/kernelspecs")
        names = sorted(specs.get("kernelspecs", {}))
        if args.kernel not in names:
            raise Failed(f"no '{args.kernel}' kernel in /api/kernelspecs (have {names}); "
                         "run `make notebooks-setup` (evcxr_jupyter --install)")
        print(f"/api/kernelspecs lists {names}")
        passed.append("kernelspec")

        _, model = server.request("GET", f"/api/contents/{NOTEBOOK}")
        if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
            raise Failed(f"/api/contents/{NOTEBOOK} is not a notebook (type {model.get('type')!r})")
        try:
            nb = nbformat.from_dict(model["content"])
            nbformat.validate(nb)
        except Exception as e:  # nbformat's ValidationError and friends
            raise Failed(f"{NOTEBOOK} as served does not validate: {str(e).splitlines()[0]}") from None
        if nb.metadata.get("kernelspec", {}).get("name") != KERNEL:
            raise Failed(f"{NOTEBOOK} does not name the '{KERNEL}' kernel")
        cells = [c.source for c in nb.cells if c.cell_type == "code"]
        print(f"/api/contents/{NOTEBOOK}: a valid notebook, {len(nb.cells)} cells, {len(cells)} of code")
        passed.append("contents")

        if args.code:
            cells, source = args.code, "--code"
        else:
            source = NOTEBOOK
        kernel = Kernel(server, args.kernel, deadline)
        info = kernel.info(min(deadline, time.monotonic() + 180))
        print(f"kernel {kernel.id[:8]} started: {info.get('implementation')} "
              f"{info.get('implementation_version')}, {info.get('language_info', {}).get('name')}")
        for i, code in enumerate(cells, 1):
            t = time.monotonic()
            what = f"{source} code cell {i} ({short(code)})"
            reply, outputs = kernel.execute(code, deadline, what)
            took = time.monotonic() - t
            if reply.get("status") != "ok":
                for kind, content in outputs:
                    print(ANSI.sub("", output_text(kind, content)), file=sys.stderr)
                first = error_line(reply, outputs)
                raise CellFailed(f"{what} ended with status {reply.get('status')!r} after "
                             f"{took:.0f} s: {first[:200]}")
            shown = [(k, c) for k, c in outputs if k in ("stream", "execute_result", "display_data")]
            text = " | ".join(short(output_text(k, c), 80) for k, c in shown) or "no output"
            print(f"{what}: ok in {took:.1f} s: {text}")
            if shown and (args.code or not only_commands(code)):
                passed.append("execute")
                break
        else:
            raise Failed(f"no code cell of {source} produced an output")
        print(f"lab test passed in {time.monotonic() - start:.0f} s")
        failed = False
    except CellFailed:
        show_log = False
        raise
    finally:
        if kernel is not None:
            try:
                kernel.delete()
            except Exception as e:
                print(f"(deleting the kernel: {e})", file=sys.stderr)
        server.stop()
        if failed and show_log:
            tail = server.log_tail()
            if tail:
                print("--- end of the jupyter lab log ---\n" + tail + "\n---", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float,
                        default=float(os.environ.get("LAB_TEST_TIMEOUT", 1200)),
                        help="seconds for the whole test (default 1200, or $LAB_TEST_TIMEOUT)")
    parser.add_argument("--code", action="append",
                        help="run this cell instead of notebook 1's (repeatable)")
    parser.add_argument("--kernel", default=KERNEL,
                        help=f"the kernel to start (default {KERNEL}; another only with --code)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows as it happens under make/CI

    def stopped(signum, _frame):  # let the finally clauses delete the kernel and stop the server
        raise Failed(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stopped)
    signal.signal(signal.SIGINT, stopped)
    if args.kernel != KERNEL and not args.code:
        parser.error("--kernel other than rust needs --code")
    passed = []
    checks = 4
    with tempfile.TemporaryDirectory(prefix="digits-lab-test-") as scratch:
        try:
            run(args, pathlib.Path(scratch), passed)
        except Failed as e:
            print(f"lab: {len(passed)} passed, 1 failed", file=sys.stderr)
            print(f"lab test FAILED: {e}", file=sys.stderr)
            sys.exit(1)
        except (urllib.error.URLError, OSError, websocket.WebSocketException, ValueError) as e:
            print(f"lab: {len(passed)} passed, 1 failed", file=sys.stderr)
            print(f"lab test FAILED: {type(e).__name__}: {e}", file=sys.stderr)
            sys.exit(1)
    print(f"lab: {checks} passed, 0 failed")


if __name__ == "__main__":
    main()
