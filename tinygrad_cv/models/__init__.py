"""Ready-made models: for 28x28 grayscale classification (MNIST, Fashion-MNIST) and,
`small_cnn`, for a folder of a user's own images.

The MNIST models build with no arguments and take (N, 1, 28, 28) float32 images and
return (N, 10) scores; SmallCNN(num_classes, in_channels=3, width=32) takes any image size.
"""
from .lenet import LeNet5
from .mlp import MLP
from .mnist_cnn import MnistCNN
from .perceptron import Perceptron
from .small_cnn import SmallCNN

MODELS = {"mlp": MLP, "lenet5": LeNet5, "mnist_cnn": MnistCNN,
          "small_cnn": SmallCNN}
"""The trainable models by their command-line names (MNIST_MODELS: the 1-channel 28x28 ones)."""

MNIST_MODELS = ("mlp", "lenet5", "mnist_cnn")

__all__ = ["Perceptron", "MLP", "LeNet5", "MnistCNN", "SmallCNN", "MODELS"]
