"""Benchmark `xlsx-kpi template --units`: the whole command, patched batch against the direct XlsxWriter write.

Run:  .venv/bin/python benchmarks/bench_template.py [--n 1000] [--direct-n 100] [--repeat 3] [--kind department]

The units list is not one name repeated: N units with names and project names of varied length (so titles
wrap differently and a batch has several shapes), mixed project types for the project kind, every row unique.
Each measurement is the installed command in a fresh process, output to an empty folder: imports, reading
the list, checking names, writing, moving into place. The comparison is the same command with
XLSX_KPI_DIRECT_TEMPLATES=1, which writes every template with XlsxWriter as before the batch was patched, on
the first --direct-n units of the same list (it takes ~90 ms a template; 1,000 would take minutes a repeat).
The runs are interleaved, repeat by repeat, so a slower moment of a shared machine hits both. Printed: min and
median wall seconds, ms per template (min and median) and CPU seconds of the command and its workers (min).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

PLACES = ["资阳市", "资阳市雁江区", "安岳县", "乐至县", "资阳市临空经济区管理委员会", "四川省资阳市高新技术产业园区"]
BODIES = ["科学技术协会", "农业农村局", "教育和体育局", "卫生健康委员会", "机关事务服务中心", "第一中学", "水务局"]
SUFFIXES = ["", "", "（本级）", "机关", "办公室（党组办公室）"]
PROJECTS = ["专项经费", "高标准农田建设项目", "“科创会”专项经费", "城乡供水一体化工程补助资金", "运行经费"]
TYPES = ["产业发展", "民生保障", "基础设施", "行政运行"]


def units_csv(path: Path, n: int, project: bool) -> None:
    rng = random.Random(14)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["单位名称", "预算单位编码", *(["项目名称", "项目类型"] if project else [])])
        for i in range(n):
            name = f"{rng.choice(PLACES)}{rng.choice(BODIES)}{rng.choice(SUFFIXES)}{i:04d}"
            code = f"{301000 + i:06d}"
            extra = [f"{rng.choice(PROJECTS)}{i}", rng.choice(TYPES)] if project else []
            out.writerow([name, code, *extra])


def run(command: list[str], folder: Path, direct: bool) -> tuple[float, float]:
    """Wall and CPU seconds (the command and its worker processes) of one run into an empty folder."""
    shutil.rmtree(folder, ignore_errors=True)
    env = dict(os.environ)
    env.pop("XLSX_KPI_DIRECT_TEMPLATES", None)
    if direct:
        env["XLSX_KPI_DIRECT_TEMPLATES"] = "1"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([*command, "--out-dir", str(folder)], check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="units in the batch (default 1000)")
    parser.add_argument("--direct-n", type=int, default=100, help="units for the direct write (default 100, 0: skip)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--kind", default="department", choices=["department", "project"])
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("xlsx-kpi")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        units, few = work / "units.csv", work / "few.csv"
        units_csv(units, args.n, args.kind == "project")
        units_csv(few, args.direct_n, args.kind == "project")
        base = [str(exe), "template", "-k", args.kind, "-y", "2024"]
        rows = [(f"patched batch, {args.n} units", [*base, "--units", str(units)], False, args.n)]
        if args.direct_n:
            label = f"direct XlsxWriter, {args.direct_n} units"
            rows.append((label, [*base, "--units", str(few)], True, args.direct_n))
        print(
            f"{date.today()} {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}: template --units, kind {args.kind}"
        )
        runs: dict[str, list[tuple[float, float]]] = {label: [] for label, *_ in rows}
        for _ in range(max(1, args.repeat)):
            for label, command, direct, _ in rows:
                runs[label].append(run(command, work / "out", direct))
        per_template: dict[str, float] = {}
        for label, _, _, n in rows:
            walls = [w for w, _ in runs[label]]
            best, median = min(walls), statistics.median(walls)
            cpu = min(c for _, c in runs[label])
            per_template[label] = median / n * 1000
            print(
                f"{label:34s} {best:7.2f} s (median {median:7.2f} s)  {best / n * 1000:6.1f} ms/template "
                f"(median {median / n * 1000:6.1f})  cpu {cpu:6.1f} s"
            )
        if len(rows) == 2:
            new, old = (per_template[label] for label, *_ in rows)
            print(f"per template, median: {old:.1f} ms direct -> {new:.1f} ms patched ({old / new:.1f}x)")


if __name__ == "__main__":
    main()
