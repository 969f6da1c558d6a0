"""One-off rewrite of expected message texts for the layer-naming change (issue 10, item 9): ``conv `6```
becomes ``layer 6 (conv)`` and ``conv `layer1.0.conv1``` becomes ``layer `layer1.0.conv1` (conv)``.

Usage: ``python tools/relabel_messages.py FILE...``; prints how many texts it changed in each file."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from cnnspec.ops import REGISTRY

_OPS = "|".join(sorted((re.escape(name) for name in REGISTRY), key=len, reverse=True))
_OLD = re.compile(rf"(?<![\w`-])({_OPS}) `([A-Za-z0-9_][A-Za-z0-9_.\-]*)`")


def _new(match: re.Match[str]) -> str:
    op, path = match.group(1), match.group(2)
    return f"layer {path} ({op})" if path.isdigit() else f"layer `{path}` ({op})"


def main(paths: list[str]) -> int:
    total = 0
    for name in paths:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            print(f"{name}: skipped (not UTF-8: the broken catalogue's encoding cases)")
            continue
        new, count = _OLD.subn(_new, text)
        if count:
            path.write_text(new, encoding="utf-8")
            print(f"{name}: {count}")
            total += count
    print(f"total: {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
