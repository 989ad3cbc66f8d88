"""The package reads top-down: each sub-package imports only from the layers below it.

A package's layer is its place in LAYERS; the root package's modules (settings, errors,
models, pii, ...) are the foundation everything may import. An import of a higher layer,
or of a package of the same layer, is a step towards a cycle and fails here. Imports
under `if TYPE_CHECKING:` count too: they are how a cycle hides until it bites.
"""

from __future__ import annotations

import ast
from pathlib import Path

import loanflow

PACKAGE = Path(loanflow.__file__).parent
#: Bottom to top. Packages on one line are peers and must not import each other.
LAYERS: list[set[str]] = [
    {"root"},
    {"domain", "patches"},
    {"broker", "store", "metrics"},
    {"pipeline"},
    {"review", "backends", "rotation"},
    {"process"},
    {"api", "dashboard", "loadgen", "importer"},
    {"cli"},
]
#: The program's entry point, above everything.
ENTRY_POINTS = {"loanflow.__main__"}


def layer_of(package: str) -> int:
    for n, layer in enumerate(LAYERS):
        if package in layer:
            return n
    raise AssertionError(f"package {package!r} is in no layer: add it to LAYERS")


def package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "loanflow":
        return None
    if len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return "root"


def imports() -> list[tuple[str, str, str]]:
    """(importing module, its package, imported package) for every loanflow import."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        if module in ENTRY_POINTS:
            continue
        source = package_of(module)
        assert source is not None
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                target = package_of(name)
                if target is not None and target != source:
                    found.append((module, source, target))
    return found


def test_every_package_imports_only_from_the_layers_below_it() -> None:
    upward = sorted({f"{module} ({source}) imports {target}"
                     for module, source, target in imports()
                     if layer_of(target) >= layer_of(source)})
    assert upward == []


def test_every_sub_package_has_a_layer() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set().union(*LAYERS)
