"""The library's packages form a straight line of layers (docs/study.md, "The library by
package"): each imports only itself and the layers below it, so that the next upward import
fails here instead of tangling the packages."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "regurgitate"
# Bottom to top. `io` is the module of atomic files and tables that every layer writes with.
LAYERS = ["io", "engine", "generators", "study", "analysis", "plots", "jobs"]


def layer_of(module: str) -> str:
    """The layer of a module named inside the package, such as `engine.train` -> `engine`."""
    return module.split(".")[0]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module inside regurgitate) of every import in a file, at any depth: an import
    inside a function counts as much as one at the top."""
    imports = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith("regurgitate."):
                imports.append((node.lineno, name.removeprefix("regurgitate.")))
    return imports


def upward_imports(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.name == "__init__.py" and len(relative.parts) == 1:
            continue
        here = LAYERS.index(layer_of(".".join(relative.with_suffix("").parts)))
        for line, module in imported_modules(path):
            if LAYERS.index(layer_of(module)) > here:
                found.append(f"{relative}:{line} imports regurgitate.{module}")
    return found


def test_every_module_belongs_to_a_layer():
    modules = {
        layer_of(".".join(p.relative_to(PACKAGE).with_suffix("").parts))
        for p in PACKAGE.rglob("*.py")
        if p.relative_to(PACKAGE) != Path("__init__.py")
    }
    assert modules <= set(LAYERS), f"add {sorted(modules - set(LAYERS))} to LAYERS"


def test_no_package_imports_a_layer_above_it():
    assert upward_imports(PACKAGE) == []


@pytest.mark.parametrize(
    "source",
    [
        "from regurgitate.analysis.aggregate import summarise\n",
        "def f():\n    import regurgitate.jobs.train\n",
    ],
)
def test_an_upward_import_is_found(tmp_path, source):
    package = tmp_path / "regurgitate"
    (package / "engine").mkdir(parents=True)
    (package / "engine" / "train.py").write_text(source)
    assert len(upward_imports(package)) == 1
