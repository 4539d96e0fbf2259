"""Open the notebooks in a real browser as a newcomer would, and check what they see.

Starts JupyterLab headless from the virtual environment (127.0.0.1, a free port, a random
token, full mode) and drives Debian's chromium through Playwright (from PyPI; no browser is
ever downloaded):

1. notebook 1 opens with no pop-up over it (the news question is switched off in .venv);
2. its first code cells run by Shift+Enter, one after the other: the first one (`:dep
   digits`, compiled by `make notebooks-setup`'s warm-up) finishes, and the digit grid's
   figure appears in the output area as an image;
3. notebook 5 runs from top to bottom by Run > Run All Cells, with none of the study's runs
   (an empty runs folder), and no cell ends in an error;
4. no tracked file under img/, results/, notebooks/ or runs/ changed (JupyterLab's autosave
   is off in .venv, and full mode writes figures to the git-ignored notebooks/out/).

Screenshots go to the folder it prints. Ends with one line of what it saw, and
`browser: N passed, N failed`.

Usage (from the repository root, after `make notebooks-setup` and `make data`):
    .venv/bin/python notebooks/tests/check_browser.py [--timeout SECONDS]
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from check_lab import Failed, Server, ROOT  # noqa: E402  (one headless server for both tests)

from playwright.sync_api import sync_playwright  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# Chromium as root in a container, with nothing reaching out to the network by itself.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TRACKED = ["img", "results", "notebooks", "runs"]
NEWS = re.compile(r"official Jupyter news|notified about", re.I)


def tracked_changes():
    out = subprocess.run(["git", "status", "--porcelain", "--", *TRACKED], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return sorted(line for line in out.splitlines() if line.strip())


class Lab:
    """One JupyterLab page in chromium."""

    def __init__(self, page, server, shots):
        self.page, self.server, self.shots = page, server, shots

    def shot(self, name):
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path

    def open(self, notebook, timeout):
        # A workspace of its own, reset: this notebook alone, as a newcomer opens it.
        stem = notebook.split(".")[0]
        self.page.goto(f"{self.server.base}/lab/workspaces/{stem}/tree/{notebook}"
                       f"?reset&token={self.server.token}", timeout=timeout * 1000)
        self.notebook = notebook
        self.wait(lambda: self.app("path") == notebook, timeout, f"{notebook} to open")
        self.wait_for_kernel(timeout)
        # Start from clean prompts: the notebooks are committed with a full run's outputs.
        self.page.evaluate("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
        self.wait(lambda: self.unrun() == len(self.app("model")["cells"]) - self.markdown(), 30,
                  f"{notebook}'s outputs to clear")

    def wait_for_kernel(self, timeout):
        """Wait until the notebook's kernel is idle (up). JupyterLab can ask which kernel to
        start, when it opens a notebook before the server has listed its kernels: a person
        accepts the one it offers, and so does this test. On a timeout, the kernel's status and
        what was on screen go into the message, and a screenshot is saved."""
        def up():
            self.accept_kernel_question()
            return self.app("kernel_status") == "idle"
        try:
            self.wait(up, timeout, f"the Rust kernel to start in {self.notebook}")
        except Failed as e:
            shot = self.shot(f"{self.notebook.split('.')[0]}-no-kernel")
            raise Failed(f"{e}: kernel status {self.app('kernel_status')!r}, "
                         f"on screen {self.popups() or 'no dialog'} ({shot})") from None

    def accept_kernel_question(self):
        """Accept JupyterLab's 'Select Kernel' question, if it is on screen."""
        dialog = self.page.locator(".jp-Dialog")
        if dialog.count() and re.search(r"select kernel", dialog.first.inner_text(), re.I):
            dialog.first.locator(".jp-mod-accept").click()
            print(f"{self.notebook}: JupyterLab asked which kernel to start; "
                  "accepted the one it offered")

    def markdown(self):
        return sum(c["cell_type"] != "code" for c in self.app("model")["cells"])

    def unrun(self):
        """How many code cells have no execution count (never ran since the outputs were cleared)."""
        return sum(c["cell_type"] == "code" and c.get("execution_count") is None
                   for c in self.app("model")["cells"])

    def app(self, what):
        """Read the open notebook's state through JupyterLab's own model."""
        return self.page.evaluate(
            """(what) => {
                const app = window.jupyterapp;
                const panel = app && app.shell.currentWidget;
                if (!panel || !panel.content || !panel.sessionContext) return null;
                if (what === 'path') return panel.context.path;
                if (what === 'kernel_status') {
                    const k = panel.sessionContext.session && panel.sessionContext.session.kernel;
                    return k ? k.status : null;
                }
                return panel.content.model.toJSON();
            }""", what)

    def wait(self, ok, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ok():
                return
            time.sleep(0.5)
        raise Failed(f"timed out after {timeout:.0f} s waiting for {what}")

    def code_cells(self):
        return self.page.locator(".jp-Notebook .jp-CodeCell")

    def prompt(self, cell):
        return cell.locator(".jp-InputPrompt").inner_text().strip()

    def popups(self):
        """Text of anything floating over the notebook: toasts and dialogs."""
        nodes = self.page.locator(".Toastify__toast, .jp-Dialog, .jp-toast-message")
        return [nodes.nth(i).inner_text() for i in range(nodes.count())]

    def errors(self):
        nb = self.app("model")
        bad = []
        for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    bad.append(f"code cell {i + 1}: {out.get('ename', '')}: {out.get('evalue', '')}"[:300])
        return bad


def run_first_cells(lab, timeout, cells):
    """Shift+Enter through the first `cells` code cells; the seconds of each."""
    times = []
    code = lab.code_cells()
    code.nth(0).locator(".jp-InputArea-editor").click()
    lab.page.keyboard.press("Escape")  # command mode: Shift+Enter runs the cell and moves on
    for i in range(cells):
        cell = code.nth(i)
        cell.locator(".jp-InputPrompt").click()
        start = time.monotonic()
        lab.page.keyboard.press("Shift+Enter")
        lab.wait(lambda: re.fullmatch(r"\[\d+\]:", lab.prompt(cell)) is not None, timeout,
                 f"notebook 1's code cell {i + 1} to finish")
        times.append(time.monotonic() - start)
        if lab.errors():
            raise Failed(f"notebook 1 failed: {lab.errors()[0]}")
    return times


def run_all(lab, timeout):
    lab.page.get_by_role("menuitem", name="Run", exact=True).click()
    lab.page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
    start = time.monotonic()
    time.sleep(2)

    def finished():
        prompts = [lab.prompt(lab.code_cells().nth(i)) for i in range(lab.code_cells().count())]
        return "[*]:" not in prompts and lab.app("kernel_status") == "idle"

    lab.wait(finished, timeout, "notebook 5 to run to its end")
    return time.monotonic() - start


def check(args, scratch, shots, passed):
    before = tracked_changes()
    runs = scratch / "no-runs"
    runs.mkdir()
    server = Server(scratch, quick=False, env_extra={"DIGITS_RUNS": str(runs)},
                    args_extra=["--LabApp.expose_app_in_browser=True"])
    try:
        server.wait_ready(time.monotonic() + 180)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            lab = Lab(page, server, shots)

            lab.open("01-mlp.ipynb", 180)
            time.sleep(3)  # the news question, when it is on, shows within a second or two
            floating = [t for t in lab.popups() if NEWS.search(t)]
            lab.shot("01-opened")
            if floating:
                raise Failed(f"a pop-up covers notebook 1: {floating[0][:120]!r}")
            passed.append("no pop-up")
            times = run_first_cells(lab, args.timeout, 3)
            figure = lab.code_cells().nth(2).locator(".jp-OutputArea-output img")
            lab.wait(lambda: figure.count() > 0, 30, "the digit grid's image in notebook 1")
            figure.first.scroll_into_view_if_needed()
            lab.shot("01-figure")
            passed.append("notebook 1")
            print(f"notebook 1: code cells took {', '.join(f'{t:.1f}' for t in times)} s; the figure is shown")

            lab.open("05-usps-domain-shift.ipynb", 180)
            took = run_all(lab, args.timeout)
            lab.shot("05-end")
            errors = lab.errors()
            if errors:
                raise Failed(f"notebook 5 without runs: {len(errors)} cells ended in an error, first {errors[0]}")
            if lab.unrun():
                raise Failed(f"notebook 5 without runs: {lab.unrun()} code cells did not run")
            images = lab.page.locator(".jp-OutputArea-output img").count()
            passed.append("notebook 5")
            print(f"notebook 5 without runs: all cells ran in {took:.0f} s, {images} figures shown")
            browser.close()
    finally:
        server.stop()
    after = tracked_changes()
    if after != before:
        raise Failed(f"tracked files changed: {sorted(set(after) - set(before))}")
    passed.append("tracked files")
    return times[0], errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("BROWSER_TEST_TIMEOUT", 1200)),
                        help="seconds any one step may take (default 1200)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit(f"no {CHROMIUM}: install Debian's chromium (apt-get install -y chromium)")
    shots = ROOT / "notebooks" / "out" / "browser-test"
    shots.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {shots}")
    passed, checks = [], 4
    with tempfile.TemporaryDirectory(prefix="digits-browser-test-") as scratch:
        try:
            first, errors = check(args, pathlib.Path(scratch), shots, passed)
        except Failed as e:
            print(f"browser test FAILED: {e}", file=sys.stderr)
            print(f"browser: {len(passed)} passed, 1 failed")
            sys.exit(1)
    print(f"notebook 1: first cell {first:.0f} s, figure shown, no pop-up; "
          f"notebook 5 without runs/: {len(errors)} errors; tracked files unchanged")
    print(f"browser: {checks} passed, 0 failed")


if __name__ == "__main__":
    main()
