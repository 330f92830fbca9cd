"""Draft a 自评报告 (.docx) from a checked workbook, following a report outline; never invents text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_COLOR_INDEX
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from docx.table import Table
from docx.text.paragraph import Paragraph

from xlsx_kpi.audit.cells import to_inputs
from xlsx_kpi.audit.filing import Filing
from xlsx_kpi.audit.reader import read_workbook
from xlsx_kpi.audit.recalc import recalculate
from xlsx_kpi.audit.rules.quality import no_deviation, placeholder
from xlsx_kpi.audit.values import Status, meets, parse_number, parse_target, parse_targets
from xlsx_kpi.errors import OutputExistsError, XlsxKpiError, write_atomically
from xlsx_kpi.formats import expr
from xlsx_kpi.formats.outline import (
    FILL_MARK,
    PLACEHOLDER,
    Block,
    Outline,
    Section,
    figure_values,
    fmt_figure,
    fmt_percent,
    fmt_score,
    fmt_wan,
    outline_for,
)
from xlsx_kpi.formats.spec import Catalog, GridBlock, IndicatorsBlock, TargetsBlock

BODY_FONT = "仿宋"
HEADING_FONT = "黑体"


def _none_written(text: str) -> bool:
    """A deviation text that says there is none (“无偏差，保质保量完成”, “/”): the word lists of the quality rules."""
    return no_deviation(text) or placeholder(text)


_POINTS = re.compile(r"[（(]\s*\d+(?:\.\d+)?\s*分\s*[)）]")


@dataclass(frozen=True)
class IndicatorRow:
    level2: str
    name: str
    target: str
    result: str
    deviation: str

    @property
    def missed(self) -> bool:
        """The result does not meet the target (when that can be decided from the two texts)."""
        target = parse_target(self.target)
        return target is not None and meets(target, self.result) is False

    @property
    def problem(self) -> bool:
        return self.missed or bool(self.deviation and not _none_written(self.deviation))


@dataclass
class Draftable:
    """What a draft states, taken from one recalculated workbook."""

    path: Path
    workbook_id: str
    kind: str
    unit: str
    year: str
    project: str
    figures: dict[str, Decimal | str]
    texts: dict[str, str]
    budget_rows: list[tuple[str, dict[str, Decimal | None]]]
    level1: list[tuple[str, Decimal, Decimal | None]]
    level1_keys: list[str] = field(default_factory=list)
    indicators: list[IndicatorRow] = field(default_factory=list)
    fill_count: int = 0  # 【请填写：…】 places in the written draft


def _text(values: dict[str, expr.Value], key: str) -> str:
    v = values.get(key)
    if v is None or isinstance(v, expr.ExcelError | bool):
        return ""
    if isinstance(v, Decimal):
        return fmt_score(v)
    return v.strip()


def _amount(values: dict[str, expr.Value], key: str, scale: Decimal) -> Decimal | None:
    v = values.get(key)
    if isinstance(v, Decimal):
        return v * scale
    parsed = parse_number(v)
    return parsed.value * scale if parsed.status is Status.OK and parsed.value is not None else None


def gather(path: Path, catalog: Catalog, *, sheets: Path | None = None, outline_path: Path | None = None) -> Draftable:
    """Read and recalculate one workbook (read-only) and collect what its report states."""
    filing = read_workbook(path, catalog)
    values = recalculate(filing.layout, to_inputs(filing))
    wid = filing.meta.get("workbook_id", "") or filing.layout.spec.id
    return gather_from(filing, values, outline_for(wid, sheets, outline_path))


def gather_from(filing: Filing, values: dict[str, expr.Value], outline: Outline) -> Draftable:
    """What a report of this recalculated filing states (figures, budget rows, scores, indicators)."""
    meta = filing.meta
    wid = meta.get("workbook_id", "") or filing.layout.spec.id
    the_outline = outline
    d = Draftable(
        path=filing.path,
        workbook_id=wid,
        kind=filing.layout.spec.kind,
        unit=meta.get("unit_name", "") or _text(values, "info.unit_name"),
        year=meta.get("year", ""),
        project=meta.get("project_name", "") or _text(values, "pinfo.project_name"),
        figures=figure_values(the_outline, values),
        texts={k: _text(values, k) for k in ("goal.target", "goal.result", "goal.deviation")},
        budget_rows=[],
        level1=[],
    )
    for sl in filing.layout.sheets:
        for block in sl.spec.blocks:
            if isinstance(block, GridBlock) and block.id == "exec":
                for row in block.rows:
                    k = f"{block.id}.{row.id}"
                    budget = _amount(values, f"{k}.budget", the_outline.scale)
                    actual = _amount(values, f"{k}.actual", the_outline.scale)
                    carry = _amount(values, f"{k}.carry", the_outline.scale)
                    rate = actual / budget if budget and actual is not None else None
                    carry_rate = carry / actual if actual and carry is not None else None
                    label = re.sub(r"\s+", "", row.label)
                    d.budget_rows.append(
                        (
                            label,
                            {
                                "budget": budget,
                                "actual": actual,
                                "rate": rate,
                                "carry": carry,
                                "carry_rate": carry_rate,
                            },
                        )
                    )
            elif isinstance(block, IndicatorsBlock):
                for l1 in block.groups:
                    v = values.get(f"{block.id}.l1.{l1.id}")
                    name = _POINTS.sub("", re.sub(r"\s+", "", l1.name))
                    d.level1.append((name, l1.points, v if isinstance(v, Decimal) else None))
                    d.level1_keys.append(f"{block.id}.l1.{l1.id}")
            elif isinstance(block, TargetsBlock):
                for tl1 in block.groups:
                    for g in tl1.groups:
                        for i in range(1, g.rows + 1):
                            k = f"{block.id}.{g.id}.{i}"
                            name = _text(values, f"{k}.name")
                            if name:
                                d.indicators.append(
                                    IndicatorRow(
                                        g.name,
                                        name,
                                        _text(values, f"{k}.target"),
                                        _text(values, f"{k}.result"),
                                        _text(values, f"{k}.deviation"),
                                    )
                                )
    if "satisfaction" not in d.figures:
        # No 满意率 in 基础数据: the 满意度指标 of 附件2, when there is exactly one with a percentage result.
        rates = [
            t.value
            for i in d.indicators
            if "满意" in i.level2
            for t in parse_targets(i.result)
            if t.unit == "%" and t.op != "range"
        ]
        if len(rates) == 1:
            d.figures["satisfaction"] = rates[0]
    return d


# -- writing ---------------------------------------------------------------------------------------


def _font(run_or_style: object, name: str, size: float | None = None, bold: bool | None = None) -> None:
    font = run_or_style.font  # type: ignore[attr-defined]
    font.name = name
    if size is not None:
        font.size = Pt(size)
    if bold is not None:
        font.bold = bold
    # Word takes Chinese glyphs from the eastAsia font, not from font.name.
    element = run_or_style.element  # type: ignore[attr-defined]
    rpr = element.get_or_add_rPr()
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(rfonts)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        rfonts.set(qn(attr), name)


def _put(p: Paragraph, text: str, *, size: float = 14, name: str = BODY_FONT, bold: bool = False) -> None:
    """Add text to a paragraph; every 【请填写：…】 in it is highlighted and bold so nobody misses it."""
    for piece in re.split(r"(【请填写：[^】]*】)", text):
        if not piece:
            continue
        run = p.add_run(piece)
        _font(run, name, size, bold)
        if piece.startswith("【请填写："):
            run.font.highlight_color = WD_COLOR_INDEX.YELLOW
            run.font.bold = True


def _body(doc: object, text: str) -> Paragraph:
    p: Paragraph = doc.add_paragraph()  # type: ignore[attr-defined]
    p.paragraph_format.first_line_indent = Pt(28)
    p.paragraph_format.line_spacing = Pt(28)
    _put(p, text)
    return p


def _fill(label: str) -> str:
    return FILL_MARK.format(label)


class _Writer:
    def __init__(self, outline: Outline, d: Draftable) -> None:
        self.outline = outline
        self.d = d
        self.doc = Document()
        self.tables = 0
        self._setup()

    def _setup(self) -> None:
        section = self.doc.sections[0]
        section.page_width, section.page_height = Cm(21.0), Cm(29.7)
        section.top_margin = section.bottom_margin = Cm(2.54)
        section.left_margin = section.right_margin = Cm(2.8)
        normal = self.doc.styles["Normal"]
        _font(normal, BODY_FONT, 14)
        for style_name, size in (("Heading 1", 16), ("Heading 2", 15)):
            style = self.doc.styles[style_name]
            _font(style, HEADING_FONT, size, True)
            style.font.italic = False
            style.font.color.rgb = RGBColor(0, 0, 0)
            style.paragraph_format.space_before = Pt(10)
            style.paragraph_format.space_after = Pt(4)
        self.doc.core_properties.title = self.title
        self.doc.core_properties.author = self.d.unit

    def sub(self, text: str) -> str:
        def one(m: re.Match[str]) -> str:
            name = m[1]
            if name == "unit":
                return self.d.unit or _fill("单位名称")
            if name == "year":
                return self.d.year or _fill("年度")
            if name == "project":
                return self.d.project or _fill("项目名称")
            fig = self.outline.figures[name]
            value = self.d.figures.get(name)
            return _fill(fig.label) if value is None else fmt_figure(fig.kind, value)

        return PLACEHOLDER.sub(one, text)

    @property
    def title(self) -> str:
        return self.sub(self.outline.kinds[self.d.kind].title)  # type: ignore[index]

    def write(self) -> object:
        ko = self.outline.kinds[self.d.kind]  # type: ignore[index]
        p = self.doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        p.paragraph_format.space_after = Pt(18)
        _put(p, self.title, size=20, name=HEADING_FONT, bold=True)
        for s in ko.sections:
            self.section(s, 1)
        for i, line in enumerate(ko.signature):
            q = self.doc.add_paragraph()
            q.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            if i == 0:
                q.paragraph_format.space_before = Pt(24)
            _put(q, self.sub(line))
        return self.doc

    def section(self, s: Section, level: int) -> None:
        h = self.doc.add_heading(level=min(level, 2))
        _put(h, s.heading, size=16 if level == 1 else 15, name=HEADING_FONT, bold=True)
        for b in s.blocks:
            self.block(b)
        for sub in s.sections:
            self.section(sub, level + 1)

    def block(self, b: Block) -> None:
        kind = b.kind
        if kind == "text":
            if any(n not in self.d.figures for n in b.needs):
                return
            _body(self.doc, self.sub(b.text or ""))
        elif kind == "fill":
            _body(self.doc, _fill(b.fill or ""))
        elif kind == "field":
            text = self.d.texts.get(b.field or "", "")
            _body(self.doc, text or _fill(b.prompt or b.field or ""))
        elif kind == "budget_table":
            self.budget_table(b.budget_table or "")
        elif kind == "indicators":
            self.indicator_table(b.indicators or "")
        elif kind == "scores":
            self.scores(b.scores or "")
        elif kind == "problems":
            self.problems()
        elif kind == "measures":
            self.measures()

    def caption(self, text: str) -> None:
        p = self.doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _put(p, text, size=12, name=HEADING_FONT)

    def table(self, header: list[str], rows: list[list[str]], widths: list[float]) -> Table:
        t: Table = self.doc.add_table(rows=1 + len(rows), cols=len(header))
        t.style = "Table Grid"
        t.alignment = WD_TABLE_ALIGNMENT.CENTER
        for r, cells in enumerate([header, *rows]):
            for c, text in enumerate(cells):
                cell = t.cell(r, c)
                cell.width = Cm(widths[c])
                p = cell.paragraphs[0]
                p.alignment = WD_ALIGN_PARAGRAPH.CENTER if r == 0 or c > 0 else WD_ALIGN_PARAGRAPH.LEFT
                _put(p, text, size=10.5, bold=r == 0)
        self.doc.add_paragraph()
        return t

    def budget_table(self, caption: str) -> None:
        if not self.d.budget_rows:
            return
        self.caption(caption)

        def show(v: Decimal | None, rate: bool = False) -> str:
            if v is None:
                return "—"
            return fmt_percent(v) if rate else fmt_wan(v)

        rows = [
            [
                label,
                show(v["budget"]),
                show(v["actual"]),
                show(v["rate"], True),
                show(v["carry"]),
                show(v["carry_rate"], True),
            ]
            for label, v in self.d.budget_rows
        ]
        header = ["项目", "预算数（万元）", "执行数（万元）", "预算执行率", "结转结余额（万元）", "结转结余率"]
        self.table(header, rows, [3.2, 2.6, 2.6, 2.4, 2.9, 2.4])

    def indicator_table(self, caption: str) -> None:
        if not self.d.indicators:
            _body(self.doc, _fill("绩效指标完成情况（附件2 中未填写绩效指标）"))
            return
        self.caption(caption)
        rows = [
            [
                i.name,
                i.level2,
                i.target or "—",
                i.result or _fill("执行结果"),
                i.deviation or (_fill("偏差原因") if i.problem else "无偏差"),
            ]
            for i in self.d.indicators
        ]
        self.table(["三级指标", "二级指标", "指标值", "执行结果", "偏差情况及原因"], rows, [4.0, 2.4, 2.8, 2.8, 4.0])

    def scores(self, caption: str) -> None:
        parts = [
            f"{name}指标（{fmt_score(points)}分）自评得分{_fill('得分') if v is None else fmt_score(v)}分"
            for name, points, v in self.d.level1
        ]
        if parts:
            _body(self.doc, "；".join(parts) + "。")
        total, grade = self.d.figures.get("total"), self.d.figures.get("grade")
        total_text = _fill("自评得分合计") if not isinstance(total, Decimal) else fmt_score(total)
        grade_text = grade if isinstance(grade, str) else _fill("自评等级")
        _body(self.doc, f"自评得分合计{total_text}分，自评等级为{grade_text}。")
        if not self.d.level1:
            return
        self.caption(caption)
        rows = [[name, fmt_score(points), "—" if v is None else fmt_score(v)] for name, points, v in self.d.level1]
        full = sum((p for _, p, _ in self.d.level1), Decimal(0))
        rows.append(["合计", fmt_score(full), total_text])
        self.table(["一级指标", "分值", "自评得分"], rows, [4.5, 3.0, 3.0])

    def _problem_rows(self) -> list[IndicatorRow]:
        return [i for i in self.d.indicators if i.problem]

    def problems(self) -> None:
        found = self._problem_rows()
        deviation = self.d.texts.get("goal.deviation", "")
        if deviation and not _none_written(deviation):
            _body(self.doc, f"年度总体目标：{deviation}")
        for n, i in enumerate(found, start=1):
            reason = i.deviation if i.deviation and not _none_written(i.deviation) else _fill("偏差原因")
            _body(self.doc, f"{n}. “{i.name}”指标值{i.target or '—'}，执行结果{i.result or '—'}。{reason}")
        if not found and not (deviation and not _none_written(deviation)):
            _body(self.doc, "对照绩效目标完成情况表，各项绩效指标均已完成，未填写偏差。")
        _body(self.doc, _fill("其他存在的问题（资金使用、项目管理等）"))

    def measures(self) -> None:
        for n, i in enumerate(self._problem_rows(), start=1):
            _body(self.doc, f"{n}. 针对“{i.name}”：{_fill('改进措施')}")
        _body(self.doc, _fill("改进措施和建议"))


def count_fills(doc: object) -> int:
    """How many 【请填写：…】 places a document has (paragraphs and table cells)."""
    texts = [p.text for p in doc.paragraphs]  # type: ignore[attr-defined]
    for t in doc.tables:  # type: ignore[attr-defined]
        texts += [c.text for row in t.rows for c in row.cells]
    return sum(t.count("【请填写：") for t in texts)


def draft_document(d: Draftable, outline: Outline) -> object:
    """The python-docx Document of one draft (not saved)."""
    return _Writer(outline, d).write()


def write_draft(
    workbook: Path,
    out: Path,
    catalog: Catalog,
    *,
    outline_path: Path | None = None,
    sheets: Path | None = None,
    force: bool = False,
) -> Draftable:
    """Draft the report of `workbook` into `out` (.docx); the workbook is only read."""
    if out.suffix.lower() != ".docx":
        raise XlsxKpiError("报告文件名须以 .docx 结尾", file=str(out))
    if out.resolve() == workbook.resolve():
        raise XlsxKpiError("输出文件不能与输入工作簿相同", file=str(out))
    if out.exists() and not force:
        raise OutputExistsError("文件已存在；如需覆盖请加 --force", file=str(out))
    if not workbook.is_file():
        raise XlsxKpiError("工作簿不存在，请检查路径", file=str(workbook))
    d = gather(workbook, catalog, sheets=sheets, outline_path=outline_path)
    outline = outline_for(d.workbook_id, sheets, outline_path)
    doc = draft_document(d, outline)
    d.fill_count = count_fills(doc)
    write_atomically(out, lambda tmp: doc.save(str(tmp)), failure="无法写入报告")  # type: ignore[attr-defined]
    return d
