"""Scale figures of issue 14 that bench_check.py does not give: memory over many files, collect run again, a batch
checked and annotated. Each is the installed `xlsx-kpi` command run as a subprocess (start-up included).

Run:  .venv/bin/python benchmarks/bench_scale.py [--files 10000] [--batch 1000] [--repeat 3] [--keep DIR]
                                                 [--only memory|collect|check]

1. Peak memory of `xlsx-kpi check DIR --json --no-annotate --workers 2` and of the same with `--jsonl`, on --files
   workbooks (target ≤ 200 MB). Two figures, sampled every 50 ms from /proc: the largest single process (its own
   peak, VmHWM: the command or one of its workers) and the peak of the whole process tree's resident memory.
2. `xlsx-kpi collect DIR --workers 2` run again on the unchanged folder of --batch workbooks, its history database
   filled by a first run (target ≤ 3 s; stored files are not read again and the summary workbook is kept), then
   again after one file's modification time changed each time (the summary is written again; nothing is re-read).
3. `xlsx-kpi check DIR --out-dir X --workers 2` on the --batch workbooks, annotated copies written (target ≤ 10 s).

The workbooks are bench_check's variants (4 kinds x 6 units with varied scores and amounts, some with mistakes, and
4 saved again by LibreOffice), each copy made a unit of its own: its unit name, unit code and identity digest are
rewritten in the shared strings and custom properties, so no two files are one unit's (collect keeps one file per
unit, and the cross-workbook rules group by unit). Printed: min and median of the repeats, date and machine.

The command is measured as installed: the package's bytecode is compiled first (pip compiles it at install; a machine
with PYTHONDONTWRITEBYTECODE=1 would otherwise compile our sources again in every run, ~0.16 s).
"""

from __future__ import annotations

import argparse
import compileall
import multiprocessing as mp
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_check import KINDS, UNITS, generate  # noqa: E402

import xlsx_kpi  # noqa: E402
from xlsx_kpi.audit.reader import read_workbook  # noqa: E402
from xlsx_kpi.formats.catalog import load_specs  # noqa: E402
from xlsx_kpi.formats.identity import identity_digest  # noqa: E402

CLI = str(Path(sys.executable).with_name("xlsx-kpi"))
# The parts of a workbook that carry its identity as text: the hidden identity sheet's shared strings (the visible
# 单位名称 cell shares them) and the custom document properties.
IDENTITY_PARTS = ("xl/sharedStrings.xml", "docProps/custom.xml")


def variants(folder: Path) -> list[Path]:
    """One file per bench_check variant (the 24 generated ones and the LibreOffice-saved ones)."""
    made, _ = generate(folder, len(KINDS) * UNITS + len(KINDS), libreoffice=True)
    return made  # N = the number of variants: each once


def replace_text(xml: bytes, old: str, new: str) -> bytes:
    """Replace a whole text: a property value or a shared string, also one LibreOffice split into formatted runs
    ("单位" + "1"), which becomes one plain run; never a part of a longer text."""
    old_b, new_b = old.encode(), new.encode()

    def shared(m: re.Match[bytes]) -> bytes:
        texts = re.findall(rb"<t(?: [^>]*)?>([^<]*)</t>", m.group(1))
        return b"<si><t>" + new_b + b"</t></si>" if b"".join(texts) == old_b else m.group(0)

    xml = re.sub(rb"<si>(.*?)</si>", shared, xml, flags=re.S)
    return re.sub(rb"<vt:lpwstr>" + re.escape(old_b) + rb"</vt:lpwstr>", b"<vt:lpwstr>" + new_b + b"</vt:lpwstr>", xml)


def make_files(folder: Path, sources: list[Path], n: int) -> list[Path]:
    """N workbooks cycling through `sources`, the k-th made unit k (name, code and digest rewritten)."""
    catalog = load_specs()
    loaded = []
    for src in sources:
        meta = read_workbook(src, catalog).meta
        with zipfile.ZipFile(src) as z:
            parts = [(info, z.read(info)) for info in z.infolist()]
        loaded.append((src, meta, parts))
    files = []
    for k in range(n):
        src, meta, parts = loaded[k % len(loaded)]
        own = dict(meta, unit_name=f"{meta['unit_name']}-{k:05d}", unit_code=f"{k:06d}")
        own["identity"] = identity_digest(own)
        dst = folder / f"{k:05d}_{src.stem.split('_', 2)[2]}.xlsx"
        with zipfile.ZipFile(dst, "w") as out:
            for info, data in parts:
                if info.filename in IDENTITY_PARTS:
                    for field in ("unit_name", "unit_code", "identity"):
                        data = replace_text(data, meta[field], own[field])
                out.writestr(info, data)
        files.append(dst)
    # The rewriting is checked on the first file of each variant: it reads as its own unit, untampered.
    for path in files[: len(loaded)]:
        meta = read_workbook(path, catalog).meta
        assert meta["unit_code"] == path.name[:5].rjust(6, "0"), (path, meta["unit_code"])
    return files


