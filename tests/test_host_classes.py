"""The host classes are ordinary source, written from the model specs and kept in step with them.

``SMamba``, ``AutoSMamba`` (NeuralForecast) and ``SMambaModel`` (Darts) ... live in modules a reader, grep, an IDE
and ``inspect.getsource`` can open (``mamba_forecast/{neuralforecast,darts}/<model>.py``), written by
``tools/host_classes.py`` from each model's spec. A spec changed without rerunning the tool, or a hand edit of a
written module, fails here.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
from pathlib import Path

import pytest

pytest.importorskip("neuralforecast")
pytest.importorskip("darts")

import mamba_forecast.darts as mdarts
import mamba_forecast.neuralforecast as mnf
from conftest import MODEL_NAMES
from mamba_forecast.models import all_specs, get_spec

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mamba_forecast"


def host_classes_tool():
    """``tools/host_classes.py`` (a development script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("host_classes_tool", ROOT / "tools" / "host_classes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def classes_of(name: str) -> list[type]:
    return [getattr(mnf, name), getattr(mnf, f"Auto{name}"), getattr(mdarts, f"{name}Model")]


def test_written_modules_match_the_specs():
    """Every registered model's host modules hold exactly what the tool writes from its spec today."""
    stale = host_classes_tool().stale_files()
    assert not stale, (
        f"stale host modules: {', '.join(str(p.relative_to(ROOT)) for p in stale)}; run `python tools/host_classes.py`"
    )


@pytest.mark.parametrize(
    "change",
    [
        dict(learning_rate=1e-2),  # a default of the NeuralForecast signature
        dict(tagline="another tagline"),  # docstring prose of both hosts
    ],
)
def test_a_changed_spec_leaves_its_modules_stale(change):
    """The check above sees a spec edit: what the tool would write then differs from the committed modules."""
    tool = host_classes_tool()
    spec = get_spec("SMamba")
    changed = dataclasses.replace(spec, **change)
    assert tool.neuralforecast_module(changed) != (PACKAGE / "neuralforecast" / "smamba.py").read_text()
    if "tagline" in change:
        assert tool.darts_module(changed) != (PACKAGE / "darts" / "smamba.py").read_text()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_host_classes_follow_their_spec(name):
    """Read off the live classes (not their text): the architecture arguments are the spec's, in its order
    (NeuralForecast lists the shared dropout/use_norm/scan_backend last), with its defaults, and the docstrings
    are those the tool assembles from the spec."""
    tool = host_classes_tool()
    spec = get_spec(name)
    model, auto, darts_model = classes_of(name)
    assert model.spec is auto.model_class.spec is darts_model.spec is spec
    assert model.core_class is darts_model._core_cls is spec.core

    nf_params = inspect.signature(model).parameters
    nf_arch = [n for n in nf_params if n in spec.arguments]
    assert nf_arch == [a.name for a in tool.nf_ordered_arguments(spec)]
    assert list(nf_params)[7 : 7 + len(nf_arch)] == nf_arch  # between exclude_insample_y and loss
    assert {n: nf_params[n].default for n in nf_arch} == spec.defaults()
    assert nf_params["learning_rate"].default == spec.learning_rate

    darts_params = list(inspect.signature(darts_model.__init__).parameters.values())
    assert [p.name for p in darts_params[4:-2]] == list(spec.arguments)
    assert {p.name: p.default for p in darts_params[4:-2]} == spec.defaults()

    for doc, expected in (
        (model.__doc__, tool.nf_docstring(spec)),
        (auto.__doc__, tool.auto_docstring(spec)),
        (darts_model.__init__.__doc__, tool.darts_docstring(spec)),
    ):
        assert inspect.cleandoc(doc) == inspect.cleandoc(expected)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_host_classes_are_ordinary_source(name):
    """``inspect.getsource`` finds each class in its module file, and tracebacks point at that file (an
    ``exec``-built class has neither)."""
    for cls in classes_of(name):
        path = Path(inspect.getsourcefile(cls))
        assert path.parent.parent == PACKAGE and path.stem == get_spec(name).core.__module__.rpartition(".")[2]
        assert inspect.getsource(cls).startswith(f"class {cls.__name__}(")
        if "__init__" in vars(cls):
            assert Path(cls.__init__.__code__.co_filename) == path
        assert getattr(importlib.import_module(cls.__module__), cls.__name__) is cls


def test_every_registered_model_has_its_host_classes():
    """A registered spec without host classes (its modules not written, or not imported by the host packages)
    fails here by name rather than in every test parametrised over the registry."""
    for spec in all_specs():
        for host, names in ((mnf, (spec.name, f"Auto{spec.name}")), (mdarts, (f"{spec.name}Model",))):
            for cls_name in names:
                assert cls_name in host.__all__ and hasattr(host, cls_name), (
                    f"{host.__name__} has no {cls_name}: run `python tools/host_classes.py` and import the "
                    f"written module in {host.__name__}/__init__.py"
                )


def test_the_package_compiles_no_code_at_run_time():
    """No ``exec``/``eval``/``compile`` anywhere in the package: every class is in a file."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("exec", "eval", "compile"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.func.id}")
    assert not found, found
