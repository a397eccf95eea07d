"""Provenance of the command outputs: what produced a file (diffsys and JAX versions, the command line with every
effective option, the design space's fingerprint, the seed, the devices), and the persistent compilation cache."""

from __future__ import annotations

import datetime
import os
import platform
import sys

#: environment variable naming the persistent compilation cache folder
CACHE_ENV = "DIFFSYS_CACHE_DIR"
#: files that mark a folder as holding a previous run's outputs
RUN_MARKERS = ("summary.json", "pareto_front.csv", "pareto_front.json", "pareto_front.png", "sweep_result.npz")


def command_line(args, command: str) -> list:
    """The command as an argument list with every effective option (defaults included), so it can be re-run or
    re-parsed exactly (``diffsys merge`` rebuilds the space from it)."""
    argv = ["diffsys", command]
    for name, value in sorted(vars(args).items()):
        if name in ("func", "command") or value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif name == "shard":
            argv += [flag, f"{value[0]}/{value[1]}"]
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


def provenance(args, command: str, *, fingerprint: str | None = None, seed=None, extra=None) -> dict:
    """The provenance record written into every output of a command."""
    import jax
    import jaxlib

    from .. import __version__

    record = {
        "diffsys_version": __version__,
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "python_version": platform.python_version(),
        "command_line": command_line(args, command),
        "argv": list(sys.argv),
        "space_fingerprint": fingerprint,
        "seed": seed,
        "devices": [str(d) for d in jax.devices()],
        "backend": jax.default_backend(),
        "process_count": jax.process_count(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    record.update(extra or {})
    return record


def png_metadata(record: dict) -> dict:
    """PNG text chunks for ``savefig(metadata=...)``: the software and the provenance record as JSON."""
    import json

    return {"Software": f"diffsys {record.get('diffsys_version', '')}", "Comment": json.dumps(record)}


def check_fresh_output(out: str, force: bool, flag: str = "--out") -> None:
    """Refuse a folder holding a previous run's outputs unless ``force``."""
    if force or not os.path.isdir(out):
        return
    found = [m for m in RUN_MARKERS if os.path.exists(os.path.join(out, m))]
    if found:
        raise ValueError(f"{flag} folder {out} holds a previous run ({found[0]}); pass --force to overwrite it or "
                         "choose another folder")


def default_cache_dir() -> str:
    """``$DIFFSYS_CACHE_DIR``, else ``<user cache dir>/diffsys/jax`` (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "diffsys", "jax")


def enable_compilation_cache(cache_dir: str | None, enabled: bool = True) -> str | None:
    """Turn on JAX's persistent compilation cache in ``cache_dir`` (default :func:`default_cache_dir`), caching
    every compiled program (no minimum compile time or size), so a second command in a new process loads its
    executables instead of compiling them. Returns the folder, or ``None`` when disabled or not writable."""
    if not enabled:
        return None
    import jax

    path = os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir()))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    if not os.access(path, os.W_OK):
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    try:  # a program compiled earlier in this process (an import) fixed the cache as off: check it again
        from jax._src import compilation_cache

        compilation_cache.reset_cache()
    except (ImportError, AttributeError):  # pragma: no cover - other JAX versions
        pass
    return path


def add_cache_arguments(p) -> None:
    """``--cache-dir`` and ``--no-cache`` on a command's parser."""
    p.add_argument("--cache-dir", default=None,
                   help=f"persistent compilation cache folder (default ${CACHE_ENV} or ~/.cache/diffsys/jax)")
    p.add_argument("--no-cache", action="store_true", help="do not use the persistent compilation cache")
