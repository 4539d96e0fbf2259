"""TensorFlow's speed on the published models on this machine, on real MNIST, measured as
`digits bench` measures ours (docs/performance.md compares the two; `interleave_tensorflow.py`
alternates the two in one window).

    python3 -m venv .tfvenv && .tfvenv/bin/pip install "tensorflow-cpu==2.20.*"
    .tfvenv/bin/python crate/examples/tensorflow_reference.py [DATA_DIR]

DATA_DIR is the folder `digits data fetch` filled (default `data`). Prints one JSON line per
model (training images/s, seconds per epoch of 60,000, inference images/s at batch 1024) and a
summary line. Keras `fit` at batch 128 is timed over 100 CNN steps (12,800 images) or a whole
MLP epoch (60,000), after a 10-step warm-up that traces the graph.
"""
import gzip, json, os, resource, sys, time
import numpy as np
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

tf.random.set_seed(0)
rng = np.random.default_rng(0)
data = sys.argv[1] if len(sys.argv) > 1 else "data"

def idx(name):
    """One MNIST IDX file (plain or gzipped) as a uint8 array of its stated shape."""
    path = os.path.join(data, "mnist", name)
    raw = open(path, "rb").read() if os.path.exists(path) else gzip.open(path + ".gz").read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)

images = idx("train-images-idx3-ubyte").astype(np.float32) / 255.0
labels = keras.utils.to_categorical(idx("train-labels-idx1-ubyte"), 10)
test = idx("t10k-images-idx3-ubyte").astype(np.float32) / 255.0

def mlp():
    return keras.Sequential([keras.Input((784,)), layers.Dense(224, activation="relu"), layers.Dropout(0.3),
                             layers.Dense(288, activation="relu"), layers.Dropout(0.3), layers.Dense(10, activation="softmax")])

def cnn():
    return keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
                             layers.Conv2D(192, 3, padding="same", activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
                             layers.Dense(128, activation="relu"), layers.Dropout(0.2), layers.Dense(10, activation="softmax")])

out = {"tensorflow": tf.__version__, "threads": os.cpu_count()}
for name, build, shape in [("mlp", mlp, (784,)), ("cnn", cnn, (28, 28, 1))]:
    n = 60000 if name == "mlp" else 12800
    x = images[:n].reshape((n,) + shape)
    y = labels[:n]
    m = build()
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    m.fit(x[:1280], y[:1280], batch_size=128, epochs=1, verbose=0)  # warm-up (graph tracing)
    t = time.perf_counter()
    m.fit(x, y, batch_size=128, epochs=1, verbose=0, shuffle=True)
    s = time.perf_counter() - t
    ips = n / s
    xi = test[:4096].reshape((4096,) + shape)
    m.predict(xi, batch_size=1024, verbose=0)
    t = time.perf_counter()
    m.predict(xi, batch_size=1024, verbose=0)
    inf = 4096 / (time.perf_counter() - t)
    out[name] = {"train_images_per_second": ips, "seconds_per_epoch_60k": 60000 / ips, "inference_images_per_second": inf}
    print(name, json.dumps(out[name]), flush=True)
out["peak_resident_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # Linux: kB
print(json.dumps(out))
