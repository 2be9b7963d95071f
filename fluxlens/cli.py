"""The fluxlens console command: one subcommand per task, each owned by its layer."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import traceback
from pathlib import Path

from catalog import settings
from catalog.errors import FluxLensError
from fluxlens import train_sources

# (module, function): each function adds its subcommands; a subcommand sets ``func(args) -> int``.
COMMANDS = (
    ("data_prep.commands", "add_commands"),
    ("fluxlens.demo", "add_commands"),  # builds the demo world (data_prep) and trains its model (models)
    ("models.commands", "add_commands"),
    ("models.job_commands", "add_job_commands"),
    ("app.commands", "add_commands"),
    ("validation.commands", "add_commands"),
)
# Modules that add job kinds when imported (models.jobs.register_kind), so that every command knows
# them: ``worker`` runs them, ``jobs`` lists and cancels them.
JOB_KIND_MODULES = ("validation.jobs",)

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: one line on stderr, the traceback in a log file (or on stderr with -v)
EXIT_ERROR = 2  # the request or its input cannot be served: one line on stderr saying why
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # the reader of the output went away: 141, as for shell tools

DESCRIPTION = """\
FluxLens: explore and validate soil-moisture and land heat-flux datasets.
One subcommand per task; 'fluxlens <command> --help' describes each."""
# reST roles and literals of docstrings used as help texts: :func:`x`, ``x``, `x`
_REST = re.compile(r"(?::[a-z]+:)?`{1,2}([^`]+)`{1,2}")
# Our packages, whose INFO records a service command (the web server, a job worker) shows by default.
OUR_LOGGERS = ("app", "catalog", "data_prep", "models", "validation", "fluxlens")
SERVICE_COMMANDS = ("serve", "worker")

EPILOG = """\
exit status and errors:
  0    done
  2    the request or its input cannot be served: a corrupt or truncated file, a bad option,
       an unknown product or variable, a full disk, a path too long, ...; one line on stderr:
       "fluxlens <command>: error: <what and why>"
  1    internal error (a bug): one line on stderr,
       "fluxlens <command>: internal error: <type>: <message> (traceback in <log file>...)";
       the traceback is written to a new file fluxlens-<command>-*.log in the temporary
       directory ($TMPDIR), or printed on stderr instead with -v
  130  interrupted (Ctrl-C)
  141  the output pipe was closed early (e.g. `fluxlens catalog | head -1`): the command stops
       quietly, without a message
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fluxlens",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data-dir", help="data directory (default: $FLUXLENS_DATA_DIR or ./fluxlens-data)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress; print the traceback of an internal error"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name, function in COMMANDS:
        getattr(importlib.import_module(module_name), function)(sub)
    for module_name in JOB_KIND_MODULES:
        importlib.import_module(module_name)
    train_sources.add_to_train(sub)  # train across the layers: a FLUXNET folder is ingested first
    _plain_help(parser)
    return parser


def plain_text(text: str | None) -> str | None:
    """Help text without reST markup: ``:func:`a.b``` and double or single back-quoted literals
    become their plain text (command docstrings are written for the API docs)."""
    return _REST.sub(r"\1", text) if text else text


