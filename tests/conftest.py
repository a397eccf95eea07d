import os
import pathlib

import pytest
from hypothesis import settings

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
