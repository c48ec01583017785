"""The package's layers: no import cycle, an estimator without kernels, live registries."""

import ast
from pathlib import Path

import numba
import pytest

import sklearn_cml
from sklearn_cml import CMLRecommender

PACKAGE = Path(sklearn_cml.__file__).parent


def module_imports():
    """``{module: modules of the package it imports}``, anywhere in its code
    (module level or inside functions)."""
    paths = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for module, path in paths.items():
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names if alias.name in paths}
            elif isinstance(node, ast.ImportFrom):
                base = (package[: len(package) - node.level + 1] if node.level
                        else node.module.split("."))
                target = ".".join(base + ([node.module] if node.level and node.module else []))
                names = [f"{target}.{alias.name}" for alias in node.names]
                submodules = {name for name in names if name in paths}
                imported |= submodules
                # ``from package import name``: the package itself, unless
                # every name is one of its modules.
                if len(submodules) < len(names) and target in paths:
                    imported.add(target)
        graph[module] = imported - {module}
    return graph


def cycles(graph):
    """The strongly connected components of more than one module."""
    order, low, stack, found = {}, {}, [], []

    def visit(module):
        order[module] = low[module] = len(order)
        stack.append(module)
        for other in graph[module]:
            if other not in order:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], order[other])
        if low[module] == order[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for module in graph:
        if module not in order:
            visit(module)
    return found


def test_the_package_has_no_import_cycle():
    graph = module_imports()
    assert "sklearn_cml._estimator" in graph["sklearn_cml"]  # the graph is read
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_estimator_module_holds_no_kernel():
    """It validates and delegates: no Numba kernel is called from it."""
    import sklearn_cml._estimator as estimator

    dispatchers = [name for name, value in vars(estimator).items()
                   if isinstance(value, numba.core.dispatcher.Dispatcher)]
    assert dispatchers == []


@pytest.mark.parametrize("registry, parameter, existing", [
    ("sklearn_cml._losses:LOSSES", "loss", "hinge"),
    ("sklearn_cml._solvers:SOLVERS", "solver", "block"),
    ("sklearn_cml._query:SEARCHES", "search", "exact"),
])
def test_registries_are_read_live(monkeypatch, registry, parameter, existing):
    """A name registered after import is accepted by the parameter at once."""
    import importlib

    module, name = registry.split(":")
    entries = getattr(importlib.import_module(module), name)
    with pytest.raises(ValueError, match=f"The '{parameter}' parameter"):
        CMLRecommender(**{parameter: "toy"})._validate_params()
    monkeypatch.setitem(entries, "toy", entries[existing])
    CMLRecommender(**{parameter: "toy"})._validate_params()