def _plain_help(parser: argparse.ArgumentParser) -> None:
    """:func:`plain_text` over the descriptions and help strings of ``parser`` and its subcommands."""
    parser.description = plain_text(parser.description)
    parser.epilog = plain_text(parser.epilog)
    for action in parser._actions:
        action.help = plain_text(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = plain_text(choice.help)
            for sub in action.choices.values():
                _plain_help(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.command, verbose=args.verbose)
    # the command's settings, built once: the environment as it is now and --data-dir
    settings.configure(settings.from_environment(data_dir=args.data_dir or None))
    try:
        return _run(args, argv)
    finally:
        settings.configure(None)  # a caller in the same process (a test) follows the environment again


class PlainFormatter(logging.Formatter):
    """``fluxlens <command>: <message>``; ``warning:`` / ``error:`` after the command only for
    records at those levels, like the command's own error lines."""

    def __init__(self, command: str):
        super().__init__()
        self.command = command

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        text = f"fluxlens {self.command}: {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(command: str, *, verbose: bool = False) -> None:
    """Log records on stderr for one command: warnings and errors always; our packages' INFO records
    for the long-running services (``serve``, ``worker``) or with ``-v``, which also adds the time,
    level and logger name to each line. Replaces the handlers of an earlier call (tests call
    :func:`main` repeatedly)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "fluxlens", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.fluxlens = True
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(PlainFormatter(command))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    ours = logging.INFO if verbose or command in SERVICE_COMMANDS else logging.WARNING
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(ours)


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _broken_pipe()
    except FluxLensError as exc:
        _error(args.command, str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _error(args.command, "interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:
        _error(args.command, os_error_message(exc))
        return EXIT_ERROR
    except Exception as exc:  # the last resort: one line, the traceback kept aside
        return _internal_error(args.command, exc, verbose=args.verbose, argv=argv)


def _error(command: str, message: str) -> None:
    text = " ".join(message.split("\n")).strip()
    try:
        print(f"fluxlens {command}: error: {text}", file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError):  # stderr gone too: nothing left to tell
        pass


def _broken_pipe() -> int:
    """Python docs (signal, "Note on SIGPIPE"): point stdout at devnull so that the flush at
    interpreter exit does not raise again, and leave without a message."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def _data_dir() -> Path:
    from catalog import settings

    return settings.data_dir()


def _free_text(path: Path) -> str:
    """``"12.3 MiB free"`` on the filesystem holding ``path`` (or its nearest existing parent)."""
    for p in (path, *path.parents):
        try:
            return f"{shutil.disk_usage(p).free / 2**20:,.1f} MiB free"
        except OSError:
            continue
    return "free space unknown"


def _name_limits(path: Path) -> str:
    for p in path.parents:
        try:
            name_max, path_max = os.pathconf(p, "PC_NAME_MAX"), os.pathconf(p, "PC_PATH_MAX")
        except (OSError, ValueError):
            continue
        return f"this filesystem allows {name_max} bytes per name and {path_max} per path"
    return "a name may have at most 255 bytes"


def _reasons(exc: BaseException) -> list[str]:
    """The messages of ``exc`` and the exceptions behind it (GDAL's come chained), outermost first."""
    out: list[str] = []
    e: BaseException | None = exc
    while e is not None and len(out) < 8:
        text = " ".join(str(e).split())
        if text and "See previous exception" not in text and text not in out:
            out.append(text)
        e = e.__cause__ or e.__context__
    return out


# Libraries that report an errno only in their message (GDAL/libtiff, HDF5).
_ERRNO_TEXT = {errno.ENOSPC: "No space left on device", errno.ENAMETOOLONG: "File name too long"}


def _errno(exc: OSError, reasons: list[str]) -> int | None:
    if exc.errno is not None:
        return exc.errno
    for code, text in _ERRNO_TEXT.items():
        if any(text.lower() in r.lower() for r in reasons):
            return code
    return None


def os_error_message(exc: OSError) -> str:
    """One line for an operating-system error: what failed, on which file, and what to do."""
    reasons = _reasons(exc)
    code = _errno(exc, reasons)
    names = [os.fsdecode(f) for f in (exc.filename, exc.filename2) if f is not None]
    name = names[0] if names else None
    # what the raiser added to the system's wording, e.g. "(the GeoTIFF needs up to about 12 MiB)"
    extra = (exc.strerror or "").removeprefix(os.strerror(code) if code else "").strip(" ;:")
    extra = f"; {extra}" if extra else ""
    if code in (errno.ENOSPC, errno.EDQUOT):
        target = Path(name) if name else _data_dir()
        kind = "no space left on the device" if code == errno.ENOSPC else "disk quota exceeded"
        return (
            f"{kind}: cannot write {name or 'to ' + str(target)} ({_free_text(target)} on that filesystem"
            f"{extra}); free some space there or write elsewhere"
        )
    if code == errno.ENAMETOOLONG:
        # os.replace(src, dst) names both: report the one with the longest name
        text = max(names, key=lambda n: max(map(len, map(os.fsencode, Path(n).parts)), default=0), default="")
        longest = max((len(os.fsencode(part)) for part in Path(text).parts), default=0)
        return (
            f"path or file name too long: {text or '(not named)'} ({len(os.fsencode(text))} bytes, longest "
            f"name {longest} bytes; {_name_limits(Path(text))}); use shorter names or a shorter --data-dir"
        )
    if exc.strerror:
        return f"{exc.strerror}{f' ({name})' if name else ''}"
    return "; ".join(reversed(reasons)) or type(exc).__name__


def _internal_error(command: str, exc: BaseException, *, verbose: bool, argv=None) -> int:
    summary = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
        detail = "traceback above"
    else:
        detail = f"rerun as fluxlens -v {command} ... for the traceback"
        try:
            fd, log_path = tempfile.mkstemp(prefix=f"fluxlens-{command}-", suffix=".log")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(f"fluxlens {' '.join(sys.argv[1:] if argv is None else argv)}\n")
                traceback.print_exception(exc, file=fh)
            detail = f"traceback in {log_path}, or rerun as fluxlens -v {command} ..."
        except OSError:
            pass
    try:
        print(f"fluxlens {command}: internal error: {summary} ({detail})", file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError):
        pass
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
