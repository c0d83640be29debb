"""The workflow's scripts are thin: each calls one job of regurgitate.jobs, with keywords only,
and every job takes keywords only, so that two paths passed in the wrong order cannot silently
swap (docs/study.md, "From the corpus to the figures")."""

import ast
import importlib
import inspect
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
