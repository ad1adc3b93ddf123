"""Registries (built-ins, build, nested transforms, user classes, unknown types) and the
metrics against hand-computed cases."""
import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import nn, transforms
from tinygrad_cv.engine import (DATASETS, HOOKS, METRICS, MODELS, OPTIMIZERS, SCHEDULERS,
                                TRANSFORMS, Accuracy, ClassificationReport, ConfusionMatrix,
                                MeanIoU, Registry, RegistryError, build)


def test_builtins_are_registered():
    for name in ("MLP", "LeNet5", "MnistCNN", "ResNet20", "CrossEntropyLoss"):
        assert name in MODELS
    for name in ("MNIST", "FashionMNIST", "TensorDataset"):
        assert name in DATASETS
    assert {"Compose", "ToTensor", "Normalize"} <= set(TRANSFORMS.keys())
    assert {"SGD", "Adam", "AdamW", "Adadelta"} <= set(OPTIMIZERS.keys())
    assert {"StepLR", "CosineAnnealingLR"} <= set(SCHEDULERS.keys())
    assert {"CheckpointHook", "LoggerHook", "EMAHook", "EarlyStoppingHook"} <= set(HOOKS.keys())
    assert {"Accuracy", "ConfusionMatrix", "ClassificationReport", "MeanIoU"} <= set(METRICS.keys())


def test_build_with_defaults_and_nested_transforms():
    model = build(dict(type="MLP", in_features=4, hidden_sizes=(3,), num_classes=2), MODELS)
    opt = OPTIMIZERS.build(dict(type="SGD", lr=0.5), params=model.parameters())
    assert opt.param_groups[0]["lr"] == 0.5
    ds_cfg = dict(type="TensorDataset")
    with pytest.raises(RegistryError):
        build(ds_cfg, DATASETS, bogus=1)
    registry = Registry("TEST")

    @registry.register_module()
    class Holder:
        def __init__(self, transform=None):
            self.transform = transform

    held = registry.build(dict(type="Holder", transform=[
        dict(type="ToTensor"), dict(type="Normalize", mean=(0.5,), std=(0.25,))]))
    assert isinstance(held.transform, transforms.Compose)
    assert isinstance(held.transform.transforms[1], transforms.Normalize)


def test_user_registration_and_unknown_types():
    @MODELS.register_module()
    class TinyEngineTestNet(nn.Module):
        def __init__(self, width=2):
            super().__init__()
            self.fc = nn.Linear(width, 1)

    assert MODELS.build(dict(type="TinyEngineTestNet", width=3)).fc.in_features == 3
    with pytest.raises(KeyError, match="already has"):
        MODELS.register_module(name="TinyEngineTestNet", module=nn.Linear)
    with pytest.raises(RegistryError, match=r"MODELS registry has no type 'MPL'; did you mean MLP"):
        MODELS.build(dict(type="MPL"))
    with pytest.raises(RegistryError, match="has no 'type' key"):
        MODELS.build(dict(width=3))
    with pytest.raises(RegistryError, match=r"MODELS: building MLP failed.*widht"):
        MODELS.build(dict(type="MLP", widht=3))


def test_accuracy_topk_hand_computed():
    scores = np.array([[0.1, 0.5, 0.4],     # target 2: rank 2 -> top-2 only
                       [0.7, 0.2, 0.1],     # target 0: top-1
                       [0.3, 0.3, 0.4],     # target 1: tie with class 0 (before it) -> rank 3
                       [0.2, 0.3, 0.5]])    # target 1: rank 2
    metric = Accuracy(topk=(1, 2, 3))
    metric.process(tc.tensor(scores[:2]), tc.tensor([2, 0]))
    metric.process(scores[2:], np.array([1, 1]))
    assert metric.compute() == {"accuracy/top1": 0.25, "accuracy/top2": 0.75, "accuracy/top3": 1.0}
    with pytest.raises(ValueError, match="top-5 needs"):
        Accuracy(topk=(5,)).process(scores, np.array([0, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"targets must be in \[0, 3\)"):
        Accuracy().process(scores, np.array([0, 0, 0, 3]))


def test_confusion_matrix_and_report_hand_computed():
    truth = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 2, 2])
    cm = ConfusionMatrix(3)
    cm.process(pred, truth)
    assert cm.compute()["confusion_matrix"].tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    report = ClassificationReport(3)
    report.process(np.eye(3)[pred], truth)          # scores work as well as labels
    r = report.compute()
    # class 0: P 2/2 R 2/3; class 1: P 1/2 R 1/2; class 2: P 1/2 R 1/1
    np.testing.assert_allclose(r["precision_per_class"], [1.0, 0.5, 0.5])
    np.testing.assert_allclose(r["recall_per_class"], [2 / 3, 0.5, 1.0])
    np.testing.assert_allclose(r["f1_per_class"], [0.8, 0.5, 2 / 3])
    assert r["support"] == [3, 2, 1] and r["accuracy"] == pytest.approx(4 / 6)
    assert r["f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    empty = ClassificationReport(2)
    empty.process(np.array([0, 0]), np.array([0, 0]))   # class 1 never seen: 0, not NaN
    assert empty.compute()["precision_per_class"] == [1.0, 0.0]


def test_mean_iou_hand_computed():
    target = np.array([[[0, 0, 1], [1, 2, 255]]])
    pred = np.array([[[0, 1, 1], [1, 1, 0]]])
    metric = MeanIoU(num_classes=4)
    metric.process(pred, target)
    r = metric.compute()
    # class 0: TP 1, FP 0, FN 1 -> 1/2; class 1: TP 2, FP 2 -> 2/4; class 2: TP 0 FN 1 -> 0
    assert r["IoU_per_class"][:3] == [0.5, 0.5, 0.0] and np.isnan(r["IoU_per_class"][3])
    assert r["mIoU"] == pytest.approx(1 / 3) and r["aAcc"] == pytest.approx(3 / 5)
    scores = np.eye(4)[pred].transpose(0, 3, 1, 2)   # (N, C, H, W) scores
    again = MeanIoU(num_classes=4)
    again.process(tc.tensor(scores), target)
    assert again.compute()["mIoU"] == pytest.approx(1 / 3)


def test_metric_counts_reduce_like_a_sum_over_processes():
    metric = Accuracy()
    metric.process(np.array([[1.0, 0.0]]), np.array([0]))
    metric.reduce(lambda a: a * 2)          # two identical ranks
    assert metric.compute() == {"accuracy/top1": 1.0} and int(metric._n_total) == 2
