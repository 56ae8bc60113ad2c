import json
import pathlib

import pytest

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
REFERENCE = SHARED / "reference"


def load_reference(name: str) -> dict:
    """A reference file from ../shared/reference (real Paddle / torch / optax / ... runs)."""
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"reference data {path} not present")
    return json.loads(path.read_text())
