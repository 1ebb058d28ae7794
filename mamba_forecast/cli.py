"""``mamba-forecast``: the command line.

Each subcommand is one ``_add_<name>`` function that declares its arguments and one handler; register it in
``_COMMANDS`` and it appears in ``mamba-forecast --help``.

``main`` raises what the library raises (for scripts and tests); ``run``, the console entry point, prints a
``ValueError``/``TypeError`` (bad input, refused before anything trains) or a handler's own refusal as one
``mamba-forecast: error:`` line and exits 2, as argparse does for its own checks. ``MAMBA_FORECAST_TRACEBACK=1``
keeps the whole traceback of a library error.

The ``bench``, ``tune`` and ``report`` subcommands live in :mod:`mamba_forecast.bench_commands`.
"""

from __future__ import annotations

import argparse
import os
import sys

from .bench_commands import _add_bench, _add_report, _add_tune


def _add_data(sub) -> None:
    p = sub.add_parser(
        "data",
        help="list the registered benchmark sets, or download one",
        description="The standard long-horizon sets: where they come from, which files are in the "
        "data folder, and a download with a checksum check.",
    )
    dsub = p.add_subparsers(dest="data_command", required=True)
    lst = dsub.add_parser("list", help="the registry, and which files are present in the data folder")
    lst.add_argument(
        "--data-dir", default=None, help="data folder (default: $MAMBA_FORECAST_DATA, else ~/.cache/mamba_forecast)"
    )
    lst.set_defaults(func=_run_data_list)
    dl = dsub.add_parser("download", help="fetch a set from its public source (checksum checked where known)")
    dl.add_argument("name", help="a registered set, e.g. ETTm2 (see `mamba-forecast data list`)")
    dl.add_argument(
        "--data-dir",
        default=None,
        help="where to put it (default: $MAMBA_FORECAST_DATA, else ~/.cache/mamba_forecast; created)",
    )
    dl.add_argument("--force", action="store_true", help="download again even when the file is present")
    dl.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server (default 60)")
    dl.set_defaults(func=_run_data_download)


def _run_data_list(args) -> int:
    from .datasets import DATASETS, file_status, resolve_data_dir

    try:
        root = resolve_data_dir(args.data_dir)
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None
    print(f"data folder: {root}{'' if root.is_dir() else ' (does not exist yet)'}")
    print(f"{'name':<13} {'rows x series':>15}  {'step':<6} {'split':<12} {'sha256':<8} files")
    for spec in DATASETS.values():
        status = file_status(spec, root)
        files = ", ".join(f"{f.name} ({'present' if p else 'missing'})" for f, p in status)
        checked = "known" if all(f.sha256 for f in spec.files) else "none"
        if spec.name == "ETTh1" and args.data_dir is None and not all(p for _, p in status):
            files += " [bundled copy used]"
        print(
            f"{spec.name:<13} {f'{spec.n_rows} x {spec.n_series}':>15}  {spec.freq:<6} {spec.split:<12} "
            f"{checked:<8} {files}"
        )
    print("\nFetch one with `mamba-forecast data download NAME`; sha256 'none': the download is kept unverified.")
    return 0


def _run_data_download(args) -> int:
    from .datasets import DownloadError, canonical_name, download

    try:
        download(
            canonical_name(args.name),
            args.data_dir,
            force=args.force,
            timeout=args.timeout,
            log=lambda msg: print(msg, flush=True),
        )
    except KeyError as exc:
        raise SystemExit(str(exc.args[0])) from None
    except (DownloadError, FileNotFoundError) as exc:
        raise SystemExit(str(exc)) from None
    return 0


# ----------------------------------------------------------------------------------------------- demo
def _add_demo(sub) -> None:
    from .demo import __doc__ as demo_doc
    from .demo import add_arguments

    p = sub.add_parser(
        "demo",
        help="the four Mamba models next to SeasonalNaive and AutoETS on bundled data",
        description=demo_doc.split("\n\n")[0],
    )
    add_arguments(p)
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from .demo import run

    run(args)
    return 0


# Subcommand registry: name -> function adding its parser. A new subcommand is one entry here.
_COMMANDS = {
    "demo": _add_demo,
    "bench": _add_bench,
    "tune": _add_tune,
    "report": _add_report,
    "data": _add_data,
}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="mamba-forecast", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mamba-forecast {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in _COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # the page `report` writes names the command that regenerates it
    return args.func(args)


TRACEBACK_ENV = "MAMBA_FORECAST_TRACEBACK"


def run(argv: list[str] | None = None) -> int:
    """The ``mamba-forecast`` console script: ``main`` with bad input reported as one line (exit status 2)."""
    try:
        return main(argv)
    except SystemExit as exc:  # a handler's own refusal (a message, not a status): reported like the library's
        if not isinstance(exc.code, str):
            raise
        message = exc.code
    except (ValueError, TypeError) as exc:
        if os.environ.get(TRACEBACK_ENV, "").strip() not in ("", "0"):
            raise
        message = f"{exc}\n(set {TRACEBACK_ENV}=1 for the traceback)"
    print(f"mamba-forecast: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(run())
