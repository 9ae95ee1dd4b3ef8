"""The graph form of `model` (Keras's functional API): named inputs, named layer nodes
called on earlier names, named outputs.

`graph_order` checks the structure without TensorFlow (undefined names, cycles, inputs
and nodes that lead to no output, repeated names), so `validate` reports those before
any data is loaded; `build_graph` then calls each layer on its inputs' tensors and
reports a shape mismatch against the node that failed.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from kerastrain import _keras
from kerastrain.config.schema import CompileSpec, KerasObject, ModelSpec
from kerastrain.errors import KeyProblem, did_you_mean
from kerastrain.models.build import SHAPE_ARGS, output_width_problem
from kerastrain.models.precision import output_scope
from kerastrain.registry import create_object


def _check_names(spec: ModelSpec) -> None:
    """Every input and node has its own name; outputs name distinct layer nodes."""
    seen: dict[str, tuple] = {}
    for kind, items in (("inputs", spec.inputs), ("nodes", spec.nodes)):
        for i, item in enumerate(items):
            path = ("model", kind, i, "name")
            if item.name in seen:
                raise KeyProblem(path, f"the name {item.name!r} is already used by "
                                       f"{'.'.join(map(str, seen[item.name][:3]))}; every "
                                       "input and node needs its own name.")
            seen[item.name] = path
    inputs = {i.name for i in spec.inputs}
    nodes = [n.name for n in spec.nodes]
    outputs: set[str] = set()
    for j, name in enumerate(spec.outputs):
        path = ("model", "outputs", j)
        if name in outputs:
            raise KeyProblem(path, f"two outputs are named {name!r}; each output is listed "
                                   "once (give a second output its own node).")
        outputs.add(name)
        if name in inputs:
            raise KeyProblem(path, f"{name!r} is an input; an output must be a layer node.")
        if name not in nodes:
            raise KeyProblem(path, f"no node is named {name!r}.{did_you_mean(name, nodes)}  "
                                   f"Nodes: {', '.join(nodes)}.")


def _check_references(spec: ModelSpec) -> None:
    known = [i.name for i in spec.inputs] + [n.name for n in spec.nodes]
    for i, node in enumerate(spec.nodes):
        for j, ref in enumerate(node.inputs):
            if ref not in known:
                raise KeyProblem(("model", "nodes", i, "inputs", j),
                                 f"node {node.name!r} takes {ref!r}, which is not defined."
                                 f"{did_you_mean(ref, known)} Defined: {', '.join(known)}.")
            if ref == node.name:
                raise KeyProblem(("model", "nodes", i, "inputs", j),
                                 f"node {node.name!r} takes itself as input: a cycle.")


def _cycle_from(start: str, edges: dict[str, list[str]], left: set[str]) -> list[str]:
    """A cycle among the `left` (unsortable) nodes, walked back from `start`."""
    path = [start]
    while True:
        nxt = next(n for n in edges[path[-1]] if n in left)
        if nxt in path:
            return path[path.index(nxt):] + [nxt]
        path.append(nxt)


def graph_order(spec: ModelSpec) -> list[int]:
    """The node indices in an order where every node comes after its inputs; a
    `KeyProblem` for the first structural mistake."""
    _check_names(spec)
    _check_references(spec)
    index = {n.name: i for i, n in enumerate(spec.nodes)}
    edges = {n.name: [r for r in n.inputs if r in index] for n in spec.nodes}
    done: set[str] = {i.name for i in spec.inputs}
    order: list[int] = []
    pending = list(spec.nodes)
    while pending:
        ready = [n for n in pending if all(r in done for r in n.inputs)]
        if not ready:
            left = {n.name for n in pending}
            cycle = _cycle_from(pending[0].name, edges, left)
            first = min(cycle, key=index.__getitem__)
            raise KeyProblem(("model", "nodes", index[first], "inputs"),
                             f"the nodes {' <- '.join(cycle)} form a cycle; a node can only "
                             "take inputs and nodes that do not depend on it.")
        for node in ready:
            order.append(index[node.name])
            done.add(node.name)
        pending = [n for n in pending if n.name not in done]
    _check_used(spec)
    return order


def _check_used(spec: ModelSpec) -> None:
    """Every input and node lies on a path to some output."""
    takes = {n.name: n.inputs for n in spec.nodes}
    used: set[str] = set()
    stack = list(spec.outputs)
    while stack:
        name = stack.pop()
        if name not in used:
            used.add(name)
            stack.extend(takes.get(name, []))
    for i, inp in enumerate(spec.inputs):
        if inp.name not in used:
            raise KeyProblem(("model", "inputs", i), f"no path from input {inp.name!r} leads to "
                             f"an output ({', '.join(spec.outputs)}); feed it to a node or "
                             "remove it.")
    for i, node in enumerate(spec.nodes):
        if node.name not in used:
            raise KeyProblem(("model", "nodes", i), f"node {node.name!r} leads to no output "
                             f"({', '.join(spec.outputs)}); add it to outputs, use it, or "
                             "remove it.")


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else text[:400] + " ..."


def build_graph(spec: ModelSpec, shapes: dict[str, list[int]]) -> Any:
    """A functional `keras.Model` with one `keras.Input` per configured input (shapes from
    the data) and the outputs in the configured order."""
    keras = _keras.keras()
    order = graph_order(spec)
    tensors: dict[str, Any] = {}
    for i, inp in enumerate(spec.inputs):
        shape = list(shapes[inp.name])
        if inp.shape is not None and list(inp.shape) != shape:
            raise KeyProblem(("model", "inputs", i, "shape"),
                             f"input {inp.name!r} is declared with shape {list(inp.shape)}, but "
                             f"its data has shape {shape}. Fix the shape or remove it.")
        tensors[inp.name] = keras.Input(shape=tuple(shape), name=inp.name)
    for i in order:
        node = spec.nodes[i]
        path = ("model", "nodes", i)
        for key in SHAPE_ARGS:
            if key in node.args:
                raise KeyProblem(path + (key,), f"{key} is not needed: shapes come from the "
                                                "data through the inputs. Remove it.")
        with output_scope(node.args) if node.name in spec.outputs else nullcontext():
            layer = create_object("layers", KerasObject(type=node.type, name=node.name,
                                                        **node.args), path)
        given = [tensors[r] for r in node.inputs]
        try:
            out = layer(given[0] if len(given) == 1 else given)
        except Exception as exc:  # Keras raises many types for shape mismatches
            shown = ", ".join(f"{r} {tuple(tensors[r].shape)}" for r in node.inputs)
            raise KeyProblem(path, f"{node.type} {node.name!r} cannot take its inputs "
                                   f"({shown}): {_short(exc)}") from None
        if isinstance(out, (list, tuple, dict)):
            raise KeyProblem(path, f"{node.type} {node.name!r} returns several tensors; a "
                                   "node must return one.")
        tensors[node.name] = out
    return keras.Model(inputs=[tensors[i.name] for i in spec.inputs],
                       outputs=[tensors[o] for o in spec.outputs], name=spec.name or "graph")


def check_compile_outputs(spec: ModelSpec, compile_spec: CompileSpec) -> None:
    """Per-output losses, metrics and loss weights name outputs; every output has a loss."""
    dicts = [("loss", compile_spec.loss), ("metrics", compile_spec.metrics),
             ("weighted_metrics", compile_spec.weighted_metrics),
             ("loss_weights", compile_spec.loss_weights)]
    per_output = [(key, value) for key, value in dicts
                  if isinstance(value, dict) and not isinstance(value, KerasObject)]
    if not spec.is_graph:
        for key, _ in per_output:
            raise KeyProblem(("compile", key), f"a per-output {key} mapping needs a graph model "
                             "with named outputs; a layer stack has one output.")
        return
    outputs = list(spec.outputs)
    for key, value in per_output:
        for name in value:
            if name not in outputs:
                raise KeyProblem(("compile", key, name), f"{name!r} is not an output."
                                 f"{did_you_mean(name, outputs)} Outputs: {', '.join(outputs)}.")
    if isinstance(compile_spec.loss, dict):
        missing = [o for o in outputs if o not in compile_spec.loss]
        if missing:
            raise KeyProblem(("compile", "loss"), f"no loss for the output(s) "
                             f"{', '.join(missing)}; give every output a loss.")


def check_graph_outputs(model: Any, spec: ModelSpec, targets: dict[str, Any]) -> None:
    """Each output's width fits its target (`targets`: output name -> fitted Preprocessor)."""
    for j, name in enumerate(spec.outputs):
        pre = targets[name]
        width = model.outputs[j].shape[-1]
        problem = output_width_problem(width, pre.task, pre.classes, pre.target["encoding"]
                                       if pre.task == "classification" else "")
        if problem:
            raise KeyProblem(("model", "outputs", j), f"output {name!r}: {problem}")