def tree_memory_kb(pid: int, hwm: dict[int, int]) -> int:
    """The resident memory (kB) of a process and all its descendants now, from /proc; `hwm` keeps each process's
    own peak (VmHWM) as last seen."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
        fields = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+)", status, re.M))
        total += int(fields.get("VmRSS", 0))
        hwm[p] = max(hwm.get(p, 0), int(fields.get("VmHWM", 0)))
    return total


def run(args: list[str], stdout: Path | None = None) -> tuple[float, float, float, int]:
    """(seconds, largest process MB, process tree peak MB, exit code) of one command, sampled every 50 ms."""
    with open(stdout or os.devnull, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen([CLI, *args], stdout=out, stderr=subprocess.DEVNULL)
        peak, hwm = [0], {}
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], tree_memory_kb(proc.pid, hwm))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    if code not in (0, 1):  # 1: errors found in the workbooks, as the variants have
        raise SystemExit(f"xlsx-kpi {' '.join(args)} failed with exit code {code}")
    return seconds, max(hwm.values(), default=0) / 1024, peak[0] / 1024, code


def line(label: str, runs: list[tuple[float, float, float, int]], target: str) -> str:
    secs = [r[0] for r in runs]
    proc_mb, tree_mb = max(r[1] for r in runs), max(r[2] for r in runs)
    return (
        f"{label:52s} {min(secs):7.2f} s (median {statistics.median(secs):7.2f} s)  "
        f"largest process {proc_mb:5.0f} MB, process tree {tree_mb:5.0f} MB   [{target}]"
    )


def collect_runs(batch: Path, work: Path, n: int, repeat: int) -> list[str]:
    """collect once into a new history database (reference), then again on the unchanged folder."""
    db, summary = work / "history.sqlite", work / "汇总.xlsx"
    db.unlink(missing_ok=True)
    args = ["collect", str(batch), "--db", str(db), "-o", str(summary), "--force", "--workers", "2"]
    rows = [line(f"collect {n} files, first run (reference)", [run(args)], "-")]
    print(rows[-1], flush=True)
    written = summary.stat().st_mtime_ns
    again = [run(args) for _ in range(max(1, repeat))]
    kept = "summary kept" if summary.stat().st_mtime_ns == written else "summary rewritten"
    rows.append(line(f"collect {n} files again, unchanged folder ({kept})", again, "≤ 3 s"))
    print(rows[-1], flush=True)
    # One file saved again unchanged (a new modification time): the summary is written again, nothing re-read.
    touched = []
    for _ in range(max(1, repeat)):
        first = min(batch.glob("*.xlsx"))
        os.utime(first, (time.time(), time.time()))
        touched.append(run(args))
    kept = "summary kept" if summary.stat().st_mtime_ns == written else "summary rewritten"
    rows.append(line(f"collect {n} files again, one file's time changed ({kept})", touched, "-"))
    print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10000, help="workbooks for the memory runs (default 10000)")
    parser.add_argument("--batch", type=int, default=1000, help="workbooks for collect and check+annotate (1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed command (default 3)")
    parser.add_argument("--memory-repeat", type=int, default=1, help="runs of each memory command (default 1)")
    parser.add_argument("--keep", type=Path, help="folder to make the files in once and reuse (default: temporary)")
    parser.add_argument(
        "--only", choices=("memory", "collect", "check"), help="run only the memory runs (1), collect (2) or check (3)"
    )
    args = parser.parse_args()
    parts = {args.only} if args.only else {"memory", "collect", "check"}
    compileall.compile_dir(Path(xlsx_kpi.__file__).parent, quiet=1)  # as installed: bytecode present
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        many, batch = work / f"many-{args.files}", work / f"batch-{args.batch}"
        wanted = [(batch, args.batch)] if "memory" not in parts else [(many, args.files), (batch, args.batch)]
        t0 = time.perf_counter()
        if not all(folder.exists() for folder, _ in wanted):
            shutil.rmtree(work / "variants", ignore_errors=True)
            (work / "variants" / "in").mkdir(parents=True)
            sources = variants(work / "variants" / "in")
            for folder, n in wanted:
                if not folder.exists():
                    (tmp := folder.with_suffix(".tmp")).mkdir()
                    make_files(tmp, sources, n)
                    tmp.rename(folder)
            shutil.rmtree(work / "variants")
        print(
            f"{date.today()} {platform.node()} {platform.machine()} {mp.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}: "
            f"{' + '.join(str(n) for _, n in wanted)} workbooks, each its own unit "
            f"(ready in {time.perf_counter() - t0:.1f} s, {work})"
        )
        out = work / "out"
        rows = []
        for flag in ("--json", "--jsonl") if "memory" in parts else ():
            runs = []
            for _ in range(max(1, args.memory_repeat)):
                runs.append(
                    run(["check", str(many), flag, "--no-annotate", "--workers", "2"], stdout=out.with_suffix(".txt"))
                )
                text = out.with_suffix(".txt").read_text(encoding="utf-8")
                count = text.count('"file":') if flag == "--json" else text.count("\n") - 1
                assert count >= args.files, f"{flag}: {count} file reports for {args.files} files"
            rows.append(line(f"check {args.files} files {flag} --no-annotate, 2 workers", runs, "≤ 200 MB"))
            print(rows[-1], flush=True)

        if "collect" in parts:
            rows += collect_runs(batch, work, args.batch, args.repeat)
        annotated = []
        for _ in range(max(1, args.repeat) if "check" in parts else 0):
            shutil.rmtree(out, ignore_errors=True)
            annotated.append(run(["check", str(batch), "--out-dir", str(out), "--workers", "2"]))
            copies = len(list(out.glob("*.xlsx")))
            assert copies == args.batch, f"{copies} annotated copies for {args.batch} files"
        if annotated:
            rows.append(line(f"check {args.batch} files --out-dir X (annotated), 2 workers", annotated, "≤ 10 s"))
            print(rows[-1], flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
