"""`Config`: a training recipe read from a .py, .toml or .json file, as mmengine's.

    cfg = Config.fromfile("configs/mnist_cnn.py")
    cfg.merge_from_dict({"optimizer.lr": 0.5})
    cfg.model.type            # attribute access to nested dicts
    cfg.dump("work_dir/config.json")

- A `.py` config is executed as a plain Python file (it can run code, by design, as in
  mmengine: only use configs you trust); its module-level names that do not start with
  an underscore and hold plain data (dicts, lists, tuples, str, numbers, bools, None;
  not modules, functions, classes or other objects) form the config. `.toml` is read with
  `tomllib`, `.json` with `json`.
- `_base_` (a path or a list of paths, relative to the file) names configs to start
  from: bases are merged left to right, then the file itself on top. Dicts merge key by
  key, recursively; a dict with `_delete_=True` replaces its base instead.
- `merge_from_dict({"a.b.c": v})` sets nested keys by dotted path (an integer part
  indexes a list), what the CLI's `--cfg-options a.b.c=v` does.

A malformed file, a missing base or a bad key is a `ConfigError` (a `UserError`, so the
CLI prints one `error:` line) naming the file and the key.
"""
from __future__ import annotations

import copy
import json
import math
import os

from ..errors import UserError

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"
SUFFIXES = (".py", ".toml", ".json")
PLAIN_TYPES = (dict, list, tuple, str, int, float, bool, type(None))
"""What a .py config's module-level names may hold to be part of the config; modules,
functions, classes and other imported objects are left out."""


class ConfigError(UserError):
    """A config file that cannot be read or a key that cannot be set; names both."""


class ConfigDict(dict):
    """A dict whose keys are also attributes (`cfg.model.type`); nested dicts are
    ConfigDicts too. A missing attribute is an AttributeError naming the key."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __setitem__(self, key, value):
        super().__setitem__(key, _wrap(value))

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r} "
                                 f"(it has {', '.join(map(str, self)) or 'none'})") from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __deepcopy__(self, memo):
        return ConfigDict({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def to_dict(self):
        """Plain dicts and lists all the way down."""
        return _unwrap(self)


def _wrap(value):
    if isinstance(value, dict) and not isinstance(value, ConfigDict):
        return ConfigDict(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


def _unwrap(value):
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_unwrap(v) for v in value)
    return value


class Config(ConfigDict):
    """A ConfigDict read from a file (`filename` remembers which)."""

    def __init__(self, cfg_dict=None, filename=None):
        super().__init__(cfg_dict or {})
        object.__setattr__(self, "filename", filename)

    def __getattr__(self, name):
        if name == "filename":
            return self.__dict__.get("filename")
        return super().__getattr__(name)

    def __deepcopy__(self, memo):
        return Config({k: copy.deepcopy(v, memo) for k, v in self.items()}, self.filename)

    # ------------------------------------------------------------------ reading
    @staticmethod
    def fromfile(path):
        """The config in `path` with its `_base_` chain resolved."""
        path = os.fspath(path)
        return Config(_read_with_bases(os.path.abspath(path), ()), filename=path)

    # ------------------------------------------------------------------ editing
    def merge_from_dict(self, options):
        """Set every `"a.b.c": value` of `options` (dicts in `value` merge into the
        existing ones, as `_base_` does)."""
        for dotted, value in options.items():
            if not isinstance(dotted, str) or not dotted or any(
                    not part for part in dotted.split(".")):
                raise ConfigError(f"{self._where()}: bad option key {dotted!r} "
                                  f"(expected a dotted name like optimizer.lr)")
            parts = dotted.split(".")
            node = self
            for depth, part in enumerate(parts[:-1]):
                node = _child(node, part, ".".join(parts[:depth + 1]), self._where(), create=True)
            last = parts[-1]
            if isinstance(node, list):
                index = _list_index(node, last, dotted, self._where())
                node[index] = _wrap(value)
            elif isinstance(node.get(last), dict) and isinstance(value, dict):
                node[last] = merge(node[last], value)
            else:
                node[last] = value

    def _where(self):
        return self.filename or "config"

    # ------------------------------------------------------------------ writing
    def dump(self, path):
        """Write the config to `path` (.json, .py or .toml, by suffix), atomically and
        deterministically (keys in config order); reading it back gives an equal config."""
        path = os.fspath(path)
        suffix = os.path.splitext(path)[1].lower()
        if suffix == ".json":
            text = json.dumps(_jsonable(self.to_dict(), path), indent=2) + "\n"
        elif suffix == ".py":
            text = "".join(f"{key} = {_py_literal(value, path, key)}\n"
                           for key, value in self.to_dict().items())
        elif suffix == ".toml":
            text = _toml_document(self.to_dict(), path)
        else:
            raise ConfigError(f"{path}: cannot write a config as {suffix or 'no suffix'!r} "
                              f"(expected one of {', '.join(SUFFIXES)})")
        from ..serialization import write_atomically
        write_atomically(path, text.encode("utf-8"))
        return path

    def to_json(self):
        """The config as deterministic JSON text (values that JSON cannot hold are
        written as their repr), e.g. for a checkpoint's metadata."""
        return json.dumps(_jsonable(self.to_dict(), None), sort_keys=False)

    def __repr__(self):
        return f"Config(filename={self.filename!r}, {dict.__repr__(self)})"


