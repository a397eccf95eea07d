import os
import pathlib
import shutil
import tempfile

# The tests evaluate small batches of large programs (the training step is ~11,000 HLO ops), so their time is XLA
# compilation; LLVM's optimization level changes the generated code's speed and last-bit rounding, not the model
# (subprocesses a test compares bit for bit inherit the flag). Benchmarks run at the default level. Set before JAX creates its CPU client (the first array).
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from diffsys.cli._provenance import CACHE_ENV, enable_compilation_cache  # noqa: E402

# One persistent compilation cache for the whole run, shared by the xdist workers and by the command-line
# subprocesses the tests start (they read $DIFFSYS_CACHE_DIR): a program that several tests compile (the default
# training step, the sweep engine's stages) is compiled once. Never the user's own cache folder; the run's pytest
# process (the xdist workers' parent) removes it at the end.
_RUN = os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()
os.environ[CACHE_ENV] = os.path.join(tempfile.gettempdir(), f"diffsys-test-jax-cache-{_RUN}")
enable_compilation_cache(os.environ[CACHE_ENV])


def pytest_sessionfinish(session, exitstatus):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(os.path.join(tempfile.gettempdir(), f"diffsys-test-jax-cache-{os.getpid()}"), ignore_errors=True)

# CI runs property tests with a fixed seed sequence, so a result never depends on the run; locally they explore.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

SHARED = pathlib.Path(os.environ.get("DIFFSYS_SHARED", pathlib.Path(__file__).resolve().parents[1].parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir():
    """``../shared`` beside the repository (validation data, peers' input samples)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED} (set DIFFSYS_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def validation_dir(shared_dir):
    path = shared_dir / "validation"
    if not path.is_dir():
        pytest.skip(f"no validation data at {path}")
    return path


@pytest.fixture(scope="session")
def calc(shared_dir):
    """Calculon's input samples (``../shared/interop/calculon``)."""
    path = shared_dir / "interop" / "calculon"
    if not path.is_dir():
        pytest.skip(f"no Calculon samples at {path}")
    return path
