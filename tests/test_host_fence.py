"""The fence around the host libraries' private internals.

Every use of a private name of NeuralForecast, Darts, (PyTorch) Lightning or Ray (a module, class, function or
attribute whose name starts with ``_``) lives in ``mamba_forecast/neuralforecast/_compat.py`` or
``mamba_forecast/darts/_compat.py``, where each one is documented with the host versions it was checked against.
So a new host release can break only those two files. Only ``neuralforecast/_compat.py`` looks at the call
stack (touchpoint 7: the ``NeuralForecast`` object calling a model's ``fit``), and no other module does.

The scan reads every module of ``mamba_forecast`` with ``ast`` and, for the classes it defines, the host classes
they inherit from (their private methods and attributes, read from the installed host sources).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("neuralforecast")
pytest.importorskip("darts")

PACKAGE = Path(__file__).resolve().parents[1] / "mamba_forecast"
HOSTS = {"neuralforecast", "darts", "pytorch_lightning", "lightning", "lightning_fabric", "ray"}
COMPAT = {PACKAGE / "neuralforecast" / "_compat.py", PACKAGE / "darts" / "_compat.py"}
# stack walking: sys._getframe, sys._current_frames, inspect.currentframe/stack/getouterframes/trace
STACK_NAMES = {"_getframe", "_current_frames", "currentframe", "getouterframes", "getinnerframes"}
INSPECT_STACK = {"stack", "trace"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _host_root(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in HOSTS


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _host_private_members(cls: type) -> set[str]:
    """Private names the host classes in ``cls``'s MRO define: methods, class attributes and the ``self._x``
    attributes their code assigns."""
    names: set[str] = set()
    for klass in inspect.getmro(cls):
        if not _host_root(getattr(klass, "__module__", None)):
            continue
        names |= {n for n in vars(klass) if _private(n)}
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and _private(node.attr)
            ):
                names.add(node.attr)
    return names


def _is_self_like(node: ast.AST, class_name: str) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls", class_name)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _violations(
    where: str, tree: ast.Module, module, host_private: set[str], own_private: set[str], compat: bool = False
) -> list[str]:
    """What ``tree`` (the source of ``module``) does with private host names and the call stack."""
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{where}:{node.lineno}: {what}")

    # stack walking: only in the NeuralForecast fence (touchpoint 7), nowhere else
    stack_walk_allowed = where == "mamba_forecast/neuralforecast/_compat.py"
    for node in [] if stack_walk_allowed else ast.walk(tree):
        if isinstance(node, ast.Attribute) and (
            node.attr in STACK_NAMES or (node.attr in INSPECT_STACK and _root_name(node) == "inspect")
        ):
            report(node, f"stack walking ({ast.unparse(node)})")
        elif isinstance(node, ast.ImportFrom) and any(a.name in STACK_NAMES for a in node.names):
            report(node, f"stack walking (imports {', '.join(a.name for a in node.names)})")
    if compat:
        return found

    # 1. imports of private host modules or names; remember the names bound to host objects
    host_bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _host_root(alias.name):
                    host_bound.add((alias.asname or alias.name).split(".")[0])
                    if any(_private(part) for part in alias.name.split(".")):
                        report(node, f"imports the private host module {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _host_root(node.module):
            private_module = any(_private(part) for part in node.module.split("."))
            for alias in node.names:
                host_bound.add(alias.asname or alias.name)
                if private_module or _private(alias.name):
                    report(node, f"imports {alias.name} from {node.module}")

    # 2. private attributes of host objects (``neuralforecast.core._x``, ``BaseModel._fit_distributed``)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and _root_name(node) in host_bound:
            report(node, f"uses the private host attribute {ast.unparse(node)}")

    # 3. classes built on host classes: overriding or reading their private members
    def scan_class(cls_node: ast.ClassDef, inherited: set[str]) -> None:
        for item in cls_node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in inherited:
                report(item, f"{cls_node.name} overrides the private host member {item.name}")
            elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in inherited:
                        report(item, f"{cls_node.name} overrides the private host member {target.id}")
        for node in ast.walk(cls_node):
            if isinstance(node, ast.Attribute) and node.attr in inherited and _is_self_like(node.value, cls_node.name):
                report(node, f"{cls_node.name} uses the private host member {ast.unparse(node)}")

    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            cls = getattr(module, node.name, None)
            if isinstance(cls, type):
                scan_class(node, _host_private_members(cls))

    # 4. anywhere: a private member of a host class read off any object, or by name through getattr & co.,
    # unless this package defines that name itself
    suspects = host_private - own_private
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in suspects and not _is_self_like(node.value, ""):
            report(node, f"uses the private host member {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in suspects
        ):
            report(node, f"uses the private host member {node.args[1].value!r} by name")
    return found


def _package_classes(trees: dict[Path, ast.Module]) -> list[type]:
    classes = []
    for path, tree in trees.items():
        module = importlib.import_module(_module_name(path))
        for node in tree.body:
            cls = getattr(module, node.name, None) if isinstance(node, ast.ClassDef) else None
            if isinstance(cls, type):
                classes.append(cls)
    return classes


def _own_private_names(trees: dict[Path, ast.Module]) -> set[str]:
    """Private names this package defines outside the _compat files: functions, classes, ``self._x``."""
    names = set()
    for path, tree in trees.items():
        if path in COMPAT:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _private(node.name):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _private(node.attr):
                names.add(node.attr)
    return names


def test_private_host_names_are_used_only_in_the_compat_modules():
    trees = {path: ast.parse(path.read_text(), filename=str(path)) for path in _modules()}
    host_private: set[str] = set()
    for cls in _package_classes(trees):
        host_private |= _host_private_members(cls)
    own_private = _own_private_names(trees)
    # names this package defines that are also host-private are overrides, caught per class (rule 3)
    found = [
        v
        for path, tree in trees.items()
        for v in _violations(
            str(path.relative_to(PACKAGE.parent)),
            tree,
            importlib.import_module(_module_name(path)),
            host_private,
            own_private,
            compat=path in COMPAT,
        )
    ]
    assert not found, "private host internals used outside the _compat modules:\n" + "\n".join(found)


def test_compat_modules_exist_and_document_the_host_versions():
    from importlib.metadata import version

    for path, host in (
        (PACKAGE / "neuralforecast" / "_compat.py", "neuralforecast"),
        (PACKAGE / "darts" / "_compat.py", "darts"),
    ):
        text = path.read_text()
        installed = ".".join(version(host).split(".")[:2])
        assert f"{host} {installed}" in text, f"{path.name} does not name the installed {host} {installed}"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from neuralforecast.common._base_model import BaseModel", "imports BaseModel"),
        ("from neuralforecast.tsdataset import _DistributedTimeSeriesDataModule", "imports _Distributed"),
        ("import neuralforecast.core\nx = neuralforecast.core._type2scaler", "private host attribute"),
        ("import sys\nf = sys._getframe(1)", "stack walking"),
        ("import inspect\nf = inspect.stack()", "stack walking"),
        (
            "from darts.models.forecasting.torch_forecasting_model import MixedCovariatesTorchModel\n"
            "class M(MixedCovariatesTorchModel):\n"
            "    def _setup_for_predict(self, *a, **k):\n"
            "        return super()._setup_for_predict(*a, **k)\n",
            "overrides the private host member _setup_for_predict",
        ),
        (
            "def hook(model):\n    return model._fit_distributed\n",
            "uses the private host member model._fit_distributed",
        ),
    ],
)
def test_the_fence_catches(tmp_path, monkeypatch, source, expected):
    """The scan itself: each way of reaching into a host is reported (a fence that catches nothing passes too)."""
    from darts.models.forecasting.torch_forecasting_model import MixedCovariatesTorchModel
    from neuralforecast.common import _base_model

    (tmp_path / "fence_probe.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("fence_probe")
    host_private = _host_private_members(_base_model.BaseModel) | _host_private_members(MixedCovariatesTorchModel)
    try:
        found = _violations("fence_probe.py", ast.parse(source), module, host_private, set())
    finally:
        sys.modules.pop("fence_probe", None)
    assert any(expected in v for v in found), found
