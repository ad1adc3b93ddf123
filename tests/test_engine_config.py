"""Config: .py/.toml/.json files, _base_ inheritance, _delete_, dotted merges, dump."""
import json

import pytest

from tinygrad_cv.engine import Config, ConfigError


def write(path, text):
    path.write_text(text)
    return path


def test_py_config_names_and_attribute_access(tmp_path):
    cfg = Config.fromfile(write(tmp_path / "a.py", "import math\n_hidden = 1\n"
                                "model = dict(type='MLP', hidden_sizes=(32,))\n"
                                "lr = math.sqrt(4)\ndef helper():\n    pass\n"))
    assert set(cfg) == {"model", "lr"}
    assert cfg.model.type == "MLP" and cfg.model.hidden_sizes == (32,) and cfg.lr == 2.0
    with pytest.raises(AttributeError, match="no key 'optimizer'"):
        cfg.optimizer


def test_toml_and_json(tmp_path):
    t = Config.fromfile(write(tmp_path / "a.toml", 'max_epochs = 2\n[model]\ntype = "MLP"\n'))
    j = Config.fromfile(write(tmp_path / "a.json", '{"max_epochs": 2, "model": {"type": "MLP"}}'))
    assert t.to_dict() == j.to_dict() == {"max_epochs": 2, "model": {"type": "MLP"}}


def test_base_list_nested_merge_and_delete(tmp_path):
    (tmp_path / "base").mkdir()
    write(tmp_path / "base" / "model.py", "model = dict(type='MLP', hidden_sizes=(8,), "
          "num_classes=10)\noptimizer = dict(type='SGD', lr=0.1, momentum=0.9)\n")
    write(tmp_path / "base" / "run.json", '{"max_epochs": 5, "seed": 1}')
    cfg = Config.fromfile(write(tmp_path / "child.py",
                                "_base_ = ['base/model.py', 'base/run.json']\n"
                                "model = dict(num_classes=3)\n"
                                "optimizer = dict(_delete_=True, type='Adam', lr=1e-3)\n"
                                "max_epochs = 2\n"))
    assert cfg.model.to_dict() == {"type": "MLP", "hidden_sizes": (8,), "num_classes": 3}
    assert cfg.optimizer.to_dict() == {"type": "Adam", "lr": 1e-3}    # momentum gone
    assert cfg.max_epochs == 2 and cfg.seed == 1
    single = Config.fromfile(write(tmp_path / "one.toml", '_base_ = "base/run.json"\nseed = 7\n'))
    assert single.to_dict() == {"max_epochs": 5, "seed": 7}


def test_merge_from_dict_dotted_keys(tmp_path):
    cfg = Config({"optimizer": {"type": "SGD", "lr": 0.1}, "hooks": [{"type": "A"}]})
    cfg.merge_from_dict({"optimizer.lr": 0.5, "optimizer.nesterov": True, "new.key": 1,
                         "hooks.0.type": "B"})
    assert cfg.optimizer.lr == 0.5 and cfg.optimizer.nesterov and cfg.new.key == 1
    assert cfg.hooks[0].type == "B" and cfg.optimizer.type == "SGD"
    with pytest.raises(ConfigError, match="cannot set keys under 'optimizer.lr': it is 0.5"):
        cfg.merge_from_dict({"optimizer.lr.x": 1})
    with pytest.raises(ConfigError, match="bad option key"):
        cfg.merge_from_dict({"a..b": 1})
    with pytest.raises(ConfigError, match="out of range"):
        cfg.merge_from_dict({"hooks.3": 1})


@pytest.mark.parametrize("suffix", [".json", ".py", ".toml"])
def test_dump_round_trips_deterministically(tmp_path, suffix):
    cfg = Config({"model": {"type": "MLP", "hidden_sizes": [8, 4]}, "lr": 0.1, "name": "x",
                  "flag": True, "max_epochs": 3})
    first = cfg.dump(tmp_path / f"a{suffix}")
    cfg.dump(tmp_path / f"b{suffix}")
    assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()
    assert Config.fromfile(first).to_dict() == cfg.to_dict()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_configs_name_the_file_and_key(tmp_path):
    with pytest.raises(ConfigError, match=r"bad\.py: line 1"):
        Config.fromfile(write(tmp_path / "bad.py", "model = dict(\n"))
    with pytest.raises(ConfigError, match=r"boom\.py: running the config failed: ZeroDivision"):
        Config.fromfile(write(tmp_path / "boom.py", "x = 1 / 0\n"))
    with pytest.raises(ConfigError, match=r"bad\.json: not valid JSON"):
        Config.fromfile(write(tmp_path / "bad.json", "{"))
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        Config.fromfile(write(tmp_path / "bad.toml", "a = \n"))
    with pytest.raises(ConfigError, match=r"c\.py: _base_ names 'missing\.py'"):
        Config.fromfile(write(tmp_path / "c.py", "_base_ = 'missing.py'\n"))
    with pytest.raises(ConfigError, match="cycle"):
        Config.fromfile(write(tmp_path / "self.py", "_base_ = 'self.py'\n"))
    with pytest.raises(ConfigError, match="unknown config type '.yaml'"):
        Config.fromfile(write(tmp_path / "c.yaml", "a: 1\n"))
    with pytest.raises(ConfigError, match="TOML cannot hold None"):
        Config({"a": None}).dump(tmp_path / "x.toml")
    assert json.loads(Config({"a": 1}).to_json()) == {"a": 1}
