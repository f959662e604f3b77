"""The tree's shape: no import circle among the project's modules (imports inside functions
count too), data flows one way (the trainer never imports the toolkit, the product never
imports a study), and reading a config imports no jax."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).parent.parent
PACKAGES = ("dreamerv3", "analysis", "sweep", "studies")


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules():
    files = [ROOT / "cli.py"] + [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    return {module_name(p): p for p in files if "tests" not in p.relative_to(ROOT).parts}


def imports_of(path, modules):
    """The project modules that `path` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def graph():
    modules = project_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def find_cycle(edges):
    """One import circle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_circle():
    edges = graph()
    assert "dreamerv3.run" in edges and edges["dreamerv3.run"], "the graph is empty: the walk is broken"
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges))


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_data_flows_one_way():
    edges = graph()
    wrong = sorted(
        f"{a} imports {b}"
        for a, targets in edges.items()
        for b in targets
        if (a.startswith("dreamerv3") and b.split(".")[0] in ("analysis", "sweep", "studies", "cli"))
        or (a.split(".")[0] in ("analysis", "sweep", "cli") and b.startswith("studies"))
    )
    assert wrong == []


def test_parsing_a_config_imports_no_jax():
    code = (
        "import sys; from dreamerv3 import configs; "
        "configs.parse(['--configs', 'debug', '--logdir', '/nonexistent/x']); "
        "print(sorted(m for m in sys.modules if m == 'jax' or m.startswith('jax.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]", result.stdout
