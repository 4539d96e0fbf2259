"""Open `digits draw`'s page in a real browser and draw on it as a person would.

Trains a quick MLP and CNN (one epoch each on part of MNIST, as `digits train` does, into a
temporary runs folder named as the study names its seed-0 runs), starts `digits draw` on a
free port of 127.0.0.1 and drives Debian's chromium through Playwright (from PyPI; no browser
is ever downloaded):

1. the page loads with no console error and asks nothing of any other host (no CDN);
2. a vertical stroke drawn with the mouse gets a reading: both preparations, both models,
   three digits each, and the framed 28×28 has its ink centred as MNIST's are; framed, both
   models read it as a 1;
3. after Clear, a small "7" drawn in the canvas's top-left corner gets a new reading: resized
   it keeps its small size, framed it is scaled up and centred, and the sentence says so;
4. one of the repository's example photos (notebooks/own-digits/), picked with the file
   input, gets a reading.

Screenshots go to notebooks/out/draw-test/ (git-ignored); with --export the "7" one is also
written to img/draw.png. Ends with `draw-browser: N passed, N failed`.

Usage (from the repository root, after `make data`):
    .venv/bin/python notebooks/tests/check_draw.py [--runs DIR] [--export]
`--runs DIR` uses the seed-0 runs in DIR (e.g. the study's runs/) instead of training quick
ones. The `digits` command is `cargo run --quiet --bin digits --` unless DIGITS names another.
"""
import argparse
import os
import pathlib
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# Chromium as root in a container, with nothing reaching out to the network by itself.
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"]
PHOTO = ROOT / "notebooks" / "own-digits" / "7" / "7-0.jpg"
OUT = ROOT / "notebooks" / "out" / "draw-test"
# The quick runs: one epoch each, on a tenth of MNIST for the CNN (about a minute in all on 2
# cores). Their folders carry the names `digits draw` looks for.
QUICK_RUNS = {
    "mlp-seed0": ["train", "mlp", "--epochs", "1"],
    "cnn-keras-seed0": ["train", "cnn", "--epochs", "1", "--val-split", "0.9", "--arch", "cnn-16-32-64"],
}


class Failed(Exception):
    pass


