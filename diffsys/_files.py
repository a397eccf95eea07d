"""The file side of the input boundary: reading the files users give (chips, spaces, systems, peers' formats) and
writing outputs, with errors that name the file and the problem.

* inputs are checked before they are opened: they exist, are regular files (not directories), are readable and
  decode as UTF-8 text (:func:`check_input_file`, :func:`read_text`);
* JSON/YAML files are parsed with the file named in every error, and non-finite numbers (``NaN``, ``Infinity``,
  ``1e999``, YAML ``.inf``) are rejected with the path of the field (:func:`read_structured`);
* outputs are checked before any work is done (:func:`check_output_file`, :func:`check_output_dir`) and written
  atomically (:func:`atomic_write`): to a temporary file in the destination's folder, moved into place with
  ``os.replace`` only once complete, so a failure never leaves a partial output behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile

import yaml

#: largest input file read (bytes); the formats read here are configuration-sized
MAX_INPUT_BYTES = 256 * 2**20


def check_input_file(path: str | os.PathLike, what: str = "file") -> str:
    """``path`` as a string once it names an existing, readable regular file; else ``FileNotFoundError`` (missing)
    or ``ValueError`` (a directory or other non-file, unreadable, too large)."""
    path = os.fspath(path)
    if not path:
        raise ValueError(f"{what}: empty path")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{what} {path} is a directory; expected a file")
    if not os.path.isfile(path):
        raise ValueError(f"{what} {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{what} {path} is not readable (permission denied)")
    size = os.path.getsize(path)
    if size > MAX_INPUT_BYTES:
        raise ValueError(f"{what} {path} is {size / 2**20:.0f} MiB; at most {MAX_INPUT_BYTES // 2**20} MiB is read")
    return path


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The UTF-8 text of an input file checked with :func:`check_input_file`."""
    path = check_input_file(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} {path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise ValueError(f"{what} {path}: cannot be read ({e.strerror or e})") from None


def _reject_non_finite(obj, where: str):
    """Raise ``ValueError`` at the first NaN/inf number in parsed JSON/YAML, naming its field path."""
    stack = [(obj, "")]
    while stack:
        node, at = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            raise ValueError(f"{where}: field {at or '(top level)'} must be a finite number, got {node!r}")
        if isinstance(node, dict):
            stack.extend((v, f"{at}.{k}" if at else str(k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(node))


def parse_structured(text: str, source: str, what: str = "file", *, is_yaml: bool = False):
    """Parse JSON (or YAML) text; malformed content and non-finite numbers raise ``ValueError`` naming ``source``."""
    kind = "YAML" if is_yaml else "JSON"
    try:
        data = yaml.safe_load(text) if is_yaml else json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        msg = " ".join(str(e).split())
        raise ValueError(f"{source}: malformed {kind} {what}: {msg}") from None
    except RecursionError:
        raise ValueError(f"{source}: {kind} {what} is nested too deeply") from None
    _reject_non_finite(data, f"{source}")
    return data


def read_structured(path: str | os.PathLike, what: str = "file"):
    """Parse a JSON (``.json``) or YAML (``.yaml``/``.yml``) file; malformed content raises ``ValueError`` naming
    the file, and a missing file ``FileNotFoundError``."""
    text = read_text(path, what)
    path = os.fspath(path)
    return parse_structured(text, path, what, is_yaml=path.endswith((".yaml", ".yml")))


def _existing_ancestor(path: str) -> str:
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    return parent


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> str:
    """``path`` as a string once it is (or can be created as) a writable directory; else ``ValueError``."""
    path = os.fspath(path)
    if not path:
        raise ValueError(f"{what}: empty path")
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ValueError(f"{what} {path} exists and is not a directory")
        target = path
    else:
        target = _existing_ancestor(path)
        if not os.path.isdir(target):
            raise ValueError(f"{what} {path} cannot be created: {target} is not a directory")
    if not os.access(target, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {path} is not writable (permission denied on {target})")
    return path


def check_output_file(path: str | os.PathLike, what: str = "output file") -> str:
    """``path`` as a string once a file can be written there: not a directory, its folder exists or can be created
    and is writable; else ``ValueError``. Nothing is created."""
    path = os.fspath(path)
    if not path:
        raise ValueError(f"{what}: empty path")
    if os.path.isdir(path):
        raise ValueError(f"{what} {path} is a directory; expected a file name")
    if os.path.exists(path) and not os.path.isfile(path):
        raise ValueError(f"{what} {path} exists and is not a regular file")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ValueError(f"{what} {path} is not writable (permission denied)")
    check_output_dir(os.path.dirname(path) or ".", f"folder of the {what}")
    return path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, what: str = "output file", *, binary: bool = False):
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path`` (``os.replace``), on any
    exception it is removed and ``path`` is left as it was."""
    path = check_output_file(path, what)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str, what: str = "output file") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, what) as f:
        f.write(text)