# ----------------------------------------------------------------------------- reading
def _read_with_bases(path, chain):
    if path in chain:
        cycle = " -> ".join(list(chain) + [path])
        raise ConfigError(f"{path}: _base_ inheritance forms a cycle ({cycle})")
    data = _read_file(path)
    bases = data.pop(BASE_KEY, None)
    if bases is None:
        return _strip_delete(data)
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, (list, tuple)) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: {BASE_KEY} must be a path or a list of paths, got {bases!r}")
    merged = {}
    folder = os.path.dirname(path)
    for base in bases:
        base_path = os.path.normpath(os.path.join(folder, base))
        if not os.path.isfile(base_path):
            raise ConfigError(f"{path}: {BASE_KEY} names {base!r}, but {base_path} does not exist")
        merged = merge(merged, _read_with_bases(base_path, chain + (path,)))
    return merge(merged, data)


def _read_file(path):
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"{path}: unknown config type {suffix or '(no suffix)'!r}; "
                          f"expected one of {', '.join(SUFFIXES)}")
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such config file")
    with open(path, "rb") as fh:
        raw = fh.read()
    if suffix == ".json":
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    elif suffix == ".toml":
        import tomllib
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    else:
        data = _exec_python(path, raw)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of names to values, "
                          f"got {type(data).__name__}")
    return data


def _exec_python(path, raw):
    """Run a .py config; its public module-level names (not modules, functions or
    classes) are the config."""
    namespace = {"__file__": path, "__name__": "__tinygrad_cv_config__"}
    try:
        code = compile(raw, path, "exec")
        exec(code, namespace)            # noqa: S102  (configs are code, by design)
    except SyntaxError as exc:
        raise ConfigError(f"{path}: line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:             # the config's own code failed
        raise ConfigError(f"{path}: running the config failed: "
                          f"{type(exc).__name__}: {exc}") from None
    return {key: value for key, value in namespace.items()
            if not key.startswith("__") and (key == BASE_KEY or not key.startswith("_"))
            and isinstance(value, PLAIN_TYPES)}


def merge(base, update):
    """`update` merged into a copy of `base`: dicts key by key, recursively; a dict
    with `_delete_=True` replaces what it updates; anything else replaces."""
    if not isinstance(base, dict) or not isinstance(update, dict):
        return _strip_delete(copy.deepcopy(update))
    if update.get(DELETE_KEY, False):
        return _strip_delete(copy.deepcopy(update))
    result = {k: copy.deepcopy(v) for k, v in base.items()}
    for key, value in update.items():
        if key == DELETE_KEY:
            continue
        result[key] = merge(result[key], value) if key in result else _strip_delete(
            copy.deepcopy(value))
    return result


def _strip_delete(value):
    if isinstance(value, dict):
        return {k: _strip_delete(v) for k, v in value.items() if k != DELETE_KEY}
    if isinstance(value, list):
        return [_strip_delete(v) for v in value]
    return value


def _child(node, part, dotted, where, create):
    if isinstance(node, list):
        return node[_list_index(node, part, dotted, where)]
    if not isinstance(node, dict):
        raise ConfigError(f"{where}: cannot set {dotted!r}: it is a {type(node).__name__}, "
                          f"not a dict")
    if part not in node:
        if not create:
            raise ConfigError(f"{where}: no key {dotted!r}")
        node[part] = ConfigDict()
    child = node[part]
    if not isinstance(child, (dict, list)):
        raise ConfigError(f"{where}: cannot set keys under {dotted!r}: it is "
                          f"{child!r}, not a dict")
    return child


def _list_index(node, part, dotted, where):
    try:
        index = int(part)
    except ValueError:
        raise ConfigError(f"{where}: {dotted!r}: {part!r} indexes a list; expected an "
                          f"integer") from None
    if not -len(node) <= index < len(node):
        raise ConfigError(f"{where}: {dotted!r}: index {index} is out of range for a list "
                          f"of {len(node)}")
    return index


# ----------------------------------------------------------------------------- writing
def _jsonable(value, path):
    if isinstance(value, dict):
        return {str(k): _jsonable(v, path) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, path) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) and path is not None:
            raise ConfigError(f"{path}: JSON cannot hold the value {value!r}")
        return value
    if path is not None:
        raise ConfigError(f"{path}: cannot write {type(value).__name__} {value!r} to a config file")
    return repr(value)


def _py_literal(value, path, key):
    if isinstance(value, dict):
        items = ", ".join(f"{k!r}: {_py_literal(v, path, key)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_py_literal(v, path, key) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(_py_literal(v, path, key) for v in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise ConfigError(f"{path}: key {key!r}: cannot write {type(value).__name__} {value!r} "
                      f"to a .py config")


def _toml_value(value, path, key):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v, path, key) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v, path, key)}"
                               for k, v in value.items()) + "}"
    what = "None" if value is None else type(value).__name__
    raise ConfigError(f"{path}: key {key!r}: TOML cannot hold {what}")


def _toml_document(data, path):
    """Top-level scalars first, then one inline table per dict (TOML needs that order)."""
    plain = [(k, v) for k, v in data.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in data.items() if isinstance(v, dict)]
    lines = [f"{json.dumps(str(k))} = {_toml_value(v, path, k)}" for k, v in plain + tables]
    return "\n".join(lines) + "\n"
