"""Startup figures of issue 14: whole `xlsx-kpi` commands (process start to exit) as a user's installed tool runs
them, beside the interpreter's own floor measured in the same run.

Run:  .venv/bin/python benchmarks/bench_startup.py [--n 20] [--keep DIR]

How the tool is installed. A user's `pip install xlsx-kpi` is a regular install: the package's files sit in
site-packages with their bytecode (pip compiles every module when it installs), and the console script imports
them through Python's ordinary path finder. The development checkout is an editable install instead: a meta-path
finder (an extra module imported by site at every start) resolves the package, and where PYTHONDONTWRITEBYTECODE is
set (as on our build machines) every run compiles all of xlsx_kpi again (~0.16 s). `python -m compileall` would fix
only the second difference, so this script makes a throw-away venv and installs the checkout into it with a regular
`pip install --no-deps` (from a copy of the sources, so the checkout gets no build/ folder); the venv reaches the
dependencies through a .pth line naming this venv's site-packages (a plain path line: no .pth file of that folder,
hence no editable finder, is executed). The commands run with PYTHONDONTWRITEBYTECODE unset and their own spec cache
folder (XLSX_KPI_CACHE_DIR), warmed by one run of each command before the counted runs.

What is timed, each as a fresh process, N rounds, the commands interleaved round by round so a slower moment of a
shared machine hits all of them:
- the floor: `python -c pass` (the interpreter and site) and `python -c "import typer"` (the CLI library alone);
- `xlsx-kpi --help`;
- `xlsx-kpi check ONE.xlsx --out-dir X` (each run a new X) and the same with `--json`, on tests/data's
  cn_inserted_lo.xlsx (a 湖南 workbook saved by LibreOffice, with findings: exit code 1).
Printed: date, machine, CPUs, Python, the load average before and after; per command the min and median wall
seconds, the median CPU seconds (user + system, from the kernel's accounting of the finished child) and the median
less the `python -c pass` median.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "cn_inserted_lo.xlsx"
# What a regular install of the checkout needs (pyproject.toml names the packages and the data files).
SOURCES = ("pyproject.toml", "README.md", "xlsx_kpi", "sheets")


def install(venv: Path) -> Path:
    """A throw-away venv with the checkout installed regularly (compiled) into it; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "xlsx_kpi_bench_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    src = venv.parent / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    # pip comes from this venv through the .pth line, the build backend as pyproject.toml asks (an isolated build);
    # --ignore-installed: the editable install seen through the .pth line is left alone.
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", str(src)],
        check=True,
        env=clean_env(None),
    )
    return python


def clean_env(cache: Path | None) -> dict[str, str]:
    """The environment of a user's shell: bytecode writing allowed; the spec cache in `cache` when given."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    if cache is not None:
        env["XLSX_KPI_CACHE_DIR"] = str(cache)
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit code) of one run; output thrown away."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="counted runs of each command (default 20)")
    parser.add_argument("--keep", type=Path, help="make the venv here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        python = install(work / "venv")
        cli = str(python.with_name("xlsx-kpi"))
        installed = time.perf_counter() - t0
        env = clean_env(work / "cache")
        one = work / SAMPLE.name
        shutil.copy2(SAMPLE, one)
        out = work / "out"
        counter = iter(range(10**9))

        def fresh() -> str:
            return str(out / str(next(counter)))

        commands: list[tuple[str, Callable[[], list[str]]]] = [
            ("python -c pass", lambda: [str(python), "-c", "pass"]),
            ('python -c "import typer"', lambda: [str(python), "-c", "import typer"]),
            ("xlsx-kpi --help", lambda: [cli, "--help"]),
            ("xlsx-kpi check ONE.xlsx --out-dir X", lambda: [cli, "check", str(one), "--out-dir", fresh()]),
            (
                "xlsx-kpi check ONE.xlsx --json --out-dir X",
                lambda: [cli, "check", str(one), "--json", "--out-dir", fresh()],
            ),
        ]
        load_before = os.getloadavg()
        runs: dict[str, list[tuple[float, float, int]]] = {label: [] for label, _ in commands}
        for i in range(args.n + 1):  # round 0 warms the page cache and writes the spec cache: not counted
            for label, make in commands:
                result = timed(make(), env, work)
                if i:
                    runs[label].append(result)
        load_after = os.getloadavg()
        print(
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC {platform.node()} {platform.machine()} "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}; regular install made in {installed:.1f} s; "
            f"{args.n} runs each; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
        )
        floor = statistics.median(w for w, _, _ in runs["python -c pass"])
        print(f"{'command':44} {'min s':>7} {'median s':>9} {'CPU s':>7} {'- floor':>8}  exit")
        for label, _ in commands:
            walls = [w for w, _, _ in runs[label]]
            cpus = [c for _, c, _ in runs[label]]
            codes = sorted({c for _, _, c in runs[label]})
            median = statistics.median(walls)
            print(
                f"{label:44} {min(walls):7.3f} {median:9.3f} {statistics.median(cpus):7.3f} "
                f"{median - floor:8.3f}  {','.join(map(str, codes))}"
            )


if __name__ == "__main__":
    main()
