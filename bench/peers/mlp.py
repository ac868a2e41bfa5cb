"""PyTorch peer of the seed MLP: 784-128-10 without activation, batch 64, SGD lr 0.001 momentum 0.9."""
from common import train_and_report


def build(nn):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.Linear(128, 10))


if __name__ == "__main__":
    train_and_report("pytorch-mlp", build, (784,))
