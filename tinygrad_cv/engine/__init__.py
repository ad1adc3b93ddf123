"""The training engine: configs, registries, a Runner with hooks, exact-resume
checkpoints and metrics (OpenMMLab's unified pipeline; see docs/engine.md).

Importing tinygrad_cv does not import this package; `import tinygrad_cv.engine` does.
"""
from .checkpoint import CheckpointMismatchError, find_latest
from .config import Config, ConfigDict, ConfigError
from .hooks import (PRIORITIES, CheckpointHook, EarlyStoppingHook, EMAHook, Hook, LoggerHook,
                    ParamSchedulerHook, ReportHook, TimerHook, infer_rule)
from .metrics import Accuracy, BaseMetric, ClassificationReport, ConfusionMatrix, MeanIoU
from .registry import (DATASETS, HOOKS, METRICS, MODELS, OPTIMIZERS, SCHEDULERS, TRANSFORMS,
                       Registry, RegistryError, build)
from .runner import Runner

__all__ = ["Config", "ConfigDict", "ConfigError", "Registry", "RegistryError", "build",
           "MODELS", "DATASETS", "TRANSFORMS", "OPTIMIZERS", "SCHEDULERS", "HOOKS", "METRICS",
           "Runner", "Hook", "TimerHook", "LoggerHook", "ParamSchedulerHook", "CheckpointHook",
           "EarlyStoppingHook", "EMAHook", "ReportHook", "PRIORITIES", "infer_rule", "BaseMetric",
           "Accuracy", "ConfusionMatrix", "ClassificationReport", "MeanIoU",
           "CheckpointMismatchError", "find_latest"]