def digits_command():
    return shlex.split(os.environ.get("DIGITS", "cargo run --quiet --bin digits --"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_quick_runs(runs):
    for name, args in QUICK_RUNS.items():
        start = time.monotonic()
        done = subprocess.run([*digits_command(), *args, "--out", str(runs / name)], cwd=ROOT,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if done.returncode != 0:
            raise Failed(f"`digits {' '.join(args)}` failed: {done.stderr.strip()[-500:]}")
        print(f"{name}: `digits {' '.join(args)}` trained in {time.monotonic() - start:.0f} s")


class DrawServer:
    """`digits draw` on 127.0.0.1 and a free port, in a process group of its own."""

    def __init__(self, runs, log_path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([*digits_command(), "draw", "--port", str(self.port),
                                      "--runs", str(runs)], cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     start_new_session=True)

    def wait_ready(self, timeout):
        # The first line on stdout names the address, once the models answered.
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if self.base not in line or time.monotonic() > deadline:
            self.stop()
            log = pathlib.Path(self.log.name).read_text(errors="replace")[-500:]
            raise Failed(f"`digits draw` did not start: {line.strip()!r} {log}")
        print(line.strip())

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group this script started
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


class Page:
    """The drawing page in chromium."""

    def __init__(self, page, base):
        self.page, self.base = page, base
        self.console_errors, self.elsewhere = [], []
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        # The page's own photo preview is a blob: URL of its origin; anything else is another host.
        page.on("request", lambda r: r.url.startswith((base, "blob:" + base, "data:"))
                or self.elsewhere.append(r.url))

    def updates(self):
        return int(self.page.evaluate("document.body.dataset.updates || '0'"))

    def stroke(self, points, box):
        """Draws through canvas points (0-280) with the mouse, in small moves."""
        m = self.page.mouse
        m.move(box["x"] + points[0][0], box["y"] + points[0][1])
        m.down()
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            for k in range(1, 9):
                m.move(box["x"] + x0 + (x1 - x0) * k / 8, box["y"] + y0 + (y1 - y0) * k / 8)
        m.up()

    def draw(self, strokes):
        """Draws `strokes` and waits for the reading they bring."""
        before = self.updates()
        box = self.page.locator("#canvas").bounding_box()
        for points in strokes:
            self.stroke(points, box)
        return self.wait_reading(before)

    def wait_reading(self, before, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Debounced: wait for the reading of the last change, not the first one.
            pending = self.page.evaluate("document.body.dataset.pending")
            if self.updates() > before and pending == "0":
                return self.page.evaluate("window.lastReading")
            error = self.page.locator("#error")
            if error.is_visible():
                raise Failed(f"the page shows an error: {error.inner_text()}")
            time.sleep(0.1)
        raise Failed("no reading came back within 30 s")

    def shot(self, name):
        path = OUT / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def centre(image):
    mass = sum(image)
    cx = sum(v * (i % 28) for i, v in enumerate(image)) / mass
    cy = sum(v * (i // 28) for i, v in enumerate(image)) / mass
    return cx, cy


def check_reading(reading, what):
    names = [p["name"] for p in reading["preparations"]]
    if names != ["resized", "framed"]:
        raise Failed(f"{what}: preparations {names}")
    for p in reading["preparations"]:
        kinds = [a["kind"] for a in p["answers"]]
        if kinds != ["MLP", "CNN"] or any(len(a["top"]) != 3 for a in p["answers"]):
            raise Failed(f"{what}: {p['name']} answers {p['answers']}")
    best = {p["name"]: [a["top"][0]["digit"] for a in p["answers"]] for p in reading["preparations"]}
    cx, cy = centre(reading["preparations"][1]["image"])
    if abs(cx - 14) > 1.5 or abs(cy - 14) > 1.5:
        raise Failed(f"{what}: the framed ink is centred at ({cx:.1f}, {cy:.1f}), not near (14, 14)")
    print(f"{what}: resized MLP/CNN read {best['resized']}, framed {best['framed']}; "
          f"framed ink centred at ({cx:.1f}, {cy:.1f}); \"{reading['sentence']}\"")
    return best


def check(args, runs, passed):
    server = DrawServer(runs, OUT / "server.log")
    try:
        server.wait_ready(120)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = Page(browser.new_page(viewport={"width": 1120, "height": 700}), server.base)
            page.page.goto(server.base + "/")
            page.page.wait_for_selector("#canvas")
            passed.append("page loads")

            # A vertical stroke down the middle: a 1.
            reading = page.draw([[(140, 50), (140, 230)]])
            best = check_reading(reading, "a vertical stroke")
            if best["framed"] != [1, 1]:
                raise Failed(f"a vertical stroke, framed, reads {best['framed']}, not a 1 for both models")
            passed.append("a stroke is a 1")

            # A small 7 in the top-left corner.
            page.page.click("#clear")
            reading = page.draw([[(18, 20), (72, 20), (38, 88)]])
            check_reading(reading, "a small 7 in a corner")
            if reading["span"] > 0.5:
                raise Failed(f"the small 7 spans {reading['span']:.0%} of the resized frame")
            if "read" not in reading["sentence"]:
                raise Failed(f"no sentence: {reading['sentence']!r}")
            shot = page.shot("draw-7")
            if args.export:
                shutil.copyfile(shot, ROOT / "img" / "draw.png")
                print("wrote img/draw.png")
            passed.append("a small 7")

            # A photo through the file picker.
            before = page.updates()
            page.page.set_input_files("#file", str(PHOTO))
            reading = page.wait_reading(before)
            check_reading(reading, f"the photo {PHOTO.relative_to(ROOT)}")
            page.shot("draw-photo")
            passed.append("a photo")

            if page.console_errors:
                raise Failed(f"console errors: {page.console_errors[:3]}")
            if page.elsewhere:
                raise Failed(f"the page asked other hosts: {page.elsewhere[:3]}")
            passed.append("no console error, no other host")
            browser.close()
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=pathlib.Path,
                        help="use the seed-0 runs in this folder instead of training quick ones")
    parser.add_argument("--export", action="store_true", help="also write img/draw.png")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit(f"no {CHROMIUM}: install Debian's chromium (apt-get install -y chromium)")
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {OUT.relative_to(ROOT)}")
    passed, checks = [], 5
    with tempfile.TemporaryDirectory(prefix="digits-draw-test-") as scratch:
        try:
            runs = args.runs
            if runs is None:
                runs = pathlib.Path(scratch) / "runs"
                train_quick_runs(runs)
            check(args, runs.resolve(), passed)
        except Failed as e:
            print(f"draw browser test FAILED: {e}", file=sys.stderr)
            print(f"draw-browser: {len(passed)} passed, 1 failed")
            sys.exit(1)
    print(f"draw-browser: {checks} passed, 0 failed")


if __name__ == "__main__":
    main()
