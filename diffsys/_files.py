"""Reading the JSON/YAML files users write (chips, spaces, systems), with clear errors."""

from __future__ import annotations

import json
import os

import yaml


def read_structured(path: str | os.PathLike, what: str = "file"):
    """Parse a JSON (``.json``) or YAML (``.yaml``/``.yml``) file; malformed content raises ``ValueError`` naming
    the file, and a missing file ``FileNotFoundError``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    with open(path) as f:
        text = f.read()
    is_yaml = path.endswith((".yaml", ".yml"))
    try:
        return yaml.safe_load(text) if is_yaml else json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: malformed {'YAML' if is_yaml else 'JSON'} {what}: {e}") from e
