"""Stage 5, infer: every value's shape, every node's attributes, tensors, MACs and receptive field, and
every scope's totals, for one input shape. Returns a new graph; the elaborated one is not changed, so
``summary``'s smallest-input search and ``check``'s budget sizes run this stage alone, again.

A shape error stops its own branch only: the values it would have made stay unknown and the nodes that
read them are skipped, so one run reports the first error of every independent branch.

Receptive fields are exact rationals: an upsampling op's window steps by a fraction of an input position
(``Fraction(1, 2)``), so jumps, and the sizes that follow them, may be ``Fraction`` values (whole ones are
kept as ``int``; docs/conventions.md says what a fractional receptive field means)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction

from cnnspec import ir
from cnnspec.errors import SpecError
from cnnspec.frontend.expr import CHANNELS_IN, ExprError, evaluate_written
from cnnspec.ops import REGISTRY
from cnnspec.ops.base import Inferred, RuleError
from cnnspec.ops.merge import projection
from cnnspec.ops.shape import fmt
from cnnspec.settings import ValidationError

MAX_SIZE = 2**63 - 1  # the largest size PyTorch and ONNX can hold (int64)

RF = tuple[tuple[ir.RFValue, ir.RFValue], ...]  # (size, jump) per spatial axis of the model's input
FAILED = (0, ())  # a projection no 1x1 conv can make (its error is recorded)


@dataclass
class _State:
    shapes: dict[int, ir.Shape]
    rfs: dict[int, RF]
    alias: dict[int, int] = field(default_factory=dict)  # the output of a projection left out -> its input
    projections: dict[str, tuple[int, tuple[int, ...]] | None] = field(default_factory=dict)  # scope -> (out, strides)
    errors: list[SpecError] = field(default_factory=list)
    blocks: dict[str, ir.Scope] | None = None  # path -> block scope, for settings that read $channels_in
    # (op, settings, input shapes) -> what the rule made: the instances of a block with equal arguments share
    # one settings object (elaborate), so resnet50 applies 80 rules for its 199 layers and convnext_tiny 66
    # for 192 (keyed by the settings' identity: they stay alive in the graph while it is analysed)
    rules: dict[tuple[str, int, tuple[ir.Shape, ...]], Inferred] = field(default_factory=dict)


def infer(graph: ir.Graph, input_shape: ir.Shape, first_error_only: bool = False) -> tuple[ir.Graph, list[SpecError]]:
    """``graph`` analysed for an input of ``input_shape`` (no batch axis), and its shape errors (only the
    first with ``first_error_only``, which stops there)."""
    graph = graph.elaborated or graph
    state = _State({graph.inputs[0]: input_shape}, {graph.inputs[0]: tuple((1, 1) for _ in input_shape[1:])})
    projections = {s.path: s for s in graph.root.scopes() if s.projection is not None}
    shapes, alias = state.shapes, state.alias
    done: dict[int, ir.Node] = {}
    for node in graph.nodes:
        inputs = node.inputs
        if alias:
            inputs = tuple([alias.get(v, v) for v in inputs])
        if not (inputs[0] in shapes if len(inputs) == 1 else all(v in shapes for v in inputs)):
            done[id(node)] = node.evolve(inputs=inputs)
            continue
        settings = node.settings
        if node.late:
            settings = _late_settings(node, graph, state)
            if settings is None:
                done[id(node)] = node.evolve(inputs=inputs)
                continue
        scope = projections.get(node.scope) if projections else None
        if scope is not None:
            try:
                plan = _projection(scope, state)
            except SpecError as exc:
                state.errors.append(exc)
                state.projections[scope.path] = plan = FAILED
            if plan is FAILED:
                done[id(node)] = node.evolve(inputs=inputs)
                continue
            if plan is None:  # left out: its output is its input
                alias[node.outputs[0]] = inputs[0]
                done[id(node)] = node.evolve(inputs=inputs, active=False)
                continue
            if "stride" in type(settings).model_fields:  # the 1x1 conv (the norm after it needs nothing)
                settings = settings.model_copy(update={"out": plan[0], "stride": list(plan[1])})
        done[id(node)] = _node(node, inputs, settings, state)
        if first_error_only and state.errors:
            break
    nodes = tuple(done.get(id(n), n) for n in graph.nodes)
    root = _scope(graph.root, done, state)
    outputs = tuple((name, state.alias.get(v, v)) for name, v in graph.outputs)
    analysed = replace(graph, nodes=nodes, root=root, outputs=outputs, input_shape=input_shape,
                       shapes=state.shapes, elaborated=graph)
    return analysed, state.errors


def _late_settings(node: ir.Node, graph: ir.Graph, state: _State) -> object | None:
    """``node``'s settings with those that read ``$channels_in`` evaluated now that the input channels of
    its block are known; None (an error recorded) where a value is refused."""
    blocks = state.blocks
    if blocks is None:
        blocks = state.blocks = {s.path: s for s in graph.root.scopes() if s.block is not None}
    path = node.scope
    while path not in blocks:
        path = path.rpartition(".")[0]
    block = blocks[path]
    assert block.block is not None
    source = state.alias.get(block.inputs[0], block.inputs[0])
    channels = state.shapes[source][0]
    env = {**graph.params, **block.block.args, CHANNELS_IN: channels}
    given = node.settings.model_dump(exclude_unset=True)
    for key in sorted(node.late):
        try:
            given[key] = evaluate_written(node.written[key], env)
        except ExprError as exc:
            state.errors.append(SpecError(str(exc), node.field_pos.get(key, node.pos)))
            return None
    try:
        return type(node.settings).model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else ""
        state.errors.append(SpecError(f"{node.label or node.op}: `{key}` is {given.get(key)!r} with "
                                      f"`${CHANNELS_IN}` = {channels}: {first['msg']}",
                                      node.field_pos.get(key, node.pos)))
        return None


def _projection(scope: ir.Scope, state: _State) -> tuple[int, tuple[int, ...]] | None:
    """(out channels, strides) of a projection shortcut's 1x1 conv, or None where ``auto`` leaves it out."""
    if scope.path in state.projections:
        return state.projections[scope.path]
    assert scope.projection is not None
    source = state.shapes[state.alias.get(scope.projection.source, scope.projection.source)]
    target = state.shapes.get(state.alias.get(scope.projection.target, scope.projection.target))
    plan = None
    if target is not None and not (scope.projection.mode == "auto" and source == target):
        try:
            plan = projection(source, target, "residual add")
        except RuleError as exc:
            raise SpecError(exc.message, scope.pos) from None
    state.projections[scope.path] = plan
    return plan


