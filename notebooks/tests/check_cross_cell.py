"""Run notebooks/tests/cross-cell.ipynb with the Rust kernel and check that the steps it took
across three cells equal, to the bit, the same steps taken in one process.

Usage (from the repository root, after `make notebooks-setup`):
    .venv/bin/python notebooks/tests/check_cross_cell.py
"""
import json
import pathlib
import subprocess
import sys

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "tests" / "cross-cell.ipynb"


def probe_lines(text):
    steps = []
    for line in text.splitlines():
        if line.startswith("PROBE "):
            _, arch, payload = line.split(" ", 2)
            steps.append((arch, json.loads(payload)))
    return steps


def fail(msg):
    print(f"cross-cell test FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    reference = subprocess.run(
        ["cargo", "run", "--quiet", "--example", "cross_cell_reference"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    want = probe_lines(reference)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name="rust",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = ""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                text += out.get("text", "")
    got = probe_lines(text)
    # The notebook prints two steps of each model, then four more: put them in model order.
    got.sort(key=lambda s: (s[0], s[1]["step"]))
    want.sort(key=lambda s: (s[0], s[1]["step"]))
    if len(want) != 12:
        fail(f"the reference printed {len(want)} steps, expected 12")
    if len(got) != len(want):
        fail(f"the notebook printed {len(got)} steps, the reference {len(want)}")
    for (ga, g), (wa, w) in zip(got, want):
        if (ga, g["step"]) != (wa, w["step"]):
            fail(f"step order differs: {ga} {g['step']} vs {wa} {w['step']}")
        if g != w:
            fail(f"{ga} step {g['step']}: notebook {g} != one process {w}")
    for arch in ("mlp", "cnn"):
        losses = [s["loss"] for a, s in got if a == arch]
        if not losses[-1] < losses[0]:
            fail(f"{arch}: the loss did not fall over six steps: {losses}")
        print(f"{arch}: 6 steps over 3 cells equal the one-process steps to the bit; "
              f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")


if __name__ == "__main__":
    main()
