"""The settings models (``cnnspec.settings``) against pydantic, whose checks they replace: every op's and
structure's settings and the spec files' own models, fed thousands of right and wrong values, accept the same
values (to the same result) and refuse the rest with the same errors (type, location, wording) as the strict
pydantic model that ``cnnspec.frontend.schema`` builds from them, and whose JSON Schema editors use."""

from __future__ import annotations

import pickle
from typing import Any, Literal

import pytest
from pydantic import ValidationError as PydanticError

from cnnspec.frontend import spec
from cnnspec.frontend.schema import pydantic_model
from cnnspec.ops import REGISTRY
from cnnspec.settings import REQUIRED, Field, Model, ValidationError

MODELS: dict[str, type[Model]] = {
    **{f"op {name}": op.Settings for name, op in REGISTRY.items()},
    **{f"structure {name}": model for name, model in spec.STRUCTURES.items()},
    "SpecFile": spec.SpecFile, "BlocksFile": spec.BlocksFile, "Constraints": spec.Constraints,
    "BlockDef": spec.BlockDef, "Projection": spec.Projection, "TypedDefault": spec.TypedDefault,
}
# a value of every kind YAML gives, and the near misses of each
VALUES: list[Any] = [
    0, 1, -1, 3, 2.5, 1.0, 0.0, True, False, None, "x", "same", "auto", "nearest", "$w", "20_000_000", "2e7", "7",
    "int", "lst[int]", [], [1, 2], [1, "a"], [2.5, 1], [True], [[1, 2], [3, 4]], [None], ["relu"], [{"conv": {}}],
    {}, {"a": 1}, {"projection": "auto"}, {"type": "int", "default": 1}, {"type": "int"}, {"layers": []},
]


def _base(model: type[Model]) -> dict[str, Any]:
    """A valid input: the model's example, else a first example of each required field."""
    example = getattr(model, "example", None)
    if example:
        return {k: (3 if isinstance(v, str) and v.startswith("$") else v) for k, v in example.items()}
    return {name: (info.examples or [None])[0] for name, info in model.model_fields.items() if info.is_required()}


def _inputs(model: type[Model]) -> list[Any]:
    base = _base(model)
    cases: list[Any] = [base, {}, {**base, "unknown_key": 1, "another": 2}, "conv", [base], None, 5]
    for name, info in model.model_fields.items():
        cases.append({k: v for k, v in base.items() if k != name})
        for value in [*VALUES, *(info.examples or [])]:
            cases.append({**base, name: value})
    return cases


def _errors(exc: Any) -> list[tuple[Any, ...]]:
    return [(e["type"], e["loc"], e["msg"], e.get("ctx")) for e in exc.errors()]


def _outcome_ours(model: type[Model], data: Any) -> tuple[str, Any]:
    try:
        return "ok", model.model_validate(data).model_dump()
    except ValidationError as exc:
        return "errors", _errors(exc)


def _outcome_pydantic(model: type[Model], data: Any) -> tuple[str, Any]:
    try:
        return "ok", pydantic_model(model).model_validate(data).model_dump(warnings=False)
    except PydanticError as exc:
        return "errors", _errors(exc)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_same_verdicts_values_and_errors_as_pydantic(name: str) -> None:
    model = MODELS[name]
    cases = _inputs(model)
    differ = [(data, ours, theirs) for data in cases
              if (ours := _outcome_ours(model, data)) != (theirs := _outcome_pydantic(model, data))]
    assert differ == [], f"{len(differ)} of {len(cases)} inputs differ; first: {differ[0]}"
    assert _outcome_ours(model, _base(model))[0] == "ok"


class Pool(Model):
    kernel: int | list[int] = Field(description="Window size.", examples=[2])
    stride: int | list[int] | None = None
    eps: float = 1e-5
    mode: Literal["max", "avg"] = "max"
    sizes: list[int] = Field(default_factory=list)
    start: int = Field(0, ge=0)


def test_strict_checks_convert_only_a_whole_number_to_a_float() -> None:
    pool = Pool.model_validate({"kernel": [3, 3], "eps": 1})
    assert pool.kernel == [3, 3] and pool.eps == 1.0 and type(pool.eps) is float and pool.stride is None
    with pytest.raises(ValidationError) as caught:
        Pool.model_validate({"kernel": True, "eps": "1", "mode": "min", "start": -1, "strid": 2})
    assert _errors(caught.value) == [
        ("int_type", ("kernel", "int"), "Input should be a valid integer", None),
        ("list_type", ("kernel", "list[int]"), "Input should be a valid list", None),
        ("float_type", ("eps",), "Input should be a valid number", None),
        ("literal_error", ("mode",), "Input should be 'max' or 'avg'", {"expected": "'max' or 'avg'"}),
        ("greater_than_equal", ("start",), "Input should be greater than or equal to 0", {"ge": 0}),
        ("extra_forbidden", ("strid",), "Extra inputs are not permitted", None),
    ]


def test_missing_fields_defaults_and_what_was_written() -> None:
    with pytest.raises(ValidationError) as caught:
        Pool.model_validate({})
    assert _errors(caught.value) == [("missing", ("kernel",), "Field required", None)]
    first, second = Pool.model_validate({"kernel": 2}), Pool.model_validate({"kernel": 2})
    first.sizes.append(1)
    assert second.sizes == []  # a default is never shared
    assert first.model_fields_set == {"kernel"}
    assert first.model_dump(exclude_unset=True) == {"kernel": 2}
    assert Pool.model_fields["kernel"].is_required() and Pool.model_fields["stride"].default is None
    assert Pool.model_fields["kernel"].description == "Window size." and Pool.model_fields["eps"].default != REQUIRED


def test_records_copy_compare_print_and_pickle() -> None:
    pool = Pool.model_validate({"kernel": 2, "mode": "avg"})
    moved = pool.model_copy(update={"stride": [1, 1]})
    assert moved.stride == [1, 1] and pool.stride is None and moved.model_fields_set == {"kernel", "mode", "stride"}
    assert pool == Pool(kernel=2, mode="avg") and pool != moved
    assert repr(pool) == "Pool(kernel=2, stride=None, eps=1e-05, mode='avg', sizes=[], start=0)"
    again = pickle.loads(pickle.dumps(pool))
    assert again == pool and again.model_fields_set == pool.model_fields_set
    with pytest.raises(TypeError):
        hash(pool)



class WidePool(Pool):
    """A subclass that widens a field: it keeps its place, as in pydantic."""

    stride: int | list[int] | None = Field(2, description="Step.")
    ceil: bool = False


def test_a_field_redeclared_in_a_subclass_keeps_its_place() -> None:
    assert list(WidePool.model_fields) == list(pydantic_model(WidePool).model_fields) == [
        "kernel", "stride", "eps", "mode", "sizes", "start", "ceil"]
    assert WidePool.model_validate({"kernel": 1}).stride == 2
