"""Check the wheel `.ci/run` built: ``python .ci/check_dist.py FROM_SDIST.whl FROM_TREE.whl``.

* The wheel holds exactly the package files git tracks under ``mamba_forecast/`` (the modules, the bundled ETTh1,
  the shipped preset and published-results tables), its metadata and the licence, and nothing else: no
  ``results/``, ``tests/``, ``tools/``, ``benchmarks/`` or ``docs/``, no stray lock or cache file.
* The wheel built from the sdist (what ``python -m build`` installs from) and the one built straight from the tree
  hold the same files with the same bytes (their ``RECORD`` hashes), so the sdist is complete.

Exit status 1 with one line a problem, 0 when both hold.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE = "mamba_forecast"
# the files a user needs beyond the modules; named here so that a pattern dropped from package-data says what broke
REQUIRED = (
    f"{PACKAGE}/datasets/data/ETTh1.csv.gz",
    f"{PACKAGE}/bench/tuned_presets.json",
    f"{PACKAGE}/bench/published.csv",
)


def tracked_package_files(root: Path) -> set[str]:
    """The files git tracks under the package folder (paths relative to ``root``, with forward slashes)."""
    out = subprocess.run(["git", "ls-files", "-z", PACKAGE], cwd=root, capture_output=True, text=True, check=True)
    return {name for name in out.stdout.split("\0") if name}


def wheel_problems(wheel: Path, tracked: set[str]) -> list[str]:
    """What is wrong with the files of ``wheel`` given the package files git tracks (empty: nothing)."""
    with zipfile.ZipFile(wheel) as archive:
        names = {n for n in archive.namelist() if not n.endswith("/")}
    dist_info = {n for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    package = {n for n in names if n.startswith(f"{PACKAGE}/")}
    problems = [f"{wheel.name}: lacks {name}" for name in REQUIRED if name not in package]
    problems += [f"{wheel.name}: lacks {name} (tracked by git)" for name in sorted(tracked - package - set(REQUIRED))]
    problems += [f"{wheel.name}: holds {name}, which git does not track" for name in sorted(package - tracked)]
    problems += [f"{wheel.name}: holds {name}, outside the package" for name in sorted(names - package - dist_info)]
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in dist_info):
        problems.append(f"{wheel.name}: lacks the licence file (.dist-info/licenses/LICENSE)")
    return problems


def record(wheel: Path) -> set[str]:
    """The ``RECORD`` rows of ``wheel`` (path, hash, size) but RECORD's own row, which has no hash."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        rows = archive.read(name).decode().splitlines()
    return {row for row in rows if row and not row.startswith(name + ",")}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    from_sdist, from_tree = map(Path, argv)
    problems = wheel_problems(from_sdist, tracked_package_files(Path(__file__).resolve().parents[1]))
    differing = sorted({row.split(",", 1)[0] for row in record(from_sdist) ^ record(from_tree)})
    problems += [f"the wheels built from the sdist and from the tree differ in {name}" for name in differing]
    for problem in problems:
        print(f".ci/check_dist.py: {problem}", file=sys.stderr)
    if not problems:
        print(f"{from_sdist.name}: {len(record(from_sdist))} files, the same from the sdist as from the tree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
