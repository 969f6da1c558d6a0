"""The reference figures the zoo tests compare with, carried by the repository (``tests/reference/``).

``torchvision_models.json`` and ``coverage_models.json`` were measured on torchvision and MONAI models
(``tests/reference/README.md`` says how and with which versions); ``tools/make_reference.py`` makes them
again. Nothing here reads outside the repository."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).parent / "reference"


@functools.cache
def models(file: str = "torchvision_models.json") -> dict[str, dict[str, Any]]:
    """Every model's figures in ``file``, by model name."""
    data = json.loads((REFERENCE / file).read_text())
    return {entry["model"]: entry for entry in data["models"]}


def model(name: str) -> dict[str, Any]:
    """One model's figures, from either file (torchvision's first)."""
    for file in ("torchvision_models.json", "coverage_models.json"):
        found = models(file).get(name)
        if found is not None:
            return found
    raise KeyError(f"no reference figures for {name!r} in {REFERENCE}")
