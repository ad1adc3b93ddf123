"""Ready-made models for 28x28 grayscale classification (MNIST, Fashion-MNIST).

Every model builds with no arguments for MNIST; the neural ones take (N, 1, 28, 28)
float32 images and return (N, 10) scores.
"""
from .lenet import LeNet5
from .mlp import MLP
from .mnist_cnn import MnistCNN
from .perceptron import Perceptron

MODELS = {"mlp": MLP, "lenet5": LeNet5, "mnist_cnn": MnistCNN}
"""The trainable models by their command-line names."""

__all__ = ["Perceptron", "MLP", "LeNet5", "MnistCNN", "MODELS"]
