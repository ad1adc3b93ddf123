"""The command line and the examples on a user's mistakes: numbers checked at parse time,
one `error: ...` line and exit status 2 instead of a traceback, weights files that say
what they are (model, dataset, classes, normalisation) and are checked against the flags,
and the everyday flags (--help with defaults, --threads, --version, no progress bar in a
log). Only the few tests marked `needs_data` read MNIST."""
import importlib.util
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinygrad_cv as tc
from tinygrad_cv import models, serialization
from tinygrad_cv.cli import build_parser, main
from tinygrad_cv.errors import UserError, run_main
from tinygrad_cv.train import weights_metadata

DATA = os.environ.get("TINYGRAD_CV_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="TINYGRAD_CV_DATA is not set (real MNIST needed)")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE_NAMES = ["mnist_cnn", "mlp_mnist", "perceptron"]


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def digit_png(path):
    img = np.full((40, 40), 255, np.uint8)
    img[8:32, 18:23] = 0
    Image.fromarray(img).save(path)
    return str(path)


def mlp_weights(path, **metadata_override):
    metadata = dict(weights_metadata("mlp", "mnist"), **metadata_override)
    tc.save(models.MLP().state_dict(), path, metadata=metadata)
    return str(path)


# ----------------------------------------------------------------------------- item 6
BAD_NUMBERS = [
    ["train", "--limit", "-5"], ["train", "--limit", "0"], ["train", "--epochs", "0"],
    ["train", "--epochs", "-1"], ["train", "--epochs", "1.5"], ["train", "--batch-size", "0"],
    ["train", "--test-batch-size", "0"], ["train", "--lr", "-1"], ["train", "--lr", "0"],
    ["train", "--lr", "nan"], ["train", "--lr", "inf"], ["train", "--gamma", "0"],
    ["train", "--seed", "-1"], ["train", "--threads", "0"], ["train", "--device", "tpu"],
    ["train", "--device", "cuda:x"],
    ["evaluate", "w.safetensors", "--batch-size", "0"],
    ["evaluate", "w.safetensors", "--threads", "-2"],
    ["predict", "w.safetensors", "x.png", "--threads", "0"],
]


@pytest.mark.parametrize("argv", BAD_NUMBERS, ids=" ".join)
def test_cli_numbers_are_checked_at_parse_time(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"argument {argv[-2]}: " in line and repr(argv[-1]) in line


EXAMPLE_BAD_NUMBERS = {
    "mnist_cnn": [["--epochs", "0"], ["--batch-size", "-1"], ["--test-batch-size", "0"],
                  ["--lr", "-0.5"], ["--gamma", "nan"], ["--seed", "-3"],
                  ["--log-interval", "0"], ["--limit", "-5"], ["--threads", "0"],
                  ["--device", "gpu"]],
    "mlp_mnist": [["--epochs", "0"], ["--hidden", "0"], ["--batch-size", "0"],
                  ["--lr", "0"], ["--momentum", "-0.1"], ["--seed", "-1"],
                  ["--limit", "0"], ["--threads", "0"]],
    "perceptron": [["--epochs", "0"], ["--digits", "3", "10"], ["--digits", "-1", "2"],
                   ["--seed", "-1"], ["--threads", "0"]],
}


@pytest.mark.parametrize("name,argv", [(n, a) for n, cases in EXAMPLE_BAD_NUMBERS.items()
                                       for a in cases], ids=lambda v: v if isinstance(v, str)
                         else " ".join(v))
def test_example_numbers_are_checked_at_parse_time(name, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_example(name).main(argv)
    assert exit_info.value.code == 2
    one_error_line(capsys.readouterr().err)


def _parsers():
    """Every parser of the CLI (each subcommand) and of the examples."""
    top = build_parser()
    found = [("cli", top)]
    for action in top._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            found += [(f"cli {k}", p) for k, p in action.choices.items()]
    found += [(name, load_example(name).build_parser()) for name in EXAMPLE_NAMES]
    return found


def test_no_numeric_flag_takes_an_unchecked_int_or_float():
    """The mechanism: every number goes through a checking type (positive_int, ...)."""
    for where, parser in _parsers():
        for action in parser._actions:
            assert action.type not in (int, float), f"{where} {action.option_strings}"


def test_fit_refuses_zero_epochs_and_empty_loaders():
    from tinygrad_cv.data import DataLoader, TensorDataset
    from tinygrad_cv.train import fit
    model = models.MLP(hidden_sizes=(4,))
    data = TensorDataset(tc.zeros(0, 1, 28, 28), tc.zeros(0, dtype=tc.int64))
    full = TensorDataset(tc.zeros(4, 1, 28, 28), tc.zeros(4, dtype=tc.int64))
    opt = tc.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"):
        fit(model, DataLoader(full), DataLoader(full), opt, 0, progress=False)
    with pytest.raises(ValueError, match="train_loader yields no batches"):
        fit(model, DataLoader(data), DataLoader(full), opt, 1, progress=False)


# ----------------------------------------------------------------------------- item 14
def test_missing_weights_file(tmp_path, capsys):
    missing = tmp_path / "nope.safetensors"
    assert main(["evaluate", str(missing)]) == 2
    assert one_error_line(capsys.readouterr().err) == \
        f"error: {missing}: No such file or directory"
    assert main(["predict", str(missing), digit_png(tmp_path / "d.png")]) == 2
    one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("content", [b"hello, not weights\n", b"\x80\x04\x95" + b"\0" * 40,
                                     b"PK\x03\x04" + b"\0" * 40, b""])
def test_weights_that_are_not_safetensors(tmp_path, capsys, content):
    path = tmp_path / "w.safetensors"
    path.write_bytes(content)
    assert main(["predict", str(path), digit_png(tmp_path / "d.png")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(path) in line


def test_weights_file_holding_an_optimizer_state(tmp_path, capsys):
    model = models.MLP()
    opt = tc.optim.Adam(model.parameters())
    path = tmp_path / "opt.safetensors"
    tc.save(opt.state_dict(), path)
    assert main(["predict", str(path), digit_png(tmp_path / "d.png")]) == 2
    assert "holds no model weights" in one_error_line(capsys.readouterr().err)


def _png_with_size(path, width, height):
    """A PNG whose header declares width x height grey pixels (only one row of data)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1))) + chunk(b"IEND", b""))
    return str(path)


def _bad_images(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)
                    ).save(tmp_path / "full.jpg", quality=90)
    whole = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[:len(whole) // 2])
    return {
        "not an image": (str(text), "not an image file"),
        "truncated jpeg": (str(tmp_path / "cut.jpg"), "cannot decode the image"),
        "bomb png": (_png_with_size(tmp_path / "bomb.png", 30000, 30000), "decompression bomb"),
        "bomb png (warning zone)": (_png_with_size(tmp_path / "big.png", 10000, 10000),
                                    "decompression bomb"),
        "missing": (str(tmp_path / "missing.png"), "No such file or directory"),
        "a folder": (str(tmp_path), "Is a directory"),
    }


def test_bad_image_files_name_the_file(tmp_path, capsys):
    weights = mlp_weights(tmp_path / "w.safetensors")
    for what, (path, expected) in _bad_images(tmp_path).items():
        assert main(["predict", weights, path]) == 2, what
        line = one_error_line(capsys.readouterr().err)
        assert line.startswith(f"error: {path}: ") and expected in line, (what, line)


def test_unknown_or_unavailable_device(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "w.safetensors", "x.png", "--device", "tpu"])
    assert exit_info.value.code == 2
    assert "unknown device 'tpu'" in one_error_line(capsys.readouterr().err)
    if tc.cuda.is_available():
        pytest.skip("a GPU is usable here: cannot test the no-GPU message")
    weights = mlp_weights(tmp_path / "w.safetensors")
    assert main(["predict", weights, digit_png(tmp_path / "d.png"), "--device", "cuda"]) == 2
    assert one_error_line(capsys.readouterr().err).startswith("error: --device cuda:0: ")


def _offline(monkeypatch, tmp_path):
    """No data anywhere and no network: every download fails at once."""
    monkeypatch.delenv("TINYGRAD_CV_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def no_network(url, *args, **kwargs):
        raise OSError(f"test: offline ({url})")
    monkeypatch.setattr("tinygrad_cv.datasets.download.download_file", no_network)
    empty = tmp_path / "data"
    empty.mkdir()
    return str(empty)


def test_missing_data_offline_is_the_message_without_a_traceback(tmp_path, capsys,
                                                                   monkeypatch):
    data_dir = _offline(monkeypatch, tmp_path)
    assert main(["train", "--model", "mlp", "--data-dir", data_dir]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == ["error: MNIST: the MNIST training files were not found. "
                      "Downloading them failed:"]
    assert "train-images-idx3-ubyte.gz" in err and "TINYGRAD_CV_DATA" in err
    weights = mlp_weights(tmp_path / "w.safetensors")
    assert main(["evaluate", weights, "--data-dir", data_dir]) == 2
    assert "error: MNIST: the MNIST test files were not found" in capsys.readouterr().err


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_examples_print_one_error_line_for_missing_data(name, tmp_path, capsys, monkeypatch):
    data_dir = _offline(monkeypatch, tmp_path)
    example = load_example(name)
    assert run_main(example.main, ["--data-dir", data_dir]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        "error: MNIST: the MNIST training files were not found. Downloading them failed:"]


def test_weights_of_another_dataset_are_refused(tmp_path, capsys):
    """Fashion-MNIST weights evaluated as MNIST once gave 4.91% without a word."""
    weights = str(tmp_path / "fashion.safetensors")
    tc.save(models.MLP().state_dict(), weights,
            metadata=weights_metadata("mlp", "fashion-mnist"))
    for argv in (["evaluate", weights, "--dataset", "mnist"],
                 ["predict", weights, digit_png(tmp_path / "d.png"), "--dataset", "mnist"]):
        assert main(argv) == 2
        assert one_error_line(capsys.readouterr().err) == (
            f"error: {weights}: holds weights trained on fashion-mnist, but --dataset mnist "
            "was given (leave --dataset out to use the recorded one)")


def test_weights_of_another_model_are_refused(tmp_path, capsys):
    weights = mlp_weights(tmp_path / "w.safetensors")
    assert main(["predict", weights, digit_png(tmp_path / "d.png"), "--model", "lenet5"]) == 2
    assert one_error_line(capsys.readouterr().err) == \
        f"error: {weights}: holds mlp weights, but --model lenet5 was given"
    lying = mlp_weights(tmp_path / "lying.safetensors", model="lenet5")
    assert main(["predict", lying, digit_png(tmp_path / "d.png")]) == 2
    assert "the weights do not fit model lenet5" in one_error_line(capsys.readouterr().err)
    unknown = mlp_weights(tmp_path / "unknown.safetensors", model="resnet50")
    assert main(["predict", unknown, digit_png(tmp_path / "d.png")]) == 2
    assert "which this version does not know" in one_error_line(capsys.readouterr().err)
    broken = mlp_weights(tmp_path / "broken.safetensors", normalize={"mean": [0.1]})
    assert main(["predict", broken, digit_png(tmp_path / "d.png")]) == 2
    assert "no valid normalisation" in one_error_line(capsys.readouterr().err)


def test_predict_uses_the_recorded_classes_args_and_normalisation(tmp_path, capsys):
    """A file from examples/mlp_mnist.py --hidden 32 on Fashion-MNIST: predict builds the
    32-unit MLP and names Fashion-MNIST's classes with no flag given."""
    model = models.MLP(hidden_sizes=(32,))
    weights = str(tmp_path / "fashion32.safetensors")
    tc.save(model.state_dict(), weights,
            metadata=weights_metadata("mlp", "fashion-mnist", {"hidden_sizes": [32]}))
    assert main(["predict", weights, digit_png(tmp_path / "d.png")]) == 0
    captured = capsys.readouterr()
    fashion = set(weights_metadata("mlp", "fashion-mnist")["classes"])
    label = captured.out.split(": ", 1)[1].split(" (")[0]
    assert label in fashion and captured.err == ""


def test_old_weights_without_metadata_still_work_and_say_so(tmp_path, capsys):
    weights = tmp_path / "old.safetensors"
    tc.save(models.LeNet5().state_dict(), weights)     # no metadata= (older files)
    assert serialization.load_metadata(weights) == {}
    assert main(["predict", str(weights), digit_png(tmp_path / "d.png")]) == 0
    captured = capsys.readouterr()
    assert "d.png: " in captured.out
    assert "has no tinygrad_cv metadata" in captured.err and "(lenet5)" in captured.err
    mlp = tmp_path / "old_mlp.safetensors"
    tc.save(models.MLP().state_dict(), mlp)
    assert main(["predict", str(mlp), digit_png(tmp_path / "d.png"), "--model", "lenet5"]) == 2
    assert "fit none of the models tried (lenet5: " in one_error_line(capsys.readouterr().err)


def test_save_folder_is_checked_before_training(tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "w.safetensors"
    assert main(["train", "--save", str(missing)]) == 2
    assert "does not exist" in one_error_line(capsys.readouterr().err)


def test_real_bugs_keep_their_traceback(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug, not the user's fault")
    monkeypatch.setattr("tinygrad_cv.cli_predict.load_image", broken)
    weights = mlp_weights(tmp_path / "w.safetensors")
    with pytest.raises(RuntimeError, match="a bug"):
        main(["predict", weights, digit_png(tmp_path / "d.png")])


def test_user_error_and_os_error_go_through_run_main(capsys):
    def mistake(argv):
        raise UserError("a thing is wrong")

    def disk_full(argv):
        raise OSError(28, "No space left on device", "/some/file")
    assert run_main(mistake) == 2
    assert one_error_line(capsys.readouterr().err) == "error: a thing is wrong"
    assert run_main(disk_full) == 2
    assert one_error_line(capsys.readouterr().err) == \
        "error: /some/file: No space left on device"


@needs_data
def test_train_records_metadata_and_evaluate_uses_it(tmp_path, capsys):
    weights = tmp_path / "fashion.safetensors"
    assert main(["train", "--model", "mlp", "--dataset", "fashion-mnist", "--limit", "500",
                 "--optimizer", "sgd", "--lr", "0.05", "--data-dir", DATA,
                 "--save", str(weights)]) == 0
    info = serialization.load_metadata(weights)
    assert info["model"] == "mlp" and info["model_args"] == {}
    assert info["dataset"] == "fashion-mnist" and info["classes"][0] == "T-shirt/top"
    assert info["input_size"] == [1, 28, 28]
    assert info["normalize"] == {"mean": [0.2860], "std": [0.3530]}
    assert info["epoch"] == 1 and 0 <= info["test_accuracy"] <= 1
    capsys.readouterr()
    assert main(["evaluate", str(weights), "--data-dir", DATA]) == 0   # no --dataset
    captured = capsys.readouterr()
    assert "mlp on the fashion-mnist test set" in captured.out
    assert "T-shirt/top" in captured.out and captured.err == ""


# ----------------------------------------------------------------------------- item 15
def test_every_option_has_help_and_shows_its_default():
    for where, parser in _parsers():
        text = " ".join(parser.format_help().split())     # line breaks as spaces
        for action in parser._actions:
            if action.dest in ("help", "version"):
                continue
            assert action.help, f"{where}: {action.option_strings or action.dest} has no help"
            if action.option_strings and action.default not in (None, False):
                assert f"(default: {action.default})" in text, \
                    f"{where}: {action.option_strings} does not show its default"


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"tinygrad_cv {tc.__version__}"
    for name in EXAMPLE_NAMES:
        with pytest.raises(SystemExit):
            load_example(name).main(["--version"])
        assert capsys.readouterr().out.strip() == f"tinygrad_cv {tc.__version__}"


def test_threads_flag_sets_the_thread_count(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("tinygrad_cv.threads.set_num_threads", calls.append)
    weights = mlp_weights(tmp_path / "w.safetensors")
    assert main(["predict", weights, digit_png(tmp_path / "d.png"), "--threads", "1"]) == 0
    assert calls == [1]
    data_dir = _offline(monkeypatch, tmp_path)
    for name in EXAMPLE_NAMES:     # set before the data are read
        assert run_main(load_example(name).main, ["--threads", "2", "--data-dir", data_dir]) == 2
    assert calls == [1, 2, 2, 2]


def test_progress_bar_only_on_a_terminal(monkeypatch):
    from tinygrad_cv.train import resolve_progress

    class Terminal:
        def isatty(self):
            return True
    assert resolve_progress(None) is False          # pytest captures stderr: not a terminal
    assert resolve_progress(True) is True and resolve_progress(False) is False
    monkeypatch.setattr("sys.stderr", Terminal())
    assert resolve_progress(None) is True


@needs_data
def test_a_log_gets_epoch_lines_and_no_bar_redraws(capsys):
    assert main(["train", "--model", "mlp", "--limit", "1000", "--epochs", "2",
                 "--optimizer", "sgd", "--data-dir", DATA]) == 0     # no --no-progress
    captured = capsys.readouterr()
    assert "epoch  1: train loss" in captured.out and "epoch  2: train loss" in captured.out
    assert "\r" not in captured.err and "img/s" not in captured.err
    assert len(captured.err) < 200, captured.err
