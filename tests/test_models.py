"""Models: output shapes, the perceptron's convergence, and a short real training run."""
import os

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import models, nn, optim
from tinygrad_cv.nn import functional as F

DATA = os.environ.get("TINYGRAD_CV_DATA")


@pytest.mark.parametrize("name", sorted(models.MNIST_MODELS))   # small_cnn: test_cli_folder
def test_model_output_shape_and_backward(name):
    tc.manual_seed(0)
    model = models.MODELS[name]()
    x = tc.randn(3, 1, 28, 28)
    out = model(x)
    assert out.shape == (3, 10)
    F.cross_entropy(out, tc.Tensor([0, 4, 9])).backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_mnist_cnn_matches_pytorch_examples_layout():
    shapes = {k: v.shape for k, v in models.MnistCNN().state_dict().items()}
    assert shapes == {"conv1.weight": (32, 1, 3, 3), "conv1.bias": (32,),
                      "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,),
                      "fc1.weight": (128, 9216), "fc1.bias": (128,),
                      "fc2.weight": (10, 128), "fc2.bias": (10,)}
    out = models.MnistCNN().eval()(tc.randn(2, 1, 28, 28))
    np.testing.assert_allclose(np.exp(out.numpy()).sum(1), 1.0, rtol=1e-5)  # log-probs


def test_mlp_hidden_sizes():
    model = models.MLP(hidden_sizes=(32,))
    assert [p.shape for p in model.parameters()] == [(32, 784), (32,), (10, 32), (10,)]


def test_perceptron_reaches_100_percent_on_separable_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 20))
    w_true = rng.normal(size=20)
    margin = X @ w_true
    keep = np.abs(margin) > 0.5                      # a clear margin: separable
    X, y = X[keep], (margin[keep] > 0).astype(np.int64)
    tc.manual_seed(0)
    model = models.Perceptron(in_features=20, epochs=200).fit(X, y)
    assert model.score(X, y) == 1.0
    assert model.mistakes_per_epoch[-1] == 0


def test_perceptron_rejects_bad_input():
    with pytest.raises(ValueError, match="features"):
        models.Perceptron(in_features=5).fit(np.zeros((3, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="0 or 1"):
        models.Perceptron(in_features=4).fit(np.zeros((3, 4)), np.array([0, 1, 2]))


@pytest.mark.skipif(not DATA, reason="TINYGRAD_CV_DATA is not set (real MNIST needed)")
def test_short_real_mlp_training_run_crosses_90_percent():
    """300 SGD steps of the default MLP on real MNIST reach >= 90% test accuracy."""
    from tinygrad_cv import transforms
    from tinygrad_cv.data import DataLoader
    from tinygrad_cv.datasets import MNIST
    from tinygrad_cv.train import evaluate

    tc.manual_seed(0)
    t = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = DataLoader(MNIST(DATA, train=True, download=False, transform=t), batch_size=64,
                       shuffle=True, seed=0)
    test = DataLoader(MNIST(DATA, train=False, download=False, transform=t), batch_size=1000)
    model = models.MLP()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for step, (x, y) in enumerate(train):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if step == 299:
            break
    result = evaluate(model, test)
    assert result.accuracy >= 0.90, result.accuracy
    assert result.confusion.sum() == 10000