def _node(node: ir.Node, inputs: tuple[int, ...], settings: object, state: _State) -> ir.Node:
    """``node`` with its shape rule applied; on a rule error, the error recorded and its outputs unknown."""
    shapes = state.shapes
    in_shapes = tuple([shapes[v] for v in inputs])
    op = REGISTRY[node.op]
    key = (node.op, id(settings), in_shapes)
    result = state.rules.get(key)
    if result is None:
        try:
            result = op.infer(settings, in_shapes, node.label or node.op)
        except RuleError as exc:
            state.errors.append(SpecError(exc.message, node.field_pos.get(exc.field or "", node.pos)))
            return node.evolve(inputs=inputs)
        if op.traits.inputs == 1:  # a merge's rule reads its label (the roles of its inputs): not shared
            state.rules[key] = result
    if max(result.shape, default=0) > MAX_SIZE:  # ONNX and PyTorch sizes are int64
        state.errors.append(SpecError(f"{node.label or node.op}: the output would be {fmt(result.shape)}, and sizes "
                                      "are at most 2^63 - 1 (int64 in PyTorch and ONNX)", node.pos))
        return node.evolve(inputs=inputs)
    rfs = state.rfs
    data = op.traits.inputs or len(inputs)  # a tensor named for its shape only sees nothing
    rf = rfs[inputs[0]] if data == 1 else _merged_rf([rfs[v] for v in inputs[:data]], in_shapes[:data], result.shape)
    window = result.window
    if window is not None and len(window) == len(rf):
        rf = tuple([(_whole(size + (k - 1) * jump), _whole(jump * s))
                    for (size, jump), (k, s) in zip(rf, window)])
    elif result.whole and len(in_shapes[0]) - 1 == len(rf):
        rf = tuple([(_whole(size + (n - 1) * jump), _whole(jump * n))
                    for (size, jump), n in zip(rf, in_shapes[0][1:])])
    for value in node.outputs:
        shapes[value] = result.shape
        rfs[value] = rf
    return node.evolve(inputs=inputs, settings=settings, attrs=result.attrs, params=result.params,
                       buffers=result.buffers, macs=result.macs, input_shapes=in_shapes, output_shapes=(result.shape,),
                       rf_size=tuple([a for a, _ in rf]), rf_stride=tuple([b for _, b in rf]))


