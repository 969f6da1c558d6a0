"""``cnnspec check --with-importers``: the spec files that import a given file, directly or through other
block libraries, so that a change to a block library re-checks every spec that uses it.

A spec may import only files inside its own directory tree (``cnnspec.frontend.link``), so the files that
can import ``blocks/x.yaml`` are the YAML files of its directory and of each directory above it, up to the
working directory (the repository root under pre-commit). Each candidate's ``use:`` lists are followed
(every file read once); files that cannot be loaded are skipped here, since checking them reports why."""

from __future__ import annotations

import os
from pathlib import Path

from cnnspec.errors import SpecError

SPEC_SUFFIXES = (".yaml", ".yml")


def importers(changed: list[Path], root: Path | None = None) -> list[Path]:
    """The YAML files that import any of ``changed`` (transitively), in path order, without ``changed``."""
    top = _real(root or Path.cwd())
    targets = {_real(path) for path in changed}
    uses = _UseGraph()
    found: dict[Path, Path] = {}
    for candidate in sorted({c for path in changed for c in _candidates(path, top)}):
        real = _real(candidate)
        if real not in targets and real not in found and uses.reaches(real) & targets:
            found[real] = candidate
    return sorted(found.values())


def _candidates(changed: Path, top: Path) -> list[Path]:
    """YAML files in the directory of ``changed`` and in each directory above it, up to ``top``."""
    directory = _real(changed).parent
    out: list[Path] = []
    while True:
        shown = Path(os.path.relpath(directory)) if top in (directory, *directory.parents) else directory
        out.extend(shown / entry.name for entry in os.scandir(directory)
                   if entry.name.endswith(SPEC_SUFFIXES) and entry.is_file())
        if directory == top or top not in directory.parents:
            return out
        directory = directory.parent


class _UseGraph:
    """The files each YAML file imports (``use:``), read once each."""

    def __init__(self) -> None:
        self._imports: dict[Path, list[Path]] = {}

    def reaches(self, start: Path) -> set[Path]:
        seen: set[Path] = set()
        todo = list(self._direct(start))
        while todo:
            path = todo.pop()
            if path not in seen:
                seen.add(path)
                todo.extend(self._direct(path))
        return seen

    def _direct(self, path: Path) -> list[Path]:
        if path not in self._imports:
            self._imports[path] = _read_uses(path)
        return self._imports[path]


def _read_uses(path: Path) -> list[Path]:
    from cnnspec.frontend.read import load_file

    try:
        use = load_file(path).data.get("use")
    except SpecError:
        return []
    if not isinstance(use, list):
        return []
    return [_real(path.parent / item) for item in use if isinstance(item, str) and "\0" not in item]


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))
