"""The xlsx-kpi command line: parse options, call the library (xlsx_kpi.api), print, exit (0 ok, 1 findings, 2 bad
input). Commands by stage: cli/templates.py (specs, template, build-templates), cli/check.py (check, collect),
cli/history.py (history, report, rules, serve); cli/render.py prints and writes the JSON."""

from __future__ import annotations

import io
import sys

import typer

from xlsx_kpi.cli import check, history, templates
from xlsx_kpi.cli.common import APP_SETTINGS, app, err, pause_collector, program_ends, resume_collector
from xlsx_kpi.cli.render import JsonFiles, JsonLines, batch_json
from xlsx_kpi.errors import XlsxKpiError

__all__ = ["JsonFiles", "JsonLines", "app", "app_for", "batch_json", "main", "program", "run"]

# The commands in the order --help lists them: a round from its set-up to what it leaves behind.
COMMANDS = (
    ("specs", templates.specs_cmd),
    ("template", templates.template_cmd),
    ("build-templates", templates.build_templates_cmd),
    ("check", check.check_cmd),
    ("collect", check.collect_cmd),
    ("history", history.history_cmd),
    ("serve", history.serve_cmd),
    ("report", history.report_cmd),
    ("rules", history.rules_cmd),
)
for _name, _command in COMMANDS:
    app.command(_name)(_command)


def _group() -> None:
    """Nothing: a callback makes a one-command app a group, so `check` is still its command's name."""


def app_for(args: list[str]) -> typer.Typer:
    """The app that runs `args`: for a command name, an app holding only that command; else the whole app.

    Typer makes every registered command's click options before it runs one: ~30 ms for the nine, ~4 ms for one
    (issue 14). Usage, help and errors of a command are the same in both (tests/test_startup_modules.py).
    """
    chosen = [info for info in app.registered_commands if args and info.name == args[0]]
    if not chosen:
        return app
    one = typer.Typer(**APP_SETTINGS, callback=_group)
    one.registered_commands = chosen
    return one


def main(argv: list[str] | None = None) -> int:
    """Entry point: Chinese messages and exit code 2 for every usage or input error, never a traceback.

    Run as the program (no `argv`), the garbage collector is off until the command calls common.work_begins (a
    new command that loops over many files or units must call it too); called with `argv` (the tests, a script),
    the collector is left alone.
    """
    if argv is None:
        pause_collector()
    try:
        return run(sys.argv[1:] if argv is None else argv)
    finally:
        resume_collector()


def program() -> int:
    """The xlsx-kpi command itself (the console script, `python -m xlsx_kpi.cli`): main() run as the program, which
    leaves the objects startup froze frozen when it returns, since the process ends next (common.program_ends)."""
    pause_collector()
    try:
        return run(sys.argv[1:])
    finally:
        program_ends()


def run(args: list[str]) -> int:
    """The command line `args`, run: the exit code."""
    for stream in (sys.stdout, sys.stderr):
        # A file name that is not UTF-8 (GBK bytes from a Windows zip) is held as lone surrogates: printed
        # as \udcxx escapes, which inside a JSON string are valid escapes that decode to the same name.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    try:
        # Without standalone mode, an Exit(code) raised by a command comes back as the return value.
        result = app_for(args)(args=args or ["--help"], standalone_mode=False, prog_name="xlsx-kpi")
        if isinstance(result, int):
            return result
    except XlsxKpiError as e:
        err.print(f"错误：{e.render()}")
        return e.exit_code
    except typer.Abort:
        err.print("已取消")
        return 2
    except typer.Exit as e:
        return int(e.exit_code)
    except Exception as e:
        # Usage errors come from the click layer (vendored in newer typer): recognise them by shape.
        if getattr(e, "exit_code", None) == 2 and hasattr(e, "format_message"):
            name = getattr(e, "option_name", None)
            text = f"没有选项 {name}" if type(e).__name__ == "NoSuchOption" and name else e.format_message()
            err.print(f"参数错误：{text}；运行 xlsx-kpi --help 查看用法")
            return 2
        if type(e).__name__ in ("Exit",) and hasattr(e, "exit_code"):
            return int(e.exit_code)
        raise
    except KeyboardInterrupt:
        err.print("已中断")
        return 130
    return 0
