"""`python -m tinygrad_cv train CONFIG` / `test CONFIG CKPT`, and the configs/ recipes."""
import json
import os
import subprocess
import sys

import pytest

from tinygrad_cv.cli import main
from tinygrad_cv.engine import DATASETS, MODELS, TRANSFORMS, Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")

TINY_CONFIG = '''
import numpy as np
import tinygrad_cv as tc
from tinygrad_cv.data import TensorDataset
from tinygrad_cv.engine import DATASETS

@DATASETS.register_module(force=True)
def TinyCliData(n=32, seed=0):
    rs = np.random.RandomState(seed)
    return TensorDataset(tc.tensor(rs.randn(n, 1, 4, 4).astype(np.float32)),
                         tc.tensor(rs.randint(0, 3, n)))

model = dict(type="MLP", in_features=16, hidden_sizes=(8,), num_classes=3)
train_dataloader = dict(dataset=dict(type="TinyCliData"), batch_size=8, shuffle=True)
val_dataloader = dict(dataset=dict(type="TinyCliData", n=16, seed=1), batch_size=8)
optimizer = dict(type="SGD", lr=0.1, momentum=0.9)
param_scheduler = dict(type="StepLR", step_size=1, gamma=0.5)
default_hooks = dict(checkpoint=dict(type="CheckpointHook", save_best="auto"),
                     logger=dict(type="LoggerHook", interval=2, progress=False))
max_epochs = 2
seed = 0
'''


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text(TINY_CONFIG)
    return path


def test_train_config_resume_and_test(tmp_path, tiny_config, capsys):
    work = tmp_path / "work"
    assert main(["train", str(tiny_config), "--work-dir", str(work),
                 "--cfg-options", "max_epochs=1", "optimizer.lr=0.05"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "best accuracy/top1" in out
    saved = json.loads((work / "config.json").read_text())
    assert saved["max_epochs"] == 1 and saved["optimizer"]["lr"] == 0.05
    # resume to 2 epochs from the work dir's last checkpoint
    assert main(["train", str(tiny_config), "--work-dir", str(work), "--resume",
                 "--cfg-options", "max_epochs=2", "optimizer.lr=0.05"]) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "epoch 2/2" in out
    assert main(["test", str(tiny_config), str(work / "epoch_2.safetensors"),
                 "--work-dir", str(work)]) == 0
    out = capsys.readouterr().out
    assert "accuracy/top1:" in out and "loss:" in out
    assert json.loads((work / "metrics.jsonl").read_text().splitlines()[-1])["mode"] == "test"


def test_resume_with_an_incompatible_config_is_refused(tmp_path, tiny_config, capsys):
    work = tmp_path / "work"
    assert main(["train", str(tiny_config), "--work-dir", str(work),
                 "--cfg-options", "max_epochs=1"]) == 0
    status = main(["train", str(tiny_config), "--work-dir", str(work), "--resume",
                   "--cfg-options", "model.hidden_sizes=(5,)"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert "another model" in err[0] and "layers.0.weight" in err[0]


@pytest.mark.parametrize("argv, message", [
    (["train", "missing.py"], "missing.py: no such config file"),
    (["train", "{cfg}", "--cfg-options", "novalue"], "expected KEY=VALUE"),
    (["train", "{cfg}", "--cfg-options", "model.type=Nope"], "MODELS registry has no type 'Nope'"),
    (["train", "{cfg}", "--resume", "nope.safetensors"], "nope.safetensors: no such checkpoint"),
    (["test", "{cfg}", "nope.safetensors"], "nope.safetensors: no such checkpoint file"),
    (["train", "--resume"], "--resume needs a CONFIG file"),
    (["train", "{cfg}", "--launcher", "mpi"], "launcher='mpi'"),
])
def test_config_mistakes_are_one_error_line(tiny_config, capsys, argv, message):
    argv = [a.replace("{cfg}", str(tiny_config)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


@pytest.mark.slow
def test_sigterm_in_cli_prints_the_resume_command(tmp_path, tiny_config):
    """In a subprocess: SIGTERM during `train CONFIG` exits 143 with one line naming the
    command that resumes; that command then finishes the run."""
    slow = tmp_path / "slow.py"
    slow.write_text(TINY_CONFIG + '''
import time
from tinygrad_cv.engine import HOOKS, Hook

@HOOKS.register_module(force=True)
class Pause(Hook):
    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        if runner.iter == 2 and not runner.resume:
            print("READY", flush=True)
            while runner._stop_signal is None:
                time.sleep(0.02)

custom_hooks = [dict(type="Pause")]
''')
    work = tmp_path / "w"
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "tinygrad_cv", "train", str(slow),
                             "--work-dir", str(work)], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in proc.stdout:
        if line.strip() == "READY":
            break
    proc.terminate()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "SIGTERM" in lines[0] and "resume with:" in lines[0]
    command = lines[0].split("resume with: ")[1]
    assert command.endswith("--resume") and str(slow) in command
    done = subprocess.run(command.replace(os.path.basename(sys.executable), sys.executable, 1),
                          shell=True, env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "resumed from" in done.stdout and "epoch 2/2" in done.stdout


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(CONFIGS)
                                        if f.endswith((".py", ".toml", ".json"))))
def test_every_recipe_reads_and_names_registered_types(name):
    cfg = Config.fromfile(os.path.join(CONFIGS, name))
    assert cfg.model.type in MODELS
    needs_data_branch = []
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        dataset = cfg[key].dataset
        if dataset.type not in DATASETS:
            needs_data_branch.append(dataset.type)
        for step in dataset.transform:
            if step.type not in TRANSFORMS:
                needs_data_branch.append(step.type)
    if needs_data_branch:
        assert name in ("cifar10_resnet20.py", "image_folder.py"), needs_data_branch
        pytest.skip(f"needs the data branch: {sorted(set(needs_data_branch))}")
    model = MODELS.build(cfg.model.to_dict())
    assert sum(p.numel() for p in model.parameters()) > 0
