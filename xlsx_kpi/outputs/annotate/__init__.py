"""The reviewer's copy `<name>_审核.xlsx` (fills, 批注, a first sheet 审核结果): one entry, `annotate`.

A copy is made in one of two ways, chosen here and nowhere else:

1. patcher.annotate_fast patches the zip: only the parts that change are parsed (ooxml.patch) and
   rewritten, every other member is copied compressed, byte for byte (~20 ms for a filled template).
2. The fallback, when the patcher hands the workbook back: fallback.annotate_openpyxl loads the whole
   workbook with openpyxl (~200 ms, after ooxml.load.check_loadable bounds what it is given), on POSIX
   in a forked child with memory and time limits (outputs.isolation).

Which inputs take the fallback (measured over the corpora for issue 13; see README "代码结构"):
- a returned annotated copy (it has a 审核结果 sheet), edited and saved by the unit or sent back untouched: the
  earlier round's sheet, 批注 and fills are removed first (fallback.strip_review), which the patcher does not do;
- a flagged sheet that already has the unit's own 批注 (ours go into the same box, after a separator);
- structures the patcher does not place (tests/test_annotate_fast.py, test_structures_left_to_openpyxl): a main
  part other than xl/workbook.xml, a macro or template content type, mc:AlternateContent or a legacyDrawing on a
  flagged sheet, rows without r, a cell style styles.xml lacks, a part not in UTF-8, zip64, no docProps/core.xml,
  a file over 50 MB. (A DTD never gets this far: the reader refuses it.)
Measured on the 68 readable workbooks of the corpora (99 files): all 10 returned copies took the fallback; of
the bad-inputs corpus's 25 readable workbooks, main_part_moved.xlsx did (and cells_bomb.xlsx, which check_loadable
then refuses: no copy); the other 56 (the examples, the LibreOffice-saved fixtures of tests/data, 28 benchmark
workbooks, 23 of the bad inputs) took the patcher. So the fallback stays, as one step inside `annotate`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from xlsx_kpi.audit.report import Report
from xlsx_kpi.outputs.annotate.patcher import annotate_fast
from xlsx_kpi.outputs.isolation import annotate_isolated, can_isolate

__all__ = ["annotate"]


def annotate(
    source: Path,
    report: Report,
    out: Path,
    *,
    force: bool = False,
    fills: Callable[[], Mapping[str, str | None]] | None = None,
    isolate: bool = True,
) -> Path:
    """Write the reviewer's copy of `source` for `report` to `out`; returns `out`.

    `fills()` gives the template's fill of each cell ("附件1!F7" -> RRGGBB or None); it is asked for only
    when the fallback strips an earlier round's review from a returned copy. `isolate`: run the fallback
    in a child process with memory and time limits where os.fork exists.

    Raises XlsxKpiError (the source as output, an existing `out` without `force`, a report with `error`
    set, a workbook openpyxl may not load); nothing half-written is ever left at `out`.
    """
    made = annotate_fast(source, report, out, force=force)
    if made is not None:
        return made
    cell_fills = fills() if fills is not None else None
    if isolate and can_isolate():
        return annotate_isolated(source, report, out, force=force, fills=cell_fills)
    # openpyxl (~0.4 s to import) only for the workbooks the patcher hands back.
    from xlsx_kpi.outputs.annotate.fallback import annotate_openpyxl

    return annotate_openpyxl(source, report, out, force=force, fills=cell_fills)
