import json
import pathlib

REFERENCE = pathlib.Path(__file__).resolve().parent / "reference"


def load_reference(name: str) -> dict:
    """Reference runs of the real libraries (Paddle, torch, optax, Keras, TF1, timm),
    copied from the project's shared/reference so the suite is self-contained."""
    return json.loads((REFERENCE / name).read_text())
