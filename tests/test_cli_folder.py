"""`train/predict/evaluate --dataset folder`: a user's own images end to end from the CLI."""
import numpy as np
import pytest

from tinygrad_cv import cli, serialization

CLASSES = ["blue", "green", "red"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 classes of coloured squares on noise, 20 images each, PNG and JPEG."""
    from PIL import Image
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir()
        for k in range(20):
            img = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
            img[8:24, 8:24, 2 - c] = 230
            Image.fromarray(img).save(root / name / f"{k}.{'png' if k % 2 else 'jpg'}")
    return root


@pytest.fixture(scope="module")
def weights(folder, tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "folder.safetensors"
    status = cli.main(["train", "--dataset", "folder", "--data-dir", str(folder),
                       "--image-size", "16", "--workers", "0", "--epochs", "2",
                       "--batch-size", "16", "--optimizer", "adam", "--lr", "0.01",
                       "--save", str(path), "--no-progress"])
    assert status == 0
    return path


def test_train_records_folder_metadata(weights):
    meta = serialization.load_metadata(weights)
    assert meta["model"] == "small_cnn" and meta["dataset"] == "folder"
    assert meta["model_args"] == {"num_classes": 3, "in_channels": 3}
    assert meta["classes"] == CLASSES
    assert meta["input_size"] == [3, 16, 16] and meta["resize"] == 16
    assert meta["normalize"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert meta["val_fraction"] == pytest.approx(0.2) and meta["seed"] == 1


def test_predict_prints_recorded_class_names(weights, folder, capsys):
    images = [str(folder / name / "3.png") for name in CLASSES]
    assert cli.main(["predict", str(weights)] + images) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for path, line in zip(images, lines):
        assert line.startswith(path + ": ")
        assert line.split(": ")[1].split()[0] in CLASSES


def test_predict_bad_image_is_one_error_line(weights, folder, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    good = str(folder / "red" / "1.png")
    assert cli.main(["predict", str(weights), str(bad), good]) == 2
    captured = capsys.readouterr()
    assert [l for l in captured.err.splitlines() if l.startswith("error:")] == [
        l for l in captured.err.splitlines() if l]
    assert str(bad) in captured.err
    assert captured.out.startswith(good + ": ")


def test_evaluate_on_validation_split(weights, folder, capsys):
    assert cli.main(["evaluate", str(weights), "--data-dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "validation split" in out and "/12)" in out     # round(0.2 * 60) images held out


@pytest.mark.parametrize("extra, message", [
    (["--data-dir", "/no/such/folder"], "no such folder"),
    ([], "needs --data-dir"),
    (["--model", "mnist_cnn"], "1-channel"),
])
def test_train_errors(folder, extra, message, capsys):
    argv = ["train", "--dataset", "folder", "--workers", "0"]
    if "--data-dir" not in extra and message != "needs --data-dir":
        argv += ["--data-dir", str(folder)]
    assert cli.main(argv + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_train_on_folder_without_classes(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["train", "--dataset", "folder", "--data-dir", str(tmp_path / "empty"),
                     "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
