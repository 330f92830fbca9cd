"""Place the blocks of one sheet spec row by row: labels, inputs, formulas and self-checks (SheetBuilder)."""

from __future__ import annotations

from decimal import Decimal

from xlsx_kpi.errors import SpecError
from xlsx_kpi.formats.plan import Cell, Check, Identity, RowGroup, SheetLayout
from xlsx_kpi.formats.spec import (
    ChoiceBlock,
    FieldsBlock,
    GridBlock,
    GridColumn,
    GridRow,
    Indicator,
    IndicatorsBlock,
    InputsBlock,
    InputType,
    Level1,
    Level2,
    SheetSpec,
    TargetsBlock,
    TextBlock,
    WorkbookSpec,
    col_index,
    span,
)
from xlsx_kpi.formats.widths import text_lines

__all__ = ["MAX_FORMULA", "SheetBuilder", "aliases", "grade_source"]

# Excel limits the sheet-wide formula length; the self-check counter must stay under it.
MAX_FORMULA = 8000


class SheetBuilder:
    """Places the blocks of one sheet spec row by row."""

    def __init__(self, spec: SheetSpec, wb: WorkbookSpec, identity: Identity) -> None:
        self.spec = spec
        self.wb = wb
        self.identity = identity
        self.layout = SheetLayout(spec=spec, name=spec.sheet)
        self.row = 0
        self.widths = {col_index(c.col): c.width for c in spec.columns}
        self.last_print = spec.print_last_col

    # -- primitives -------------------------------------------------------------------------
    def add(self, cell: Cell) -> Cell:
        self.layout.cells.append(cell)
        return cell

    def label(
        self, row: int, cols: str | tuple[int, int], text: str, style: str = "label", last_row: int | None = None
    ) -> Cell:
        first, last = span(cols) if isinstance(cols, str) else cols
        return self.add(
            Cell(row, first, "label", style, text=text, last_row=last_row, last_col=last if last != first else None)
        )

    def input(
        self,
        row: int,
        cols: str | tuple[int, int],
        key: str,
        kind: InputType,
        label: str,
        text: str | None = None,
        last_row: int | None = None,
        **kw: object,
    ) -> Cell:
        first, last = span(cols) if isinstance(cols, str) else cols
        cell = Cell(
            row,
            first,
            "input",
            f"in_{kind}",
            text=text,
            key=key,
            input_type=kind,
            label=label,
            last_row=last_row,
            last_col=last if last != first else None,
        )
        for k, v in kw.items():
            setattr(cell, k, v)
        self.add(cell)
        self.default_checks(cell)
        return cell

    def formula(
        self,
        row: int,
        cols: str | tuple[int, int],
        key: str,
        source: str,
        style: str,
        label: str,
        last_row: int | None = None,
    ) -> Cell:
        first, last = span(cols) if isinstance(cols, str) else cols
        return self.add(
            Cell(
                row,
                first,
                "formula",
                style,
                key=key,
                expr=source,
                label=label,
                last_row=last_row,
                last_col=last if last != first else None,
            )
        )

    def check(self, key: str, source: str, message: str) -> None:
        self.layout.checks.append(Check(key, source, message))

    def default_checks(self, cell: Cell) -> None:
        """Range checks every typed input gets, shown red by the template as soon as they fail."""
        k = cell.key
        assert k is not None
        if cell.input_type == "score":
            low = cell.min if cell.min is not None else 0
            self.check(
                k,
                f'IF({k}="",FALSE,OR(NOT(ISNUMBER({k})),{k}<{low},{k}>{cell.max}))',
                f"{cell.label}须为{low}至{cell.max}之间的数字",
            )
        elif cell.input_type in ("amount", "count"):
            self.check(k, f'IF({k}="",FALSE,OR(NOT(ISNUMBER({k})),{k}<0))', f"{cell.label}须为不小于0的数字")
        elif cell.input_type == "percent":
            self.check(
                k, f'IF({k}="",FALSE,OR(NOT(ISNUMBER({k})),{k}<0,{k}>1))', f"{cell.label}须为0%至100%之间的百分数"
            )

    # -- banner ------------------------------------------------------------------------------
    def banner(self) -> None:
        spec = self.spec
        if spec.attachment:
            self.label(0, (0, 1), spec.attachment, "attachment")
        status_col = spec.aux_first_col
        if status_col is None:
            raise SpecError(f"{spec.path}: 至少需要两列不打印的辅助列（print: false）存放自检状态")
        self.formula(0, (status_col, status_col), f"{spec.key}.status", "", "status", "自检状态")
        self.formula(0, (status_col + 1, status_col + 1), f"{spec.key}.problems", "0", "aux_number", "自检问题数")
        self.row = 1
        title = self.fill(spec.title)
        self.label(self.row, (0, self.last_print), title, "title")
        self.layout.row_heights[self.row] = 32
        self.row += 1
        if spec.subtitle:
            self.label(self.row, (0, self.last_print), self.fill(spec.subtitle), "subtitle")
            self.layout.row_heights[self.row] = 20
            self.row += 1

    def fill(self, text: str) -> str:
        ident = self.identity
        project = ident.project_name or "项目名称"
        return text.format(year=ident.year, unit=ident.unit_name, code=ident.unit_code, project=project)

    # -- blocks ------------------------------------------------------------------------------
    def fields(self, block: FieldsBlock) -> None:
        for items in block.rows:
            for item in items:
                cols = span(item.cols)
                if item.grade_of:
                    key = f"{item.grade_of}.grade"
                    cell = self.formula(self.row, cols, key, grade_source(self.wb, item.grade_of), "grade", "自评等级")
                elif item.key and item.input:
                    text = self.identity.get(item.identity) if item.identity else None
                    cell = self.input(
                        self.row, cols, f"{block.id}.{item.key}", item.input, item.text or item.key, text=text or None
                    )
                elif item.key and item.expr:
                    cell = self.formula(
                        self.row, cols, f"{block.id}.{item.key}", item.expr, f"info_{item.align}", item.key
                    )
                else:
                    cell = self.label(
                        self.row, cols, item.text or "", "header" if item.align == "center" else f"info_{item.align}"
                    )
                if item.height:
                    cell.min_height = item.height
            self.row += 1

    def printed(self, cols: tuple[int, int]) -> bool:
        return cols[0] <= self.last_print

    def header_cells(self, parts: dict[str, tuple[int, int]], headers: dict[str, str]) -> None:
        """One header row: the printed parts in the table's style, the helper columns in grey."""
        for name, cols in parts.items():
            self.label(self.row, cols, headers.get(name, ""), "header" if self.printed(cols) else "aux_header")

    def points_cell(self, row: int, cols: tuple[int, int], key: str, value: Decimal, label: str, last_row: int) -> None:
        """A 分值 printed in the table or kept in a helper column; named, so formulas and rules can read it."""
        self.add(
            Cell(
                row,
                cols[0],
                "constant",
                "number" if self.printed(cols) else "aux_number",
                value=value,
                key=key,
                label=label,
                last_row=last_row if last_row > row else None,
                last_col=cols[1] if cols[1] != cols[0] else None,
            )
        )

    def indicators(self, block: IndicatorsBlock) -> None:
        top = {name: span(c) for name, c in block.columns.as_dict().items() if c is not None}
        header_row = self.row
        self.header_cells(top, block.headers)
        self.layout.repeat_rows = (header_row, header_row)
        self.row += 1
        score_keys: list[str] = []
        for l1 in block.groups:
            cols = block.columns_of(l1)
            if l1.headers is not None:
                self.header_cells(cols, {**block.headers, **l1.headers})
                self.row += 1
            l1_first = self.row
            l1_scores: list[str] = []
            for l2 in l1.groups:
                l2_first = self.row
                l2_scores: list[str] = []
                for ind in l2.indicators:
                    self.indicator_row(block, cols, ind)
                    l2_scores.append(f"{block.id}.{ind.id}.score")
                    self.row += 1
                if l2.rows is not None:
                    l2_scores += self.free_rows(block, cols, l1, l2)
                last = self.row - 1
                if "level2" in cols:
                    style = "group_label" if l2.rows is not None else "label_center"
                    self.label(l2_first, cols["level2"], l2.name, style, last_row=last if last > l2_first else None)
                if "level2_points" in cols:
                    key = f"{block.id}.l2.{l2.id}.max"
                    self.points_cell(l2_first, cols["level2_points"], key, l2.points, f"{l2.name}分值", last)
                if "l2_total" in cols:
                    self.formula(
                        l2_first,
                        cols["l2_total"],
                        f"{block.id}.l2.{l2.id}",
                        f"SUM({','.join(l2_scores)})",
                        "aux_score",
                        f"{l2.name}得分",
                        last_row=last if last > l2_first else None,
                    )
                l1_scores += l2_scores
            last = self.row - 1
            if "level1" in cols:
                free = any(l2.rows is not None for l2 in l1.groups)
                self.label(l1_first, cols["level1"], l1.name, "group_label" if free else "label_center", last_row=last)
            if "level1_points" in cols:
                key = f"{block.id}.l1.{l1.id}.max"
                self.points_cell(l1_first, cols["level1_points"], key, l1.points, f"{l1.name}分值", last)
            if "l1_total" in cols:
                self.formula(
                    l1_first,
                    cols["l1_total"],
                    f"{block.id}.l1.{l1.id}",
                    f"SUM({','.join(l1_scores)})",
                    "aux_score",
                    f"{l1.name}得分",
                    last_row=last,
                )
            score_keys += l1_scores
        if block.section:
            if not block.section_cols:
                raise SpecError(f"{self.spec.path}: 指标表 {block.id} 有 section 时须写 section_cols")
            free = any(l2.rows is not None for l1 in block.groups for l2 in l1.groups)
            style = "group_section" if free else "section"
            self.label(header_row, block.section_cols, block.section, style, last_row=self.row - 1)
        self.total_row(block, top, score_keys)

    def free_rows(self, block: IndicatorsBlock, cols: dict[str, tuple[int, int]], l1: Level1, l2: Level2) -> list[str]:
        """Rows whose 三级指标, 年度指标值, 实际完成值, 分值 and 得分 the unit types; returns the score keys."""
        group = f"{block.id}.{l2.id}"
        for part in ("target", "actual", "max", "basis"):
            if part not in cols:
                raise SpecError(f"{self.spec.path}: {group} 是空行指标组，指标表须有 {part} 列")
        count = self.identity.row_count(group, l2.rows or 1)
        approved = self.identity.approved_in(group)
        # A 二级指标 cell naming several kinds (数量指标\n质量指标…) is called after its 一级指标 in messages.
        short = l1.name.split("\n")[0] if "\n" in l2.name else l2.name
        scores: list[str] = []
        maxes: list[str] = []
        for i in range(1, count + 1):
            r = self.row
            base = f"{group}.{i}"
            what = f"{short}第{i}行"
            fixed = approved[i - 1] if i <= len(approved) else None
            self.row_text(cols["level3"], f"{base}.name", f"{what}三级指标", fixed.name if fixed else None)
            self.row_text(cols["target"], f"{base}.target", f"{what}年度指标值", fixed.target if fixed else None)
            self.input(r, cols["actual"], f"{base}.result", "longtext", f"{what}实际完成值")
            self.input(r, cols["max"], f"{base}.max", "score", f"{what}分值", max=l2.points)
            self.input(r, cols["score"], f"{base}.score", "score", f"{what}得分", max=l2.points)
            self.input(r, cols["basis"], f"{base}.deviation", "longtext", f"{what}偏差原因分析及改进措施")
            if "ref" in cols:
                self.label(r, cols["ref"], "", "aux_score")
            if "reading" in cols:
                self.label(r, cols["reading"], "", "aux_text")
            score, mx = f"{base}.score", f"{base}.max"
            self.check(
                score,
                f"IF(OR(ISNUMBER({score})=FALSE,ISNUMBER({mx})=FALSE),FALSE,{score}>{mx})",
                f"{what}得分不得超过本行分值",
            )
            scores.append(score)
            maxes.append(mx)
            self.row += 1
        first_max = maxes[0]
        self.check(
            first_max,
            f"IF(COUNT({','.join(maxes)})=0,FALSE,ROUND(SUM({','.join(maxes)})-{l2.points},2)<>0)",
            f"{short}各行分值之和应为{l2.points}分",
        )
        self.layout.groups.append(
            RowGroup(
                group,
                short,
                self.spec.sheet,
                count,
                ("name", "target", "result", "max", "score", "deviation"),
                (*aliases(l2.id, l2.name), *aliases(l1.id, l1.name.split("\n")[0])[1:]),
            )
        )
        return scores

    def indicator_row(self, block: IndicatorsBlock, cols: dict[str, tuple[int, int]], ind: Indicator) -> None:
        r = self.row
        base = f"{block.id}.{ind.id}"
        where = f"{self.spec.path}: {base}"
        self.label(r, cols["level3"], ind.name, "label_center")
        if "explanation" in cols:
            self.label(r, cols["explanation"], ind.explanation, "text")
        if "standard" in cols:
            self.label(r, cols["standard"], ind.standard, "text")
        if ind.target and "target" not in cols:
            raise SpecError(f"{where} 有 target（年度指标值），但指标表没有 target 列")
        if ind.measure and "actual" not in cols:
            raise SpecError(f"{where} 有 measure，但指标表没有 actual（实际完成值）列")
        if "target" in cols:
            first, last = cols["target"]
            self.add(
                Cell(
                    r,
                    first,
                    "constant",
                    "text",
                    text=ind.target,
                    key=f"{base}.target",
                    label=f"{ind.name}年度指标值",
                    last_col=last if last != first else None,
                )
            )
        if "actual" in cols:
            self.input(r, cols["actual"], f"{base}.actual", "longtext", f"{ind.name}实际完成值")
        low = ind.min_score if ind.min_score != 0 else None
        self.input(r, cols["score"], f"{base}.score", "score", f"{ind.name}自评分数", max=ind.points, min=low)
        if "basis" in cols:
            self.input(r, cols["basis"], f"{base}.basis", "longtext", f"{ind.name}自评依据", min_height=30)
        if "remark" in cols:
            self.input(r, cols["remark"], f"{base}.remark", "longtext", f"{ind.name}备注")
        if "max" in cols:
            first, last = cols["max"]
            self.add(
                Cell(
                    r,
                    first,
                    "constant",
                    "number" if self.printed(cols["max"]) else "aux_number",
                    value=ind.points,
                    key=f"{base}.max",
                    label=f"{ind.name}分值",
                    last_col=last if last != first else None,
                )
            )
        elif ind.rule:
            raise SpecError(f"{where} 有计分规则，但指标表没有 max（分值）列")
        if ind.rule:
            if "ref" not in cols:
                raise SpecError(f"{where} 有计分规则，但指标表没有 ref（参考得分）列")
            reading = self.wb.readings.get(base, ind.rule.default)
            if reading not in ind.rule.readings:
                raise SpecError(
                    f"{self.wb.path}: readings 中 {base} 的口径 {reading!r} 不存在，可选 {'、'.join(ind.rule.readings)}"
                )
            chosen = ind.rule.readings[reading]
            self.formula(r, cols["ref"], f"{base}.ref", chosen.expr, "aux_score", f"{ind.name}参考得分")
            text = chosen.label
            others = [ind.rule.name_of(k) for k in ind.rule.readings if k != reading]
            if others:
                text += f"\n（另有读法：{'、'.join(others)}）"
            if "reading" in cols:
                self.label(r, cols["reading"], text, "aux_text")
        else:
            if "ref" in cols:
                self.label(r, cols["ref"], "", "aux_score")
            if "reading" in cols:
                self.label(r, cols["reading"], "定性指标，由评价人按计分标准判断", "aux_text")
        if "note" in cols:
            self.input(r, cols["note"], f"{base}.note", "longtext", f"{ind.name}差异说明", style="aux_in_text")

    def total_row(self, block: IndicatorsBlock, cols: dict[str, tuple[int, int]], score_keys: list[str]) -> None:
        """合计/总分: the sum of every score (and of `total_includes`), with the 分值 total beside it."""
        r = self.row
        extra_points = Decimal(0)
        for key in block.total_includes:
            found = [c for c in self.layout.cells if c.key == key]
            if not found or found[0].input_type != "score" or found[0].max is None:
                raise SpecError(f"{self.spec.path}: total_includes 中的 {key!r} 须是本表前面已有的自评分数单元格")
            extra_points += found[0].max
        score = cols["score"]
        points = cols.get("level1_points") or cols.get("max")
        left = min(c[0] for c in cols.values())
        if block.section_cols:
            left = min(left, span(block.section_cols)[0])
        stop = points[0] if points and self.printed(points) and points[0] < score[0] else score[0]
        self.label(r, (left, stop - 1), block.total_label, "header")
        if points and self.printed(points) and points[1] + 1 < score[0]:
            self.label(r, (points[1] + 1, score[0] - 1), "", "label")
        self.formula(
            r, score, f"{block.id}.total", f"SUM({','.join(score_keys + block.total_includes)})", "score_total", "合计"
        )
        if score[1] < self.last_print:
            self.label(r, (score[1] + 1, self.last_print), "", "label")
        if points:
            total_points = sum((i.points for _, _, i in block.indicators()), extra_points)
            free = [l2.points for l1 in block.groups for l2 in l1.groups if l2.rows is not None]
            total_points += sum(free, Decimal(0))
            self.points_cell(r, points, f"{block.id}.total_max", total_points, "分值合计", r)
        self.layout.row_heights[r] = 24
        self.row += 1

    def grid(self, block: GridBlock) -> None:
        first = self.row
        grouped = any(gc.group for gc in block.columns)
        last_header = first + 1 if grouped else first
        self.label(first, block.corner_cols, block.corner, "header", last_row=last_header if grouped else None)
        i = 0
        while i < len(block.columns):
            gc = block.columns[i]
            style = "header" if self.printed(span(gc.cols)) else "aux_header"
            if gc.group is None:
                self.label(first, gc.cols, gc.header, style, last_row=last_header if grouped else None)
                i += 1
                continue
            # A run of columns under one group header.
            j = i
            while j + 1 < len(block.columns) and block.columns[j + 1].group == gc.group:
                j += 1
            self.label(first, (span(gc.cols)[0], span(block.columns[j].cols)[1]), gc.group, style)
            for member in block.columns[i : j + 1]:
                self.label(last_header, member.cols, member.header, style)
            i = j + 1
        if block.note_cols:
            self.label(
                first, block.note_cols, block.note_header, "aux_header", last_row=last_header if grouped else None
            )
        self.row = last_header + 1
        for gr in block.rows:
            self.label(self.row, block.corner_cols, gr.label, "header")
            if block.note_cols:
                self.input(
                    self.row,
                    block.note_cols,
                    f"{block.id}.{gr.id}.note",
                    "longtext",
                    f"{block.section}·{gr.label}{block.note_header.split('（')[0]}".replace("\n", ""),
                    style="aux_in_text",
                )
            for gc in block.columns:
                self.grid_cell(block, gr, gc)
            self.row += 1
        self.label(first, block.section_cols, block.section, "section", last_row=self.row - 1)

    def grid_cell(self, block: GridBlock, gr: GridRow, gc: GridColumn) -> None:
        key = f"{block.id}.{gr.id}.{gc.id}"
        cols = span(gc.cols)
        printed = self.printed(cols)
        label = f"{block.section}·{gr.label}·{gc.header}".replace("\n", "")
        if gr.id in gc.values:
            value = gc.values[gr.id]
            if isinstance(value, Decimal):
                self.points_cell(self.row, cols, key, value, label, self.row)
            else:
                self.label(self.row, cols, value, "label_center" if printed else "aux_text")
            return
        col_f = gc.formula if gc.formula and (gc.rows is None or gr.id in gc.rows) else None
        row_f = gr.formula if gr.formula and (gr.cols is None or gc.id in gr.cols) else None
        if col_f and row_f:
            raise SpecError(f"{self.spec.path}: {key} 同时有行公式和列公式，请用 rows/cols 限定范围")
        fmt = gr.format or gc.format or ("percent" if (gc.input or gr.input) == "percent" else "amount")
        if col_f or row_f:
            source = (col_f or row_f or "").replace("{row}", gr.id).replace("{col}", gc.id)
            style = f"f_{fmt}" if printed or fmt != "score" else "aux_score"
            self.formula(self.row, cols, key, source, style, label)
            if fmt == "amount":
                self.sum_check(key, source, label)
            return
        kind = gc.input or gr.input or block.input
        bound: Decimal | None = None
        if isinstance(gc.max, Decimal):
            bound = gc.max
        elif isinstance(gc.max, str):
            ref = next((c for c in self.layout.cells if c.key == f"{block.id}.{gr.id}.{gc.max}"), None)
            if ref is None or ref.value is None:
                raise SpecError(f"{self.spec.path}: {key} 的 max 应指向同一行中数值固定的列 {gc.max!r}")
            bound = ref.value
        if kind == "score" and bound is None:
            raise SpecError(f"{self.spec.path}: {key} 是自评分数，须在列中写 max")
        self.input(self.row, cols, key, kind, label, max=bound)

    def sum_check(self, key: str, source: str, label: str) -> None:
        """A total pasted over its formula no longer equals its parts: flag it red."""
        self.check(
            key,
            f'IF(ISNUMBER({key}),ROUND({key}-({source}),6)<>0,{key}<>"")',
            f"{label}应等于各组成部分之和（公式可能被覆盖）",
        )

    def text(self, block: TextBlock) -> None:
        first = self.row
        for f in block.fields:
            self.label(first, f.cols, f.header, "header")
        self.row += 1
        for f in block.fields:
            self.input(self.row, f.cols, f"{block.id}.{f.id}", "longtext", f.header)
        self.layout.row_heights[self.row] = block.height
        self.row += 1
        self.label(first, block.section_cols, block.section, "section", last_row=self.row - 1)

    def targets(self, block: TargetsBlock) -> None:
        c = block.columns
        cols = {name: span(value) for name, value in c.as_dict().items()}
        first = self.row
        for name, cc in cols.items():
            self.label(first, cc, block.headers.get(name, ""), "header")
        self.row += 1
        for l1 in block.groups:
            l1_first = self.row
            for g in l1.groups:
                g_first = self.row
                group = f"{block.id}.{g.id}"
                count = self.identity.row_count(group, g.rows)
                approved = self.identity.approved_in(group)
                for i in range(1, count + 1):
                    base = f"{group}.{i}"
                    what = f"{g.name}第{i}行"
                    fixed = approved[i - 1] if i <= len(approved) else None
                    self.row_text(cols["name"], f"{base}.name", f"{what}三级指标", fixed.name if fixed else None)
                    self.row_text(
                        cols["target"], f"{base}.target", f"{what}预算指标值", fixed.target if fixed else None
                    )
                    self.input(self.row, cols["result"], f"{base}.result", "text", f"{what}执行结果")
                    self.input(self.row, cols["deviation"], f"{base}.deviation", "text", f"{what}偏差原因")
                    self.layout.row_heights[self.row] = 20
                    self.row += 1
                last = self.row - 1
                self.label(g_first, cols["level2"], g.name, "group_label", last_row=last if last > g_first else None)
                self.layout.groups.append(
                    RowGroup(
                        group,
                        g.name,
                        self.spec.sheet,
                        count,
                        ("name", "target", "result", "deviation"),
                        aliases(g.id, g.name),
                    )
                )
            last = self.row - 1
            self.label(l1_first, cols["level1"], l1.name, "group_label", last_row=last if last > l1_first else None)
        self.label(first, block.section_cols, block.section, "group_section", last_row=self.row - 1)

    def row_text(self, cols: tuple[int, int], key: str, label: str, approved: str | None) -> None:
        """A typed text of an indicator row; an approved 三级指标 or 预算指标值 is prefilled and locked."""
        if approved is None:
            self.input(self.row, cols, key, "text", label)
        else:
            self.input(self.row, cols, key, "text", label, text=approved, style="approved")

    def choice(self, block: ChoiceBlock) -> None:
        first = self.row
        chosen = self.identity.get(block.identity) if block.identity else ""
        keys = []
        for i, opt in enumerate(block.options, start=1):
            self.label(first, opt.cols, opt.text, "header")
            key = f"{block.id}.{i}"
            keys.append(key)
            self.input(
                first + 1,
                opt.cols,
                key,
                "tick",
                f"项目类型“{opt.text}”",
                text=block.mark if opt.text == chosen else None,
                options=[block.mark],
            )
        self.label(first, block.label_cols, block.label, "header", last_row=first + 1)
        count = "+".join(f'IF({k}="{block.mark}",1,0)' for k in keys)
        self.check(keys[0], f"({count})<>1", f"{block.label}须且只能勾选一项（{block.mark}）")
        self.row += 2

    def inputs(self, block: InputsBlock) -> None:
        c = block.columns
        cols = {name: span(value) for name, value in c.as_dict().items()}
        for name, cc in cols.items():
            self.label(self.row, cc, block.headers.get(name, ""), "header")
        self.layout.repeat_rows = (self.row, self.row)
        self.row += 1
        for n, item in enumerate(block.items, start=1):
            key = f"{block.id}.{item.id}"
            self.add(Cell(self.row, cols["seq"][0], "constant", "label_center", value=Decimal(n)))
            self.label(self.row, cols["label"], item.label, "text")
            if item.expr:
                fmt = item.format or "amount"
                self.formula(self.row, cols["value"], key, item.expr, f"f_{fmt}", item.label)
                if fmt == "amount":
                    self.sum_check(key, item.expr, item.label)
            elif item.input:
                self.input(self.row, cols["value"], key, item.input, item.label, options=item.options, max=item.max)
            else:
                raise SpecError(f"{self.spec.path}: 基础数据 {item.id} 须有 input 或 expr")
            self.label(self.row, cols["unit"], item.unit, "label_center")
            self.label(self.row, cols["used_by"], item.used_by, "text")
            self.row += 1

    # -- finish ------------------------------------------------------------------------------
    def build(self) -> SheetLayout:
        self.banner()
        for block in self.spec.blocks:
            getattr(self, block.type)(block)
        for chk in self.spec.checks:
            self.check(chk.cell, chk.expr, chk.message)
        self.layout.last_row = self.row - 1
        self.status()
        self.heights()
        return self.layout

    def status(self) -> None:
        """A counter sums the failing self-checks; the status cell says 自检通过 or how many problems."""
        key = self.spec.key
        for cell in self.layout.cells:
            if cell.key == f"{key}.problems":
                parts = [f"IF({c.expr},1,0)" for c in self.layout.checks]
                cell.expr = "+".join(parts) if parts else "0"
                if len(cell.expr) > MAX_FORMULA:
                    raise SpecError(f"{self.spec.path}: 自检公式过长（{len(cell.expr)} 字符），请减少检查项")
            elif cell.key == f"{key}.status":
                cell.expr = f'IF({key}.problems=0,"✔ 自检通过","✘ 自检发现"&{key}.problems&"处问题，请修改标红单元格")'

    def heights(self) -> None:
        need: dict[int, float] = {}
        for cell in self.layout.cells:
            text = cell.text or ""
            width = sum(self.widths.get(c, 8.43) for c in range(cell.col, cell.right + 1))
            rows = cell.bottom - cell.row + 1
            size = 9 if cell.style.startswith("aux") else 10
            lines = text_lines(text, width * 10 / size) if text else 1
            h = max(lines * 13.5 + 5, cell.min_height)
            per_row = h / rows
            for r in range(cell.row, cell.bottom + 1):
                need[r] = max(need.get(r, 15.0), per_row)
        for r, h in need.items():
            self.layout.row_heights[r] = max(self.layout.row_heights.get(r, 0), round(h, 1))


def aliases(gid: str, name: str) -> tuple[str, ...]:
    """A group's id, each line of its printed name, and each line without its 指标 suffix."""
    lines = [line.strip() for line in name.split("\n") if line.strip()]
    return tuple(dict.fromkeys([gid, *lines, *(line.removesuffix("指标") for line in lines)]))


def grade_source(wb: WorkbookSpec, block_id: str) -> str:
    """The grade formula from the workbook's bands; blank until every score is filled."""
    total = f"{block_id}.total"
    inner = f'"{wb.grades[-1].grade}"'
    for g in reversed(wb.grades[:-1]):
        inner = f'IF({total}>={g.min},"{g.grade}",{inner})'
    return f'IF({block_id}.filled<{block_id}.count,"",{inner})'
