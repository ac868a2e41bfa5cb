"""The seed's worked example in PyTorch, as bench/quality.ts runs it in tfjs: an MLP 784-128-10
without activation on MNIST scaled (x/255 - 0.5)/0.5, SGD lr 0.001 momentum 0.9, batch 64;
1 epoch to make the pretrained model, then 10 epochs of fine-tuning it with a fresh optimizer.
Prints one JSON line: {"testAccuracy": ...}.

    python3 bench/peers/seed_quality.py --mnist-dir DIR [--seed 1] [--threads 1]
"""
import argparse
import json
import os


def idx(mnist_dir, name):
    import numpy as np

    with open(os.path.join(mnist_dir, name), "rb") as f:
        data = f.read()
    rank = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mnist-dir", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    def split(prefix):
        x = idx(args.mnist_dir, f"{prefix}-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) * (2 / 255) - 1
        y = idx(args.mnist_dir, f"{prefix}-labels-idx1-ubyte").astype(np.int64)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)

    x_train, y_train = split("train")
    x_test, y_test = split("t10k")
    model = nn.Sequential(nn.Linear(784, 128), nn.Linear(128, 10))
    criterion = nn.CrossEntropyLoss()

    def train(epochs):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
        for _ in range(epochs):
            order = torch.randperm(len(x_train))
            for start in range(0, len(order), 64):
                batch = order[start : start + 64]
                optimizer.zero_grad()
                loss = criterion(model(x_train[batch]), y_train[batch])
                loss.backward()
                optimizer.step()

    train(1)
    train(10)
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(json.dumps({"testAccuracy": accuracy}))


if __name__ == "__main__":
    main()
