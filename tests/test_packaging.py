"""What a user installs: one version number, a changelog entry for it, install instructions that work without a
package-index release, and the wheel check `.ci/run` relies on (it builds and installs the real wheel)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
import zipfile
from pathlib import Path

import pytest

import mamba_forecast

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = (
    "mamba_forecast/datasets/data/ETTh1.csv.gz",
    "mamba_forecast/bench/tuned_presets.json",
    "mamba_forecast/bench/published.csv",
)


def check_dist_tool():
    """``.ci/check_dist.py`` (a CI script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("check_dist", ROOT / ".ci" / "check_dist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_version_is_written_once():
    """pyproject.toml reads the version from ``mamba_forecast.__version__`` instead of repeating it, so the wheel's
    metadata (and `mamba-forecast --version`) cannot disagree with the package."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "mamba_forecast.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", mamba_forecast.__version__)


def test_the_changelog_covers_the_version():
    """CHANGELOG.md has the declared version: as a released section, or named in the Unreleased one."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    version = mamba_forecast.__version__
    unreleased = re.search(r"^## \[Unreleased\]\n(.*?)(?=^## \[)", text, re.M | re.S)
    assert f"## [{version}]" in text or (unreleased is not None and version in unreleased.group(1))


def test_the_readme_installs_without_a_package_index():
    """No release is on PyPI yet: every `pip install` of the README's Install section installs from a clone
    (``.``) or a built wheel (``dist/...whl``), or a build tool, never the unpublished ``mamba-forecast``."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"pip install ([^#&\n]+)", "\n".join(re.findall(r"```bash\n(.*?)```", section, re.S)))
    targets = [t.strip("\"'") for c in commands for t in c.split()]
    assert targets
    for target in targets:
        assert target in ("build",) or target.startswith((".", "dist/mamba_forecast-")), target


def _wheel(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, name)
    return path


GOOD = [
    "mamba_forecast/__init__.py",
    *PACKAGE_DATA,
    "mamba_forecast-0.2.0.dist-info/METADATA",
    "mamba_forecast-0.2.0.dist-info/licenses/LICENSE",
]


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (GOOD, None),
        ([n for n in GOOD if not n.endswith(".csv.gz")], "lacks mamba_forecast/datasets/data/ETTh1.csv.gz"),
        ([*GOOD, "tests/test_models.py"], "holds tests/test_models.py, outside the package"),
        ([*GOOD, "results/bench_results.csv"], "holds results/bench_results.csv, outside the package"),
        ([*GOOD, "mamba_forecast/bench/tuned_presets.json.lock"], "which git does not track"),
        ([n for n in GOOD if "LICENSE" not in n], "lacks the licence file"),
    ],
)
def test_the_wheel_check_names_what_is_missing_or_extra(tmp_path, names, problem):
    """The check `.ci/run` runs on the built wheel: the bundled data and tables in, tests/results/stray files out."""
    tool = check_dist_tool()
    tracked = {"mamba_forecast/__init__.py", *PACKAGE_DATA}
    problems = tool.wheel_problems(_wheel(tmp_path / "x-0.2.0-py3-none-any.whl", names), tracked)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0], problems


def test_the_wheel_check_knows_every_shipped_data_file():
    """The files the check requires are the package data git tracks (a renamed table would otherwise pass)."""
    tool = check_dist_tool()
    assert set(PACKAGE_DATA) == set(tool.REQUIRED) <= tool.tracked_package_files(ROOT)