def _whole(value: ir.RFValue) -> ir.RFValue:
    """A whole ``Fraction`` as an ``int``: a network without upsampling keeps integer receptive fields, and
    an upsampling followed by an equal downsampling returns to them."""
    return int(value) if type(value) is Fraction and value.denominator == 1 else value


def _merged_rf(rfs: list[RF], shapes: tuple[ir.Shape, ...], out: ir.Shape) -> RF:
    """A merge sees what the widest of its inputs sees; its outputs step as those of the inputs that have
    the output's size along the axis do: an input broadcast along it (a squeeze-and-excitation gate's
    ``[C, 1, 1]``, whose one position sees the whole input) widens the window, not the step."""
    axes = []
    for axis in range(len(rfs[0])):
        steps = [rf[axis][1] for rf, shape in zip(rfs, shapes)
                 if len(shape) == len(out) > axis + 1 and shape[axis + 1] == out[axis + 1]]
        axes.append((max(rf[axis][0] for rf in rfs), max(steps or [rf[axis][1] for rf in rfs])))
    return tuple(axes)


def _scope(scope: ir.Scope, done: dict[int, ir.Node], state: _State) -> ir.Scope:
    """``scope`` with its analysed members and totals."""
    out = object.__new__(ir.Scope)
    out.__dict__.update(scope.__dict__)
    out.members = members = [_scope(m, done, state) if isinstance(m, ir.Scope) else done.get(id(m), m)
                             for m in scope.members]
    if scope.projection is not None and state.projections.get(scope.path, FAILED) is None:
        out.active = False
        return out
    params = trainable = buffers = macs = elems = 0
    for member in members:
        if isinstance(member, ir.Scope):
            if member.active:
                params += member.total_params
                trainable += member.total_trainable
                buffers += member.total_buffers
                macs += member.total_macs
                elems += member.activation_elems
        elif member.active and member.output_shapes:
            for t in member.params:
                params += t.numel
                trainable += t.numel if t.trainable else 0
            for t in member.buffers:
                buffers += t.numel
            if not member.training_only:  # inference figures: an auxiliary classifier does not run
                macs += member.macs
                elems += math.prod(member.output_shapes[0])
    out.total_params, out.total_trainable, out.total_buffers = params, trainable, buffers
    out.total_macs, out.activation_elems = macs, elems
    shapes = state.shapes
    if scope.inputs and scope.inputs[0] in shapes:
        out.input_shape = shapes[scope.inputs[0]]
    if scope.outputs:
        last = state.alias.get(scope.outputs[-1], scope.outputs[-1])
        out.output_shape = shapes.get(last, ())
        rf = state.rfs.get(last, ())
        out.rf_size, out.rf_stride = tuple([a for a, _ in rf]), tuple([b for _, b in rf])
    return out
