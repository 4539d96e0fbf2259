"""Read the smoke run's JSON record, print its results, and fail under the MNIST accuracy floor."""
import json
import sys

record = json.load(open(sys.argv[1]))
floor = float(sys.argv[2])
results = {r["dataset"]: r["accuracy"] for r in record["results"]}
for name, acc in results.items():
    print(f"smoke: {name:<28} {100 * acc:6.2f}%")
wanted = ["mnist-test", "usps-test[resize]", "usps-test[mnist-frame]"]
missing = [w for w in wanted if w not in results]
if missing:
    sys.exit(f"smoke: no result for {missing}")
if results["mnist-test"] < floor:
    sys.exit(f"smoke: MNIST test accuracy {results['mnist-test']:.4f} is under {floor}")
print("smoke: 1 passed, 0 failed")
