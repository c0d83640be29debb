"""The workflow's scripts are thin: each calls one job of regurgitate.jobs, with keywords only,
and every job takes keywords only, so that two paths passed in the wrong order cannot silently
swap (docs/study.md, "From the corpus to the figures")."""

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

SCRIPTS = sorted((REPO / "workflow" / "scripts").glob("*.py"))


def job_calls(path: Path) -> list[tuple[ast.Call, object]]:
    """Each call in a script of a function it imports from regurgitate.jobs (but the logging
    context), with that function."""
    tree = ast.parse(path.read_text(), str(path))
    jobs = {
        alias.asname or alias.name: getattr(importlib.import_module(node.module), alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("regurgitate.jobs.")
        and node.module != "regurgitate.jobs.log"
        for alias in node.names
    }
    return [
        (node, jobs[node.func.id])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in jobs
    ]


def call_problems(call: ast.Call, function) -> list[str]:
    parameters = inspect.signature(function).parameters
    passed = [keyword.arg for keyword in call.keywords]
    problems = [f"{len(call.args)} positional argument(s)"] if call.args else []
    problems += [f"takes {name} by position" for name, p in parameters.items()
                 if p.kind is not p.KEYWORD_ONLY]  # fmt: skip
    problems += [f"no parameter {name}" for name in passed if name not in parameters]
    problems += [f"misses {name}" for name, p in parameters.items()
                 if p.default is p.empty and name not in passed]  # fmt: skip
    return problems


def test_there_are_scripts():
    assert len(SCRIPTS) > 40


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.name)
def test_a_script_calls_one_job_with_keywords_only(path):
    calls = job_calls(path)
    assert len(calls) == 1, f"{path.name} calls {len(calls)} jobs"
    assert call_problems(*calls[0]) == []


def test_a_positional_argument_is_found(tmp_path):
    script = tmp_path / "table_html.py"
    script.write_text(
        "from regurgitate.jobs.report import table_html\n"
        "table_html(snakemake.input[0], out=snakemake.output[0])\n"
    )
    ((call, function),) = job_calls(script)
    assert call_problems(call, function) == ["1 positional argument(s)", "misses table_path"]


# What a job of each kind may not import: a library it does not use costs every such job its
# import time (torch about 2 s, scikit-learn and scipy.stats about 1 s, matplotlib about 1 s),
# and the CPU preset runs dozens of them.
NOT_IMPORTED = {
    "table_": ("torch", "sklearn", "scipy.stats", "matplotlib", "transformers"),
    "figure_": ("torch", "sklearn", "scipy.stats", "transformers"),
    "mechanisms_": ("torch", "sklearn", "scipy.stats", "matplotlib", "transformers"),
    "reverse_pairs": ("torch", "sklearn", "scipy.stats", "matplotlib", "transformers"),
    "train_detector": ("torch", "matplotlib", "transformers"),
}


@pytest.mark.parametrize("prefix", sorted(NOT_IMPORTED))
def test_a_job_imports_only_the_libraries_it_uses(prefix):
    scripts = [path for path in SCRIPTS if path.name.startswith(prefix)]
    assert scripts
    imports = [
        line
        for path in scripts
        for line in path.read_text().splitlines()
        if line.startswith("from regurgitate.")
    ]
    check = "\n".join(["import sys", *imports, "print(sorted(m for m in sys.modules))"])
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    loaded = set(ast.literal_eval(result.stdout))
    assert loaded.isdisjoint(NOT_IMPORTED[prefix]), sorted(loaded & set(NOT_IMPORTED[prefix]))
