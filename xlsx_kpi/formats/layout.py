"""Turn specs into a cell-by-cell plan shared by the template writer, the reader and recalculation."""

from __future__ import annotations

from xlsx_kpi.errors import SpecError
from xlsx_kpi.formats import expr
from xlsx_kpi.formats.plan import Cell, Identity, WorkbookLayout
from xlsx_kpi.formats.sheet_builder import SheetBuilder
from xlsx_kpi.formats.spec import Catalog, IndicatorsBlock, WorkbookSpec


def build_layout(catalog: Catalog, wb: WorkbookSpec, identity: Identity) -> WorkbookLayout:
    """Lay out every sheet of a workbook kind for one unit (identity) and resolve the names."""
    sheets = [SheetBuilder(s, wb, identity).build() for s in catalog.sheets_of(wb)]
    refs: dict[str, expr.CellRef] = {}
    cells: dict[str, Cell] = {}
    for sl in sheets:
        for cell in sl.cells:
            if cell.key:
                if cell.key in refs:
                    raise SpecError(f"表种 {wb.id}：单元格名 {cell.key!r} 重复")
                refs[cell.key] = expr.CellRef(sl.name, cell.row, cell.col)
                cells[cell.key] = cell
    layout = WorkbookLayout(
        spec=wb,
        identity=identity,
        sheets=sheets,
        refs=refs,
        cells=cells,
        readings=dict(wb.readings),
        groups=[g for sl in sheets for g in sl.groups],
    )
    _add_score_counts(layout)
    for cell in layout.formulas():
        assert cell.expr is not None
    for chk in layout.checks():
        layout.ref(chk.key)
        for name in expr.parse(chk.expr).names():
            layout.ref(name)
    return layout


def check_catalog(catalog: Catalog) -> None:
    """Every formula, self-check and rule reading of every workbook refers to cells that exist."""
    for wb in catalog.workbooks.values():
        layout = build_layout(catalog, wb, Identity(year=2000))
        for sl in layout.sheets:
            for block in sl.spec.blocks:
                if isinstance(block, IndicatorsBlock):
                    for _, _, ind in block.indicators():
                        if ind.rate and ind.rate not in layout.refs:
                            raise SpecError(
                                f"{sl.spec.path}: {block.id}.{ind.id} 的 rate 引用了不存在的单元格名 {ind.rate!r}"
                            )
                        for name, reading in ind.rule.readings.items() if ind.rule else ():
                            for ref in expr.parse(reading.expr).names():
                                if ref not in layout.refs:
                                    raise SpecError(
                                        f"{sl.spec.path}: {block.id}.{ind.id} 的口径 {name} "
                                        f"引用了不存在的单元格名 {ref!r}"
                                    )


def _add_score_counts(layout: WorkbookLayout) -> None:
    """Virtual cells `<block>.filled` / `<block>.count` used by the grade formula.

    They are expanded inline (COUNT over the score cells, and the number of indicators) rather than
    written as cells, so the grade formula stays a single Excel formula.
    """
    for sl in layout.sheets:
        for block in sl.spec.blocks:
            if isinstance(block, IndicatorsBlock):
                scores = [f"{block.id}.{i.id}.score" for _, _, i in block.indicators()] + block.total_includes
                count = str(len(scores))
                free = [g for g in layout.groups if g.key.startswith(f"{block.id}.") and "score" in g.parts]
                if free:
                    # Free rows count once the unit gave them a 分值: spare blank rows do not hold the grade back.
                    scores += [f"{g.base(i)}.score" for g in free for i in range(1, g.count + 1)]
                    maxes = [f"{g.base(i)}.max" for g in free for i in range(1, g.count + 1)]
                    count = f"({count}+COUNT({','.join(maxes)}))"
                for cell in layout.cells.values():
                    if cell.expr and f"{block.id}.filled" in cell.expr:
                        cell.expr = cell.expr.replace(f"{block.id}.filled", f"COUNT({','.join(scores)})")
                        cell.expr = cell.expr.replace(f"{block.id}.count", count)
