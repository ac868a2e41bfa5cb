"""Shared by the PyTorch peers: argument parsing, MNIST from the IDX files the Node side reads,
and the timed training loop, so that every peer runs the same recipe as ours."""
import argparse
import json
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--mnist-dir", required=True, help="directory holding train-images-idx3-ubyte and train-labels-idx1-ubyte")
    p.add_argument("--examples", type=int, default=60000, help="first N training examples (one epoch)")
    p.add_argument("--epochs", type=int, default=2, help="the last epoch is timed; earlier ones warm up")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


def import_torch(threads):
    # OpenBLAS reads its thread count when it loads, and torch.set_num_threads only governs
    # torch's own OpenMP pool, so both are set, the first before torch is imported.
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if threads > 1:
        # Two spinning thread pools (OpenMP's and OpenBLAS's) on 2 busy cores slow it down 10x and
        # more; sleeping waiters keep the 2-thread figure about threads rather than about spinning.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(threads)
    return torch


def blas_library():
    """The BLAS shared object actually mapped into this process (Debian's torch says BLAS_INFO=generic
    and reaches whichever libblas.so.3 the alternatives system points to)."""
    with open("/proc/self/maps") as maps:
        libs = {line.split()[-1] for line in maps if "blas" in line.rsplit("/", 1)[-1]}
    return sorted(os.path.basename(lib) for lib in libs)


def load_mnist(torch, mnist_dir, examples, image_shape):
    """Training images as float32 scaled like our datasets ((x/255 - 0.5)/0.5) and int64 labels."""
    import numpy as np

    def idx(name):
        with open(os.path.join(mnist_dir, name), "rb") as f:
            data = f.read()
        rank = data[3]
        shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)]
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)

    images = idx("train-images-idx3-ubyte")[:examples].astype(np.float32) * (2 / 255) - 1
    labels = idx("train-labels-idx1-ubyte")[:examples].astype(np.int64)
    x = torch.from_numpy(np.ascontiguousarray(images)).reshape(examples, *image_shape)
    return x, torch.from_numpy(labels)


def train_and_report(name, build_model, image_shape):
    """The seed's loop (zero_grad, forward, cross-entropy, backward, SGD momentum step, loss.item()
    per batch) on data already in memory; prints one JSON line with the last epoch's samples/s
    (and every epoch's, to show the warm-up)."""
    args = parse_args()
    torch = import_torch(args.threads)
    torch.manual_seed(args.seed)
    x, y = load_mnist(torch, args.mnist_dir, args.examples, image_shape)
    model = build_model(torch.nn)
    model.train()
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    n = x.shape[0]
    rates = []
    for epoch in range(args.epochs):
        order = torch.randperm(n)
        running = 0.0
        started = time.perf_counter()
        for i in range(0, n, args.batch_size):
            batch = order[i : i + args.batch_size]
            optimizer.zero_grad()
            loss = criterion(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            running += loss.item()
        seconds = time.perf_counter() - started
        rates.append(n / seconds)
    json.dump(
        {
            "peer": name,
            "samplesPerSecond": n / seconds,
            "epochRates": rates,
            "epochSeconds": seconds,
            "loss": running / ((n + args.batch_size - 1) // args.batch_size),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "blas": blas_library(),
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
