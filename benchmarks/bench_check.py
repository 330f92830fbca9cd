"""Benchmark `check`: N filled department workbooks; audit-only and annotated throughput, peak memory, floor.

Run:  .venv/bin/python benchmarks/bench_check.py [--n 1000] [--workers 2]

Prints one line per measurement. The floor is python-calamine reading the same files' three sheets (it cannot
see formulas, so it cannot do our job, but no reader of cell values can be faster). Each measurement runs in
a fresh process so its peak memory (ru_maxrss, including worker processes) is its own. Shared virtual
machines are noisy (the same run varies by up to 50 %), so each measurement is repeated (--repeat, default 3)
and the fastest and the median run are printed; the ratio to the floor compares the fastest runs.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import resource
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from seed_data import DEPT_SCORES, dept_inputs  # noqa: E402

from xlsx_kpi.layout import Identity, build_layout  # noqa: E402
from xlsx_kpi.spec import load_specs  # noqa: E402
from xlsx_kpi.template import write_template  # noqa: E402

VARIANTS = 25  # distinct units generated; the N files cycle through them (generation is not what we measure)


def generate(folder: Path, n: int) -> list[Path]:
    """N filled workbooks: the seed's unit with varied scores and amounts, some with mistakes."""
    catalog = load_specs()
    wb = catalog.workbook("sc-department")
    rng = random.Random(2021)
    variants: list[Path] = []
    for i in range(min(n, VARIANTS)):
        code = f"{156001 + i}"
        ident = Identity(year=2025, unit_name=f"测试单位{i + 1}", unit_code=code)
        inputs = dept_inputs()
        inputs["info.unit_name"], inputs["info.unit_code"] = ident.unit_name, code
        for key, full in DEPT_SCORES.items():
            inputs[f"s.{key}.score"] = Decimal(full) - Decimal(rng.choice([0, 0, 0, 0.5, 1]))
        inputs["exec.basic.budget"] = Decimal(rng.randint(15000, 25000))
        inputs["exec.basic.actual"] = inputs["exec.basic.budget"]
        if i % 5 == 0:
            inputs["s.goal_fit.score"] = Decimal(3)  # above its 分值
        variants.append(write_template(build_layout(catalog, wb, ident), folder / f"v{i}.xlsx", inputs=inputs))
    files = []
    for k in range(n):
        dst = folder / f"2025_{k:05d}_部门整体支出绩效自评.xlsx"
        shutil.copyfile(variants[k % len(variants)], dst)
        files.append(dst)
    for v in variants:
        v.unlink()
    return files


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def measure(kind: str, folder: str, workers: int, out: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    files = sorted(Path(folder).glob("*.xlsx"))
    start = time.perf_counter()
    if kind == "calamine":
        from python_calamine import CalamineWorkbook

        for f in files:
            book = CalamineWorkbook.from_path(str(f))
            for name in ("附件1", "附件2", "基础数据"):
                book.get_sheet_by_name(name).to_python()
    else:
        from xlsx_kpi.audit import Options, check_paths

        catalog = load_specs()
        options = Options(out_dir=Path(out), annotate=kind == "annotate", force=True)
        reports = check_paths(files, catalog, options, workers=workers)
        assert all(r.usable for r in reports), [r.error for r in reports if r.error][:3]
    seconds = time.perf_counter() - start
    queue.put((seconds, peak_mb()))


def run(kind: str, folder: Path, workers: int, out: Path) -> tuple[float, float]:
    queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    proc = mp.get_context("fork").Process(target=measure, args=(kind, str(folder), workers, str(out), queue))
    proc.start()
    result: tuple[float, float] = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="number of workbooks (default 1000)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel runs (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "in", Path(tmp) / "out"
        folder.mkdir()
        out.mkdir()
        t0 = time.perf_counter()
        files = generate(folder, args.n)
        print(f"generated {len(files)} workbooks ({VARIANTS} distinct units) in {time.perf_counter() - t0:.1f} s")
        rows = [
            ("calamine read (floor), 1 process", "calamine", 1),
            ("check, audit only, 1 process", "audit", 1),
            (f"check, audit only, {args.workers} processes", "audit", args.workers),
            (f"check + annotate, {args.workers} processes", "annotate", args.workers),
        ]
        floor = 0.0
        for label, kind, workers in rows:
            runs = sorted(run(kind, folder, workers, out) for _ in range(max(1, args.repeat)))
            best, median = runs[0][0], runs[len(runs) // 2][0]
            mb = max(r[1] for r in runs)
            per = best / len(files) * 1000
            floor = floor or per
            print(
                f"{label:40s} {best:7.2f} s (median {median:6.2f} s)  {per:6.2f} ms/file  "
                f"{per / floor:4.1f}x floor  peak {mb:4.0f} MB"
            )


if __name__ == "__main__":
    main()
