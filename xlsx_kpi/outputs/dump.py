"""A text dump of a workbook (cells, styles, validations, merges, comments, protection) for golden tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl


def dump_workbook(path: Path) -> dict[str, Any]:
    """Everything a user sees or relies on, as JSON-ready data; saves stamp times, so never compare bytes."""
    wb = openpyxl.load_workbook(path)
    out: dict[str, Any] = {
        "sheets": wb.sheetnames,
        "lock_structure": bool(wb.security and wb.security.lockStructure),
        "names": {n: d.attr_text for n, d in sorted(wb.defined_names.items())},
    }
    for ws in wb.worksheets:
        cells = {}
        for row in ws.iter_rows():
            for c in row:
                if c.value is None and c.protection.locked and not c.fill.fgColor.rgb.strip("0"):
                    continue
                cells[c.coordinate] = [
                    c.value if not hasattr(c.value, "text") else str(c.value),
                    c.number_format,
                    c.protection.locked,
                    c.fill.fgColor.rgb,
                    c.font.name,
                    c.font.b,
                    c.alignment.wrap_text,
                    c.comment.text if c.comment else None,
                ]
        out[ws.title] = {
            "state": ws.sheet_state,
            "cells": cells,
            "merged": sorted(str(m) for m in ws.merged_cells.ranges),
            "validations": sorted(
                [str(d.sqref), d.type, d.operator, d.formula1, d.formula2, d.prompt, d.error]
                for d in ws.data_validations.dataValidation
            ),
            "conditional": sorted(
                [str(rng.sqref), [r.formula for r in rules]]
                for rng, rules in ws.conditional_formatting._cf_rules.items()
            ),
            "protected": ws.protection.sheet,
            "widths": {k: d.width for k, d in sorted(ws.column_dimensions.items())},
            "heights": {k: d.height for k, d in sorted(ws.row_dimensions.items()) if d.height},
            "print_area": ws.print_area,
            "print_titles": ws.print_title_rows,
        }
    return out
