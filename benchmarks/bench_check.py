"""Benchmark `check` against the python-calamine read floor, measured side by side in the same run.

Run:  .venv/bin/python benchmarks/bench_check.py [--n 1000] [--workers 2] [--repeat 3]

The files are not all one layout: filled workbooks of the four shipped kinds (四川部门、四川项目、广州部门、
湖南部门), several units each with varied scores and amounts (some with mistakes), and a subset saved again by
LibreOffice (other XML, shared strings, no cached layout of ours). The N files cycle through these variants, and
each copy's worksheets get a zoom of their own in the sheet view (as a unit's file saved after the unit looked at
it): no two files within 340 of each other share a worksheet part byte for byte, so nothing keyed by a part's bytes
(the annotator's parse memo) is reused the way 28 identical variants would let it. Styles, the workbook part and
the relationships stay as generated, as they do in the returns of one template saved by one program.

The floor is python-calamine reading the same files' sheets (every sheet but the 填表说明 guide; it cannot see
formulas, so it cannot do our job, but no reader of cell values is faster). It is measured in the same process
layout as what it is compared with: one process against `check` in one process, a pool of --workers processes
(same chunking as `check`) against `check` with --workers. Every measurement runs in a fresh forked process so
its peak memory (ru_maxrss, worker processes included) is its own; the measurements are interleaved, repeat
by repeat, so a slower moment of a shared machine hits both sides. Printed: min and median seconds, ms per
file (min), the ratio min/min to the floor of the same layout, the median of the per-repeat ratios, and MB.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from seed_data import (  # noqa: E402
    CN_IDENTITY,
    DEPT_IDENTITY,
    DEPT_SCORES,
    GZ_IDENTITY,
    PROJECT_IDENTITY,
    cn_inputs,
    dept_inputs,
    gz_inputs,
    kechuang_inputs,
)

from xlsx_kpi.formats.catalog import load_specs  # noqa: E402
from xlsx_kpi.formats.expr import Value  # noqa: E402
from xlsx_kpi.formats.identity import GUIDE_SHEET  # noqa: E402
from xlsx_kpi.formats.layout import build_layout  # noqa: E402
from xlsx_kpi.formats.plan import Identity  # noqa: E402
from xlsx_kpi.outputs.template import write_template  # noqa: E402

UNITS = 6  # distinct units per kind
KINDS: list[tuple[str, Identity, Callable[[], dict[str, Value]]]] = [
    ("sc-department", DEPT_IDENTITY, dept_inputs),
    ("sc-project", PROJECT_IDENTITY, kechuang_inputs),
    ("gz-department", GZ_IDENTITY, gz_inputs),
    ("cn-department", CN_IDENTITY, cn_inputs),
]


def generate(folder: Path, n: int, libreoffice: bool) -> tuple[list[Path], int]:
    """N filled workbooks cycling through the variants; (files, how many were saved by LibreOffice)."""
    catalog = load_specs()
    rng = random.Random(2021)
    work = folder.parent / "variants"
    work.mkdir()
    variants: list[Path] = []
    for wid, base, inputs_of in KINDS:
        wb = catalog.workbook(wid)
        for i in range(UNITS):
            code = f"{base.unit_code[:-3]}{i + 1:03d}"
            ident = Identity(
                year=2025,
                unit_name=f"{base.unit_name}{i + 1}",
                unit_code=code,
                project_name=base.project_name,
                project_type=base.project_type,
                approved=base.approved,
            )
            inputs = inputs_of()
            for key, value in (("info.unit_name", ident.unit_name), ("info.unit_code", code)):
                if key in inputs:
                    inputs[key] = value
            if wid == "sc-department":
                for key, full in DEPT_SCORES.items():
                    inputs[f"s.{key}.score"] = Decimal(full) - Decimal(rng.choice([0, 0, 0, 0.5, 1]))
                if i % 3 == 0:
                    inputs["s.goal_fit.score"] = Decimal(3)  # above its 分值
            variants.append(write_template(build_layout(catalog, wb, ident), work / f"{wid}-{i}.xlsx", inputs=inputs))
    saved = 0
    if libreoffice and shutil.which("soffice"):
        # One unit of each kind saved again by LibreOffice: one soffice call for all four files.
        originals = [work / f"{wid}-0.xlsx" for wid, _, _ in KINDS]
        lo = work / "lo"
        subprocess.run(
            ["soffice", "--headless", "--convert-to", "xlsx", "--outdir", str(lo), *map(str, originals)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        lo_files = sorted(lo.glob("*.xlsx"))
        variants += lo_files
        saved = len(lo_files)
    files = []
    lo_count = 0
    for k in range(n):
        src = variants[k % len(variants)]
        lo_count += src.parent.name == "lo"
        dst = folder / f"2025_{k:05d}_{src.stem}.xlsx"
        copy_own_views(src, dst, k)
        files.append(dst)
    shutil.rmtree(work)
    return files, lo_count if saved else 0


def own_view(xml: bytes, k: int) -> bytes:
    """A worksheet part with the k-th file's own zoom (60-399 %) in its first sheet view."""
    zoom = b"%d" % (60 + k % 340)
    if re.search(rb"<sheetView\b[^>]*\bzoomScale=\"", xml):
        return re.sub(rb"(<sheetView\b[^>]*\bzoomScale=\")\d+", rb"\g<1>" + zoom, xml, count=1)
    return re.sub(rb"<sheetView\b", b'<sheetView zoomScale="' + zoom + b'"', xml, count=1)


