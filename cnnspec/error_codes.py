"""Kinds of spec errors, for tools that group problems: SARIF rule ids (``check --format sarif``) and the
titles of GitHub annotations (``check --format github``).

A :class:`~cnnspec.errors.SpecError` may be given its kind where it is raised (``code="shape"``); otherwise
:func:`classify` derives it from the message's wording. Every kind is an entry of :data:`KINDS`, which says
in a line what it means and in a few what to do."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    id: str  # the SARIF rule id, lower-case words joined by dashes
    summary: str  # one line: what went wrong (SARIF shortDescription)
    help: str  # what to do (SARIF help)


KINDS: dict[str, Kind] = {k.id: k for k in (
    Kind("yaml-syntax", "The file is not valid YAML.",
         "Fix the YAML at the position shown: indent with spaces, close every bracket and quote, and keep one "
         "document per file."),
    Kind("yaml-feature", "The file uses a YAML feature that specs do not allow.",
         "Write every value out: no anchors or aliases (put repeated layers in a block), no tags, no duplicate "
         "keys, and quote keys that YAML reads as booleans (`\"on\"`)."),
    Kind("file", "The file cannot be read as a spec.",
         "A spec is a UTF-8 YAML file holding one mapping with `name`, `input` and `layers` (or only `blocks` "
         "for a block library)."),
    Kind("limit", "A number or size is over what cnnspec accepts.",
         "Whole numbers are at most 2^63 - 1, numbers must be finite, and files, nesting and networks have "
         "size limits (docs/robustness.md)."),
    Kind("unknown-key", "A key, option or block argument that does not exist.",
         "Check the spelling against the op's options (`cnnspec schema` lists them); input sizes are never "
         "written."),
    Kind("unknown-name", "An op, block or `$parameter` that is not defined.",
         "Check the spelling, define the block or parameter, or import the file that defines it with `use:`."),
    Kind("missing-key", "A required key or block argument is missing.",
         "Add the key or argument named in the message."),
    Kind("structure", "A layer or block written in a form specs do not allow.",
         "A layer is an op name (`- relu`) or a mapping with one op and its settings "
         "(`- conv: {out: 16, kernel: 3}`); layer lists are YAML lists."),
    Kind("wrong-type", "A value of the wrong type.",
         "Write the kind of value the message names (a whole number, a list, true or false, ...)."),
    Kind("invalid-value", "A value outside what the setting allows.",
         "Use a value in the range or set that the message names."),
    Kind("expression", "A `$expression` that cannot be evaluated.",
         "Expressions take `$names`, numbers, `+ - * / // %`, parentheses, `min` and `max` (one argument or "
         "more), `ceil(x)` and `floor(x)` (one), `make_divisible(v, divisor)` (two); a float where a whole "
         "number is wanted is rounded with `ceil`, `floor` or `//`."),
    Kind("name", "An invalid or duplicate layer or block name.",
         "Names are ASCII identifiers, not Python keywords, dunders or nn.Module attributes, and unique in "
         "their scope."),
    Kind("import", "A `use:` import that cannot be followed.",
         "Imports are relative paths to existing files inside the spec's directory, without cycles."),
    Kind("shape", "A layer cannot take the shape it receives.",
         "Follow the shapes with `cnnspec summary`: change the layer's settings or the layers before it, as the "
         "message suggests."),
    Kind("budget", "The network is over a budget of its `constraints`.",
         "Shrink the network, or raise the budget if the growth is intended."),
    Kind("override", "A `--set` or `--input` value the spec cannot take.",
         "Name a parameter the spec declares and give it a value of its type."),
    Kind("spec", "Another problem in the spec.", "Read the message: it says what is wrong and what to do."),
)}

# first match wins: the more specific wordings come first
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((code, re.compile(pattern)) for code, pattern in (
    ("budget", r"^(max_params|max_macs|max_flops|max_activation_bytes|min_receptive_field|input_sizes)\b"),
    ("override", r"^--(set|input)\b"),
    ("yaml-syntax", r"^YAML syntax error|control character|holds one YAML document"),
    ("yaml-feature", r"^YAML (anchors|tags)|^duplicate key|^mapping keys must be strings"),
    ("import", r"^import\b|^imported file|is outside the directory of the spec"),
    ("limit", r"too large|not a finite number|nests deeper than|limited to|at most 2\^63|is longer than|beyond the"),
    ("file", r"^the file |^cannot read the file|^a spec is a mapping"),
    ("unknown-key", r"^unknown (key|option)|has no argument"),
    ("unknown-name", r"^unknown (layer|block)|is not defined|^no tensor is named"),
    ("missing-key", r"\bneeds (argument )?`"),
    ("structure", r"^a layer is an op name|^the settings of|uses itself|should be a (list|mapping)"),
    ("name", (r"^(layer|block|tensor|output) name|^a layer name|is defined twice|is listed twice in `outputs`|"
              r"is already output `|^`as: [a-z]+` is reserved")),
    ("structure", r"is the output of a later layer|outside block `|which runs only in training"),
    ("expression", r"in expression `|^division by zero in|arithmetic in `|^`\$\w+` inside block `|^`\$channels_in` "),
    ("invalid-value", r"must be (at least|one of|positive)|is a probability|^`input` (is|sizes)"),
    ("wrong-type", r"should be"),
    ("shape", r"^layer ([0-9]+|`[^`]*`) \([a-z_0-9]+\)|^residual add|^concat|^add of |^mul of |^gate: "),
))


def classify(message: str) -> str:
    """The kind (a key of :data:`KINDS`) of a spec error, from its message."""
    for code, pattern in _PATTERNS:
        if pattern.search(message):
            return code
    return "spec"
