"""Names that reach generated Python: validated here, never escaped into something else.

Layer names become module attributes (``self.conv1``), block arguments and spec params become constructor
parameters, block kinds and the spec name become class names. A name that would not be a plain,
harmless identifier in that role is refused with the spec position it came from.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Iterable

from cnnspec.errors import SourcePos, SpecError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INDEX = re.compile(r"(0|[1-9][0-9]*)\Z")

# Public attributes of torch.nn.Module (tests/test_torch_names.py checks this list against torch):
# a submodule registered under one of these names would be hidden by, or hide, the Module API.
MODULE_ATTRS = frozenset({
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile",
    "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer",
    "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules",
    "mtia", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters",
    "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook",
    "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state",
    "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu",
    "zero_grad",
})

# Names the generated code itself uses inside constructors and forward functions.
# The module-level helpers the backend may emit (templates/helpers and the ops' helper classes): a param
# of that name would shadow them in the constructor (C10), and no class or constant may take them.
HELPERS = frozenset({"assign", "center_crop", "ChannelLayerNorm", "make_divisible", "Permute", "PointwiseLinear",
                     "Reshape", "StochasticDepth", "SumPool1d"})
GENERATED = frozenset({"self", "x", "nn", "torch", "F", "math", "identity", "out", "cast"}) | HELPERS  # cast: typing.cast
_BUILTINS = frozenset(dir(builtins))
_KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)


def is_index(name: str) -> bool:
    return bool(_INDEX.match(name))


def quoted(name: str) -> bool:
    """A name that cannot be written ``self.<name>``: an index (``3``) or one nn.Module allows beyond
    identifiers (``block1-0``, as torchvision's RegNet names its blocks); the generated code registers it
    with ``add_module`` and reads it with ``get_submodule``."""
    return not _IDENT.match(name) or name in _KEYWORDS


def check_layer_name(name: str, pos: SourcePos) -> None:
    """A layer name must be an index (``3``), a name used through ``add_module``/``get_submodule``
    (``block1-0``; the front end refused what nn.Module refuses) or an identifier usable as ``self.<name>``."""
    if quoted(name):
        return
    problem = _identifier_problem(name)
    if problem is None and name.startswith("_"):
        problem = "starts with an underscore (reserved for torch.nn.Module internals)"
    if problem is None and name in MODULE_ATTRS:
        problem = "is a torch.nn.Module attribute"
    if problem:
        raise SpecError(f"layer name {name!r} cannot be a PyTorch module attribute: it {problem}", pos)


def parameter_problem(name: str) -> str | None:
    """Why a spec param or block argument cannot be a generated constructor's parameter as it is, or None."""
    problem = _identifier_problem(name)
    if problem is None and name in _BUILTINS:
        problem = "would shadow the Python builtin of that name"
    if problem is None and name in GENERATED:
        problem = "is used by the generated code"
    if problem is None and name.startswith("_"):
        problem = "starts with an underscore"
    return problem


def python_names(spec_names: Iterable[str]) -> dict[str, str]:
    """Each spec param and block argument as a constructor parameter: the name itself where that is a plain,
    harmless identifier, else one made from it (``out`` -> ``out_``, ``class`` -> ``class_``, ``a-b`` ->
    ``a_b_``, ``_x`` -> ``x_``) that no other spec name, builtin, keyword or generated name takes. ``check``
    accepts these names, so the torch backend must build them (issue 14: every backend agrees)."""
    names = list(dict.fromkeys(spec_names))
    out = {n: n for n in names if parameter_problem(n) is None}
    taken = Allocator(set(out))
    for n in names:
        if n not in out:
            base = re.sub(r"[^A-Za-z0-9_]+", "_", n).strip("_") or "arg"
            out[n] = taken.take(f"{'arg_' if base[0].isdigit() else ''}{base}_")
    return out


def _identifier_problem(name: str) -> str | None:
    if not isinstance(name, str) or not _IDENT.match(name):
        return "is not an identifier (letters, digits, underscores; not starting with a digit)"
    if name in _KEYWORDS:
        return "is a Python keyword"
    if name.startswith("__") or name.endswith("__"):
        return "looks like a Python special name"
    return None


def camel(name: str) -> str:
    """``basic_block`` -> ``BasicBlock``, ``resnet18`` -> ``Resnet18`` (input already an identifier)."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    out = "".join(p[0].upper() + p[1:] for p in parts) or "Model"
    return out if _IDENT.match(out) and not out[0].isdigit() else f"M{out}"


def upper(name: str) -> str:
    """``layer1.0.conv`` -> ``LAYER1_0_CONV``."""
    out = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper() or "VALUE"
    return out if not out[0].isdigit() else f"L{out}"


class Allocator:
    """Hands out unique names in a deterministic order: ``Basic``, ``Basic2``, ..."""

    def __init__(self, taken: set[str] | frozenset[str] = frozenset()) -> None:
        self._taken = set(taken) | _BUILTINS | _KEYWORDS | GENERATED

    def take(self, wanted: str) -> str:
        candidate, n = wanted, 1
        while candidate in self._taken:
            n += 1
            candidate = f"{wanted}{n}"
        self._taken.add(candidate)
        return candidate
