"""PyTorch peer of the benchmark CNN (bench/cnn.ts): two conv blocks and a dense head, batch 64,
SGD lr 0.001 momentum 0.9. Channels first, as PyTorch expects; the arithmetic is the same."""
from common import train_and_report


def build(nn):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
    )


if __name__ == "__main__":
    train_and_report("pytorch-cnn", build, (1, 28, 28))
