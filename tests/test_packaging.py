"""The package as published: its metadata, one version, its dependencies where imported, a wheel and
an sdist that twine accepts, the lint pins, and a README that names every variable the code reads."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import nncompare
from nncompare.engines.registry import plugins

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]

#: Where a module's imports must be declared: the extra of its part of the package, else the core.
#: (results.py: pandas only in ``frame``, the records as a DataFrame, which says to install the extra.)
EXTRA_OF = {
    "engines/dask/": "dask",
    "engines/spark/": "spark",
    "plots.py": "report",
    "figure_style.py": "report",
    "worker_plots.py": "report",
    "results.py": "report",
    "gate/": "bench",
}


def names(requirements) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


def test_the_version_is_written_once():
    assert "version" not in PROJECT and PROJECT["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "nncompare.__version__"}
    assert metadata.version("nncompare") == nncompare.__version__
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(nncompare.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)


def test_the_metadata_is_complete():
    assert PROJECT["license"] == "BSD-3-Clause" and PROJECT["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause License")
    assert PROJECT["authors"] and len(PROJECT["keywords"]) >= 5
    asv_conf = json.loads(re.sub(r"^\s*//.*$", "", (ROOT / "asv.conf.json").read_text(), flags=re.M))
    assert PROJECT["urls"]["Source"] == asv_conf["project_url"]
    oldest = PROJECT["requires-python"].removeprefix(">=")
    versions = [c.rsplit(" :: ", 1)[1] for c in PROJECT["classifiers"] if re.fullmatch(r".*Python :: 3\.\d+", c)]
    assert versions[0] == oldest, "the classifiers start at requires-python"
    assert [int(v.split(".")[1]) for v in versions] == list(range(int(oldest.split(".")[1]), 1 + int(versions[-1][2:])))


def third_party_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "nncompare"}


def test_dependencies_are_declared_where_they_are_imported():
    distributions = metadata.packages_distributions()
    core = names(PROJECT["dependencies"])
    extras = {name: names(reqs) for name, reqs in PROJECT["optional-dependencies"].items()}
    used, undeclared = set(), []
    for path in sorted((ROOT / "src" / "nncompare").rglob("*.py")):
        relative = path.relative_to(ROOT / "src" / "nncompare").as_posix()
        extra = next((e for prefix, e in EXTRA_OF.items() if relative.startswith(prefix)), None)
        allowed = core | (extras[extra] if extra else set())
        for module in third_party_imports(path):
            distribution = distributions[module][0].lower()
            used.add(distribution)
            if distribution not in allowed and not (distribution == "distributed" and "dask" in allowed):
                undeclared.append(f"{relative}: {distribution}")
    assert undeclared == []
    assert core - used == set(), "a core dependency that nothing imports"
    assert "pandas" not in extras["spark"] and "pyarrow" not in extras["spark"], "the Spark engine imports neither"


def test_the_lint_pins_agree():
    import yaml

    [ruff] = [r for r in PROJECT["optional-dependencies"]["lint"] if r.startswith("ruff")]
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"]
    [repo] = [h for h in hooks if h["repo"].endswith("/ruff-pre-commit")]
    assert f"ruff=={repo['rev'].removeprefix('v')}" == ruff
    assert {h["id"] for h in repo["hooks"]} == {"ruff-check", "ruff-format"}
    assert metadata.version("ruff") == ruff.split("==")[1], "the ruff installed is the one pinned"
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", str(ROOT / ".pre-commit-config.yaml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_results_lock_files_are_ignored():
    paths = ["results.jsonl.lock", "out/sweep.jsonl.lock"]
    done = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.splitlines() == paths, done.stderr


def variables_read() -> set[str]:
    """Every NNCOMPARE_* variable the package, the benchmarks and the tools read, the per-engine
    template expanded for each registered engine."""
    found = set()
    for folder in ("src", "benchmarks", "tools"):
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"\bNNCOMPARE_[A-Z_]*[A-Z]\b", path.read_text()))
    found |= {f.metadata["env"] for p in plugins().values() for f in p.setting_fields() if f.metadata.get("env")}
    template = "NNCOMPARE_ASV_{engine.upper()}_CLUSTER"
    assert template in (ROOT / "benchmarks" / "common.py").read_text()
    found |= {f"NNCOMPARE_ASV_{name.upper()}_CLUSTER" for name, p in plugins().items() if p.cluster_schemes}
    return {v for v in found if v != "NNCOMPARE_ASV"}  # the template's prefix, as the regex reads it


def readme_variable_table() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        if line.startswith("| `NNCOMPARE_"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            for name in re.findall(r"`(NNCOMPARE_[A-Z_<>]+)`", cells[0]):
                rows[name] = cells[-1]
    return rows


def test_the_readme_names_every_variable_the_code_reads():
    table = readme_variable_table()
    listed = {name for name in table if "<" not in name}
    assert sorted(variables_read() - listed) == [], "missing from the README's table"
    assert sorted(listed - variables_read()) == [], "in the table, read by nothing"
    assert "NNCOMPARE_ASV_<ENGINE>_CLUSTER" in table


def test_the_readme_gives_each_engine_settings_default_as_its_plugin_declares_it():
    from nncompare.engines.plugin import default_of

    table = readme_variable_table()
    for plugin in plugins().values():
        for f in plugin.setting_fields():
            if f.metadata.get("env"):
                default = default_of(plugin.settings, f.name)
                shown = str(int(default)) if isinstance(default, (bool, float)) and default == int(default) else default
                assert table[f.metadata["env"]] == str(shown), f.metadata["env"]


@pytest.mark.slow
def test_the_wheel_and_sdist_build_and_pass_twine_check(tmp_path):
    """As the workflow's build job does, without the network: the venv's setuptools builds them."""
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheel = next(tmp_path.glob("nncompare-*.whl"))
    sdist = next(tmp_path.glob("nncompare-*.tar.gz"))
    assert wheel.name.startswith(f"nncompare-{nncompare.__version__}-py3-none-any")
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with zipfile.ZipFile(wheel) as zf:
        files = zf.namelist()
        meta = zf.read(f"nncompare-{nncompare.__version__}.dist-info/METADATA").decode()
    assert f"nncompare-{nncompare.__version__}.dist-info/licenses/LICENSE" in files
    assert "nncompare/py.typed" in files and any(f.startswith("nncompare/paper/") and f.endswith(".csv") for f in files)
    assert "License-Expression: BSD-3-Clause" in meta and "Project-URL: Source, " in meta
    assert "Requires-Dist: scipy" in meta


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_the_tree_is_linted_and_formatted(command):
    """What the workflow's lint job checks, so that .ci/run holds to it too."""
    done = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
