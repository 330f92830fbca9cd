"""The reviewer's copy `<name>_审核.xlsx` (fills, 批注, a first sheet 审核结果): one entry, `annotate`.

A copy is made in one of two ways, chosen here and nowhere else:

1. patcher.annotate_fast patches the zip: only the parts that change are parsed (ooxml.patch) and
   rewritten, every other member is copied compressed, byte for byte (~20 ms for a filled template).
2. The fallback, when the patcher hands the workbook back: fallback.annotate_openpyxl loads the whole
   workbook with openpyxl (~200 ms, after ooxml.load.check_loadable bounds what it is given), on POSIX
   in a forked child with memory and time limits (outputs.isolation).

Which inputs take the fallback (measured over the corpora for issue 13; see README "代码结构"):
FALLBACK_LIST
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
