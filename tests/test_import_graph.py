"""The package's modules import one another without a cycle.

Every `import elmo_keras...` / `from elmo_keras... import` statement counts,
at module level and inside functions alike (a deferred import is still a
dependency). A package's `__init__` counts as a module; importing a name from
a package counts as importing the module of that name when it is one.
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "elmo_keras"


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph():
    """{module: set of elmo_keras modules it imports}."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        edges = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] +
                                    ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def find_cycle(graph):
    """One cycle as a list of modules, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == "open":
                return stack[stack.index(child):] + [child]
            if child not in state:
                cycle = visit(child, stack)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def test_finder_sees_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_package_imports_form_no_cycle():
    graph = import_graph()
    assert len(graph) > 30 and "elmo_keras.embedder" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_io_knows_files_not_layers():
    """`elmo_keras.io` turns files into named arrays and options and back; models map them onto layers."""
    graph = import_graph()
    for module, edges in graph.items():
        if module.startswith("elmo_keras.io"):
            assert not {e for e in edges if e.startswith(("elmo_keras.layers", "elmo_keras.models",
                                                          "elmo_keras.training", "elmo_keras.serving"))}, module
