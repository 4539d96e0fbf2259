"""`digits bench` and TensorFlow, alternated in one window, every round printed.

    python3 crate/examples/interleave_tensorflow.py --python .tfvenv/bin/python --rounds 3

Each round runs `digits bench --json --conv winograd` (the release binary, default engine) and then
`tensorflow_reference.py` on the same MNIST, and prints both models' training and inference
rates with our rate over TensorFlow's. Machines that others share are noisy: read the spread
over rounds, never one round alone.
"""
import argparse, json, os, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--python", required=True, help="a Python with tensorflow-cpu installed")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--digits", default=os.path.join(here, "..", "..", "target", "release", "digits"))
ap.add_argument("--data", default=os.environ.get("DIGITS_DATA_DIR", "data"))
args = ap.parse_args()

rows = []
for r in range(1, args.rounds + 1):
    ours = json.loads(subprocess.run([args.digits, "bench", "--json", "--conv", "winograd", "--data", args.data],
                                     check=True, capture_output=True, text=True).stdout)
    tf_lines = subprocess.run([args.python, os.path.join(here, "tensorflow_reference.py"), args.data],
                              check=True, capture_output=True, text=True).stdout.strip().splitlines()
    theirs = json.loads(tf_lines[-1])
    by_model = {m["model"]: m for m in ours["models"]}
    cnn = next(m for m in ours["models"] if m["model"].startswith("cnn"))
    for label, o, t in [("mlp", by_model["mlp"], theirs["mlp"]), ("cnn", cnn, theirs["cnn"])]:
        for what, key in [("training", "train_images_per_second"), ("inference", "inference_images_per_second")]:
            row = (r, label, what, o[key], t[key], o[key] / t[key])
            rows.append(row)
            print("round %d  %-3s %-9s  digits %9.0f images/s  tensorflow %9.0f  ratio %.2f" % row, flush=True)
    print("  engine: %s; tensorflow %s" % (ours["engine"], theirs["tensorflow"]), flush=True)
    # The step's work counted as the direct convolution does it (Winograd does fewer
    # multiplications), so the share can be set beside any engine's on the same machine.
    print("  GEMM peak %.0f GFLOP/s; CNN training at %.0f GFLOP/s of direct-convolution work, %.0f%% of it"
          % (ours["peak"]["gflops"], cnn["achieved_gflops"], 100 * cnn["fraction_of_peak"]), flush=True)
    if ours.get("peak_resident_mb") is not None:
        print("  peak memory resident: digits bench %.0f MB, tensorflow %.0f MB"
              % (ours["peak_resident_mb"], theirs.get("peak_resident_mb", float("nan"))), flush=True)
def ratios(label, what):
    return [r[5] for r in rows if r[1] == label and r[2] == what]
for label in ["mlp", "cnn"]:
    for what in ["training", "inference"]:
        print("%-3s %-9s ratio over rounds: %s" % (label, what, " / ".join("%.2f" % x for x in ratios(label, what))))
# The last line: every round of the three figures the engine is judged by, never a best case.
summary = [("CNN train", ratios("cnn", "training")), ("CNN infer", ratios("cnn", "inference")),
           ("MLP", ratios("mlp", "training"))]
print("vs TensorFlow: " + ", ".join("%s %sx" % (name, "/".join("%.2f" % x for x in rs)) for name, rs in summary))