def copy_own_views(src: Path, dst: Path, k: int) -> None:
    """Copy the workbook src to dst, each worksheet with the k-th file's own view (own_view)."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename.startswith("xl/worksheets/sheet"):
                data = own_view(data, k)
            out.writestr(info, data)


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def calamine_read(path: Path) -> int:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    return sum(len(book.get_sheet_by_name(s).to_python()) for s in book.sheet_names if s != GUIDE_SHEET)


def measure(kind: str, folder: str, workers: int, out: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    files = sorted(Path(folder).glob("*.xlsx"))
    if kind == "calamine":
        import python_calamine  # noqa: F401 - imported before the clock starts, as xlsx_kpi is below
    else:
        from xlsx_kpi.batch.check import Options, check_paths

        catalog = load_specs()
    start = time.perf_counter()
    if kind == "calamine":
        if workers <= 1:
            for f in files:
                calamine_read(f)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                list(pool.map(calamine_read, files, chunksize=8))  # check's chunking (audit._map)
    else:
        options = Options(out_dir=Path(out), annotate=kind == "annotate", force=True)
        reports = check_paths(files, catalog, options, workers=workers, keep_findings=False)
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
    parser.add_argument("--no-libreoffice", action="store_true", help="leave out the LibreOffice-saved subset")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "in", Path(tmp) / "out"
        folder.mkdir()
        out.mkdir()
        t0 = time.perf_counter()
        files, lo = generate(folder, args.n, not args.no_libreoffice)
        print(
            f"{date.today()} {platform.node()} {platform.machine()} {mp.cpu_count()} CPUs, Python "
            f"{platform.python_version()}: {len(files)} workbooks ({len(KINDS)} kinds x {UNITS} units, "
            f"{lo} saved by LibreOffice) generated in {time.perf_counter() - t0:.1f} s"
        )
        w = args.workers
        rows = [
            ("calamine read (floor), 1 process", "calamine", 1, ""),
            ("check, audit only, 1 process", "audit", 1, "calamine read (floor), 1 process"),
            (f"calamine read (floor), {w} processes", "calamine", w, ""),
            (f"check, audit only, {w} processes", "audit", w, f"calamine read (floor), {w} processes"),
            (f"check + annotate, {w} processes", "annotate", w, f"calamine read (floor), {w} processes"),
        ]
        runs: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _, _ in rows}
        for _ in range(max(1, args.repeat)):
            for label, kind, workers, _ in rows:
                runs[label].append(run(kind, folder, workers, out))
        for label, _, _, floor_label in rows:
            secs = [s for s, _ in runs[label]]
            best, median = min(secs), statistics.median(secs)
            mb = max(m for _, m in runs[label])
            per = best / len(files) * 1000
            ratio = ""
            if floor_label:
                floor = [s for s, _ in runs[floor_label]]
                paired = statistics.median(a / b for a, b in zip(secs, floor, strict=True))
                ratio = f"{best / min(floor):4.1f}x floor (paired median {paired:4.1f}x)"
            print(
                f"{label:40s} {best:7.2f} s (median {median:6.2f} s)  {per:6.2f} ms/file  {ratio:37s} peak {mb:4.0f} MB"
            )


if __name__ == "__main__":
    main()
