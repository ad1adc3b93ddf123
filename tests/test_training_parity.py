"""The pytorch/examples MNIST network trained in both frameworks from identical weights
and batches (dropout off): the losses must follow each other step for step."""
import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import models, optim
from tinygrad_cv.nn import functional as F
from tests.helpers import requires_torch, torch
from tests.test_nn import mnist_net      # pytorch/examples' Net, for either framework


@requires_torch
@pytest.mark.parametrize("optimizer", ["sgd", "adadelta"])
def test_mnist_net_losses_follow_pytorch_for_30_steps(optimizer):
    tc.manual_seed(0)
    ours = models.MnistCNN()
    theirs = mnist_net(torch.nn)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    ours.dropout1.p = ours.dropout2.p = 0.0          # "no dropout": identical computations
    theirs.dropout1.p = theirs.dropout2.p = 0.0
    if optimizer == "sgd":
        opt_ours = optim.SGD(ours.parameters(), lr=0.05, momentum=0.9)
        opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9)
    else:
        opt_ours = optim.Adadelta(ours.parameters(), lr=1.0)
        opt_theirs = torch.optim.Adadelta(theirs.parameters(), lr=1.0)

    rng = np.random.default_rng(1)
    centers = rng.normal(size=(10, 1, 28, 28)).astype(np.float32)   # learnable classes
    losses_ours, losses_theirs = [], []
    for _ in range(30):
        y = rng.integers(0, 10, size=16)
        x = (centers[y] + 0.5 * rng.normal(size=(16, 1, 28, 28))).astype(np.float32)
        opt_ours.zero_grad()
        loss = F.nll_loss(ours(tc.Tensor(x)), tc.Tensor(y))
        loss.backward()
        opt_ours.step()
        losses_ours.append(loss.item())

        opt_theirs.zero_grad()
        loss_t = torch.nn.functional.nll_loss(theirs(torch.tensor(x)), torch.tensor(y))
        loss_t.backward()
        opt_theirs.step()
        losses_theirs.append(loss_t.item())

    np.testing.assert_allclose(losses_ours, losses_theirs, rtol=1e-4, atol=1e-5)
    assert losses_ours[-1] < 0.5 * losses_ours[0]     # it really trained
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.numpy(), theirs.state_dict()[name].numpy(),
                                   rtol=1e-3, atol=1e-4, err_msg=name)
