"""`snakemake --sdm conda` builds workflow/envs/regurgitate.yaml and installs the package from
the checkout into it. Snakemake hands conda a copy of the environment file under
.snakemake/conda/, so the checkout cannot be a path in that file; the post-deploy script beside it
installs it from the path the workflow gives. Checked through Snakemake itself with a stand-in
`conda` (no channels here): what conda is given, and what the script installs."""

import json
import os
import shlex
import subprocess
import tomllib
from pathlib import Path

import yaml
from conftest import REPO, TINY, failure_report, snakemake_command, write_toy_corpus

ENV_FILE = REPO / "workflow" / "envs" / "regurgitate.yaml"

# Answers what Snakemake asks conda before it creates an environment, and "creates" one: a prefix
# whose python records how it was called, in the order the calls came.
FAKE_CONDA = """#!/bin/sh
case "$1" in
  info) echo '{"conda_prefix": "ROOT", "platform": "linux-64"}' ;;
  --version) echo "conda 24.11.3" ;;
  config) echo '{"get": {"channel_priority": "strict"}}' ;;
  clean) ;;  # workflow/profiles/default cleans up package tarballs
  env)
    while [ $# -gt 0 ]; do
      case "$1" in --file) file="$2" ;; --prefix) prefix="$2" ;; esac
      shift
    done
    mkdir -p "$prefix/bin"
    cp "$file" ROOT/given.yaml
    echo "$file" > ROOT/given-path
    cat > "$prefix/bin/python" <<'PYTHON'
#!/bin/sh
printf '%s\\n' "$PWD" "$@" > ROOT/python-call
PYTHON
    chmod +x "$prefix/bin/python" ;;
  *) echo "unexpected: conda $*" >&2; exit 1 ;;
esac
"""
ACTIVATE = 'export CONDA_PREFIX="$1"; export PATH="$1/bin:$PATH"\n'


def fake_conda(root: Path) -> Path:
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    conda = bin_dir / "conda"
    conda.write_text(FAKE_CONDA.replace("ROOT", shlex.quote(str(root))))
    conda.chmod(0o755)
    (bin_dir / "activate").write_text(ACTIVATE)
    return bin_dir


def test_conda_environment_installs_the_checkout_it_runs(tmp_path):
    conda_root = tmp_path / "conda"
    bin_dir = fake_conda(conda_root)
    workdir = tmp_path / "work"  # not the checkout: a study's folder anywhere
    write_toy_corpus(workdir / "data" / "corpus.tsv", 1500)
    env = {
        **{k: v for k, v in os.environ.items() if k != "REGURGITATE_SOURCE"},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }
    command = snakemake_command(TINY, "--sdm", "conda", "--conda-create-envs-only", "--cores", "1")
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    assert result.returncode == 0, failure_report(result.stdout + result.stderr)

    # conda got a copy of the file, in a folder from which no relative path reaches the checkout,
    # so the file must name none: every pip line is a pinned package.
    given_path = Path((conda_root / "given-path").read_text().strip())
    assert given_path.parent == workdir / ".snakemake" / "conda"
    given = yaml.safe_load((conda_root / "given.yaml").read_text())
    assert given == yaml.safe_load(ENV_FILE.read_text())
    pip = next(d["pip"] for d in given["dependencies"] if isinstance(d, dict))
    assert all("==" in line and not line.startswith("-") for line in pip), pip

    # The post-deploy script installed the checkout (the folder that holds this workflow's
    # pyproject.toml) into the new environment, without touching the pinned dependencies.
    cwd, *arguments = (conda_root / "python-call").read_text().splitlines()
    assert arguments[:3] == ["-m", "pip", "install"]
    assert "--no-deps" in arguments and arguments[-2] == "--editable"
    installed = Path(arguments[-1])
    assert installed.is_absolute() and installed == REPO
    project = tomllib.loads((installed / "pyproject.toml").read_text())["project"]
    assert project["name"] == "regurgitate"
    assert Path(cwd) == workdir


def test_environment_pins_what_the_package_needs():
    """Every dependency of the package but Snakemake (which runs the rules, outside the
    environment) is in the environment file with an exact version, as the post-deploy script's
    --no-deps install relies on."""
    pinned = set()
    for entry in yaml.safe_load(ENV_FILE.read_text())["dependencies"]:
        for line in entry["pip"] if isinstance(entry, dict) else [entry]:
            name, _, version = line.replace("==", "=").partition("=")
            assert version or name == "pip", line
            pinned.add(name.lower())
    conda_names = {"torch": "pytorch"}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    needed = [*project["dependencies"], *project["optional-dependencies"]["llm"]]
    missing = []
    for requirement in needed:
        name = requirement.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
        if name != "snakemake" and conda_names.get(name, name).lower() not in pinned:
            missing.append(name)
    assert missing == []


def test_post_deploy_script_refuses_without_the_checkout(tmp_path):
    """Run outside Snakemake (no REGURGITATE_SOURCE), the script says what is missing instead
    of installing something else."""
    script = REPO / "workflow" / "envs" / "regurgitate.post-deploy.sh"
    env = {k: v for k, v in os.environ.items() if k != "REGURGITATE_SOURCE"}
    env["CONDA_PREFIX"] = str(tmp_path)
    result = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "REGURGITATE_SOURCE" in result.stderr and "common.smk" in result.stderr
    assert json.dumps(sorted(os.listdir(tmp_path))) == "[]"
