"""The code's floors run one way, and no two modules import each other.

Walks every import statement of the project's own modules (module level and inside functions)
with `ast`, so the check needs no import side effects. Run it alone with
`pytest tests/test_layers.py`.

Floors, bottom up: the core (users, roles, permissions, audit, accounts, the API's shared
plumbing) imports no app; the registry (`agencies`) imports nothing of the polls or the
dashboards; the polls (`surveys`) import nothing of the dashboards; the dashboards and the
project's URL wiring sit on top."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("readiness", "agencies", "surveys")
DASHBOARDS = {"readiness.templatetags.readiness_tags"}  # plus the readiness.dashboards package
# The project package itself (it loads the Celery app), its settings and its URL wiring.
WIRING = {"readiness", "readiness.urls", "readiness.api.urls", "readiness.settings",
          "readiness.celery", "readiness.wsgi", "readiness.asgi"}  # fmt: skip


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports (a package's submodule when one is named)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from package import module` imports that module; `from module import name`
            # imports the module.
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def layer(module: str) -> str:
    if module in DASHBOARDS or module in WIRING or module.startswith("readiness.dashboards"):
        return "top"
    return module.split(".")[0]  # readiness (the core), agencies, surveys


FORBIDDEN = {
    "readiness": ("agencies", "surveys", "top"),
    "agencies": ("surveys", "top"),
    "surveys": ("top",),
}


def test_no_floor_reaches_up(graph):
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if layer(target) in FORBIDDEN.get(layer(module), ())
    )
    assert upward == []


def test_no_two_modules_import_each_other(graph):
    """No cycle of any length (Tarjan's strongly connected components)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert cycles == []


def test_the_walker_sees_imports(graph):
    """The check above means something: known edges are found."""
    assert "surveys.delivery" in graph["surveys.tasks"]
    assert "surveys.channels.base" in graph["surveys.channels.email"]
    assert "readiness.permissions" in graph["surveys.selectors"]


def test_no_surveys_module_is_too_long():
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "surveys").rglob("*.py")
        if "migrations" not in path.parts and (n := len(path.read_text().splitlines())) > 420
    }
    assert long == {}


def test_every_task_the_flows_name_is_registered_in_a_fresh_process():
    """The flows queue tasks by name; a web process that never imported surveys.tasks must
    still know them (a NotRegistered there would fail every send)."""
    import re
    import subprocess
    import sys

    names = set()
    for path in (ROOT / "surveys").rglob("*.py"):
        names |= set(re.findall(r'"(surveys\.tasks\.\w+)"', path.read_text()))
    assert names >= {"surveys.tasks.deliver_invitations", "surveys.tasks.send_reminders"}
    check = (
        "import django; django.setup(); from celery import current_app; "
        f"missing = [n for n in {sorted(names)!r} if n not in current_app.tasks]; "
        "print(missing); raise SystemExit(1 if missing else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "readiness.settings"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
