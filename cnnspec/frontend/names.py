"""Layer names: they become attribute names in generated Python, state_dict keys and ONNX names. Accepted:
non-negative indices, plain ASCII identifiers that collide with nothing, and the names nn.Module allows
beyond identifiers that torchvision uses (``block1-0``: ASCII letters, digits, ``_`` and ``-``), which the
torch backend registers with ``add_module``. What nn.Module refuses (a ``.``, the empty name) is refused."""

from __future__ import annotations

import functools
import keyword
import re
import unicodedata

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_DASHED = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")  # nn.Module names beyond identifiers: `block1-0`

# Attributes of torch.nn.Module that a submodule name would shadow (listed here: no torch import).
MODULE_ATTRIBUTES = frozenset(
    ["add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu", "zero_grad"]
)


def check_name(name: object) -> str | None:
    """Return why ``name`` cannot name a layer, or None when it is fine."""
    if isinstance(name, bool):
        return "a layer name is an identifier or a non-negative index, not true/false"
    if isinstance(name, int):
        return None if name >= 0 else f"a layer index must be non-negative, got {name}"
    if not isinstance(name, str):
        return "a layer name is an identifier or a non-negative index"
    return _check_text(name)


@functools.lru_cache(maxsize=4096)  # a network repeats few names many times (conv1, bn1, relu)
def _check_text(name: str) -> str | None:
    shown = name.encode("unicode_escape").decode("ascii")
    foreign = next((c for c in name if not c.isascii()), None)
    if foreign is not None:
        return (f"layer name `{shown}` contains the non-ASCII character U+{ord(foreign):04X} "
                f"({unicodedata.name(foreign, 'unnamed')}); use ASCII letters, digits and _")
    if name == "":
        return "a layer name cannot be empty (nn.Module refuses it); leave `name` out to number the layer"
    if "." in name:
        return (f"layer name `{shown}` contains `.`, which nn.Module refuses: `.` separates the parts of a "
                "state_dict key; use `_` or `-`")
    if _DASHED.fullmatch(name) and not _IDENT.fullmatch(name) and not name.isdigit():
        return None  # written through add_module/get_submodule in generated code
    if not _IDENT.fullmatch(name):
        return (
            f"layer name `{shown}` is not a plain identifier: use ASCII letters, digits, _ and - "
            "(at most 64 characters)"
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"layer name `{name}` is a Python keyword"
    if name.startswith("__"):
        return f"layer name `{name}` starts with a double underscore, which Python reserves"
    if name.startswith("_"):
        return (f"layer name `{name}` starts with an underscore, which PyTorch reserves for nn.Module internals "
                "(`_modules`, `_parameters`)")
    if name in MODULE_ATTRIBUTES:
        return f"layer name `{name}` would shadow `{name}` of PyTorch's nn.Module"
    return None
