"""``cnnspec check --format github``: GitHub Actions workflow commands that annotate the offending line of a
pull request (``::error file=...,line=...,col=...,endLine=...,endColumn=...,title=...::message``), escaped
as the Actions runner escapes them: ``%``, CR and LF in the message; also ``:`` and ``,`` in properties."""

from __future__ import annotations

from cnnspec.errors import SourcePos, SpecError, one_line
from cnnspec.report.regions import EndColumns


def escape_data(text: str) -> str:
    """A workflow command's message (the runner's ``escapeData``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value, e.g. a file name (``escapeProperty``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(file: str, error: SpecError, ends: EndColumns) -> str:
    """The ``::error`` line of ``error``, found while checking ``file``. ``endColumn`` is the column of the
    token's last character (GitHub counts both ends in)."""
    pos = error.pos or SourcePos(file, 1, 1)
    props = [("file", one_line(pos.file)), ("line", str(pos.line)), ("col", str(pos.col))]
    end = ends.end(pos)
    if end is not None:
        props += [("endLine", str(pos.line)), ("endColumn", str(end - 1))]
    props.append(("title", f"cnnspec ({error.code})"))
    return "::error " + ",".join(f"{key}={escape_property(value)}" for key, value in props) + \
        f"::{escape_data(error.message)}"
