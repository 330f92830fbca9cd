"""Read the figures a 自评报告 (.docx) states and check them against its workbook and against themselves.

Extraction is rule-based: the text is normalised (full-width forms folded, 千分位 commas dropped), cut into
sentences and clauses, and read with the regular expressions of sheets/reports/report-patterns.yaml over the
number grammar of xlsx_kpi/audit/values.py. Every comparison is in Decimal with a stated tolerance.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, DivisionByZero, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xlsx_kpi.audit.findings import Finding
from xlsx_kpi.audit.reader import Filing
from xlsx_kpi.audit.report import Report
from xlsx_kpi.audit.rules.report_rules import (
    ReportCalcMismatch,
    ReportContradiction,
    ReportFigureMismatch,
    ReportIndicatorMismatch,
    ReportScoreMismatch,
)
from xlsx_kpi.audit.values import NUMBER_PATTERN, normalise_text, parse_targets
from xlsx_kpi.errors import SpecError, XlsxKpiError
from xlsx_kpi.formats import expr
from xlsx_kpi.formats.outline import AMOUNT_UNITS, Outline, fmt_figure, fmt_score, half_up, outline_for, outlines_dir

if TYPE_CHECKING:
    from docx.table import Table

    from xlsx_kpi.selfreport.draft import Draftable

Kind = Literal["amount", "rate", "score", "count", "text"]
SENTENCE_END = re.compile(r"[。!?！？\n]")
CLAUSE_END = re.compile(r"[,;；]")
THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# A figure after a name: words in between must not be digits, comparisons or change words (比上年增加 10万元 is
# not the figure itself).
FILLER = r"[^\d,;。≥≤<>()\[\]=+*/×÷%比较增减降升超低高差占约近余-]"
VALUE = rf"(?P<sign>-)?(?P<num>{NUMBER_PATTERN})\s*(?P<unit>亿元|万元|百元|元|%|分|人|名|个|项)?"
OPERATORS = re.compile(r"[()\[\]+\-*/×÷]+")
HUNDRED_PERCENT = re.compile(r"[×*]\s*100\s*%")
ARITHMETIC = re.compile(r"^[\s\d.()\[\]+\-*/×÷%]+$")
TOTAL_LABELS = ("合计", "总计")  # row labels are read with spaces removed


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quantity(_Strict):
    id: str
    label: str
    kind: Kind
    names: list[str] = Field(min_length=1)
    figure: str | None = None
    # The outline figure of the indicator score this rate earns (“预算完成率…=131.53%，得4分”).
    score_figure: str | None = None


class Patterns(_Strict):
    """sheets/reports/report-patterns.yaml, validated and compiled when loaded."""

    gap: int = Field(ge=0, le=30)
    qualifiers: list[str]
    amount_units: dict[str, Decimal]
    quantities: list[Quantity]
    level1_score: str
    grade: str
    indicator_result_words: str
    indicator_score: str
    change: str
    total_items: str


@dataclass(frozen=True)
class Compiled:
    patterns: Patterns
    names: list[tuple[Quantity, re.Pattern[str]]]
    level1: re.Pattern[str]
    grade: re.Pattern[str]
    score: re.Pattern[str]
    score_formula: re.Pattern[str]
    change: re.Pattern[str]
    total_items: re.Pattern[str]


def _compile(text: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(text.replace("NUMBER", NUMBER_PATTERN))
    except re.error as e:
        raise SpecError(f"报告识别规则 {where} 的正则表达式有误：{e}") from None


@lru_cache(maxsize=4)
def load_patterns(path: Path | None = None) -> Compiled:
    """Load (once) and compile the report patterns; a bad file fails here, naming the key."""
    path = path or outlines_dir() / "report-patterns.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        p = Patterns.model_validate(data)
    except (OSError, yaml.YAMLError) as e:
        raise SpecError(f"无法读取报告识别规则 {path}：{e}") from None
    except ValidationError as e:
        lines = [f"报告识别规则 {path.name} 有误："]
        lines += [f"  {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()[:10]]
        raise SpecError("\n".join(lines)) from None
    names = [(q, _compile("|".join(f"(?:{n})" for n in q.names), f"quantities.{q.id}")) for q in p.quantities]
    return Compiled(
        p,
        names,
        _compile(p.level1_score, "level1_score"),
        _compile(p.grade, "grade"),
        _compile(p.indicator_score, "indicator_score"),
        _compile(rf"得分=.*=\s*(?P<value>{NUMBER_PATTERN})分", "indicator_score"),
        _compile(p.change, "change"),
        _compile(p.total_items, "total_items"),
    )


# -- reading the document ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """A paragraph (第N段, counting non-empty body paragraphs) or a table cell read with its row and column."""

    where: str
    text: str


def read_report(path: Path) -> list[Piece]:
    """The text of a .docx in reading order; a file that is not a .docx gets one clear message."""
    if not path.is_file():
        raise XlsxKpiError("报告文件不存在，请检查路径", file=str(path))
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise XlsxKpiError("这是旧版 Word（.doc）或加密的文件，请在 Word/WPS 中另存为 .docx 后再审核", file=str(path))
    if not zipfile.is_zipfile(path):
        raise XlsxKpiError("不是有效的 .docx 文件（可能已损坏或是其他格式），请另存为 .docx 后再审核", file=str(path))
    # python-docx (~0.35 s to import) only when a report is read.
    from docx import Document
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        doc = Document(str(path))
    except Exception as e:  # noqa: BLE001 - python-docx raises many types for a broken package
        raise XlsxKpiError(
            f"无法读取报告（{type(e).__name__}），请在 Word/WPS 中另存为 .docx 后再审核", file=str(path)
        ) from None
    pieces: list[Piece] = []
    n = tables = 0
    for item in doc.iter_inner_content():
        if isinstance(item, Paragraph):
            if item.text.strip():
                n += 1
                pieces.append(Piece(f"第{n}段", item.text))
        elif isinstance(item, Table):
            tables += 1
            pieces.extend(_table_pieces(item, tables))
    return pieces


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _table_pieces(table: Table, number: int) -> Iterator[Piece]:
    """Each cell as '<row label><column header><value><unit>', the way prose would state it.

    A 合计 row puts the word after the header (预算数合计368.08万元); a header's （万元） becomes the unit.
    """
    rows = [[_squash(c.text) for c in r.cells] for r in table.rows]
    if len(rows) < 2:
        return
    header = rows[0]
    for r, row in enumerate(rows[1:], start=2):
        label = row[0] if row else ""
        for c in range(1, min(len(row), len(header))):
            value = row[c]
            if not value or value == "—":
                continue
            head = header[c]
            unit = ""
            m = re.search(r"[（(](亿元|万元|百元|元)[)）]", head)
            if m:
                unit, head = m[1], head[: m.start()] + head[m.end() :]
            if re.fullmatch(r"-?[\d.,]+", value) and ("得分" in head or "分值" in head):
                unit = "分"
            text = f"{head}合计{value}{unit}" if label in TOTAL_LABELS else f"{label}{head}{value}{unit}"
            yield Piece(f"表{number}第{r}行", text)


# -- statements ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One figure the report states: which quantity, the number as written, its unit and decimals."""

    quantity: str
    kind: Kind
    value: Decimal | str
    unit: str  # "" when written without one (an operand of a ratio)
    decimals: int
    written: str
    where: str
    sentence: str

    @property
    def quote(self) -> str:
        text = self.sentence.strip()
        return text if len(text) <= 90 else text[:88] + "……"


def _decimals(num: str) -> int:
    return len(num.split(".")[1]) if "." in num else 0


def _number(num: str, sign: str | None = None) -> Decimal:
    value = Decimal(num.replace(",", ""))
    return -value if sign == "-" else value


def _normalise(text: str) -> str:
    folded = "".join(normalise_text(ch) or " " for ch in text)  # one character for one, so quotes line up
    return THOUSANDS.sub("", folded)


def _statement(q_id: str, kind: Kind, m: re.Match[str], where: str, sentence: str) -> Statement | None:
    unit = m["unit"] or ""
    if kind == "rate":
        if unit != "%":
            return None
        unit = "%"
    elif kind == "amount" and unit not in ("", *AMOUNT_UNITS):
        return None
    elif kind == "score" and unit not in ("", "分"):
        return None
    elif kind == "count" and unit in ("%", *AMOUNT_UNITS, "分"):
        return None
    return Statement(q_id, kind, _number(m["num"], m["sign"]), unit, _decimals(m["num"]), m[0], where, sentence)


class _Reader:
    def __init__(self, compiled: Compiled, indicator_names: list[str]) -> None:
        self.c = compiled
        self.p = compiled.patterns
        self.value = re.compile(rf"{FILLER}{{0,{self.p.gap}}}?(?:为|:)?\s*{VALUE}")
        self.operand = re.compile(rf"^\s*{VALUE}")
        words = self.p.indicator_result_words
        self.indicators = [
            (
                name,
                re.compile(
                    rf"{re.escape(_normalise(name))}[^。;]{{0,20}}?{words}(?:为|:)?\s*(?P<rest>[=≈]?{NUMBER_PATTERN}[^,;。]*)"
                ),
            )
            for name in indicator_names
            if len(name) >= 2
        ]
        self.statements: list[Statement] = []
        self.scored = {q.id for q in self.p.quantities if q.score_figure}
        self.indicator_statements: list[tuple[str, str, str, str]] = []  # name, written, where, sentence
        self.calc: list[Finding] = []
        self.report_path = ""
        self.report_name = ""

    def qualified(self, text: str, start: int) -> bool:
        before = text[:start].rstrip('“"')
        return any(before.endswith(q) for q in self.p.qualifiers)

    def match_name(self, text: str, *, full: bool) -> Quantity | None:
        for q, rx in self.c.names:
            if (rx.fullmatch(text) if full else rx.search(text)) is not None:
                return q
        return None

    def read(self, pieces: list[Piece]) -> None:
        for piece in pieces:
            original = piece.text
            for sentence, norm in self._sentences(original):
                self.sentence(norm, sentence, piece.where)

    @staticmethod
    def _sentences(text: str) -> Iterator[tuple[str, str]]:
        start = 0
        for m in SENTENCE_END.finditer(text + "\n"):
            piece = text[start : m.end()]
            start = m.end()
            if piece.strip():
                yield piece.strip(), _normalise(piece.strip()).rstrip("。!?")

    def sentence(self, norm: str, original: str, where: str) -> None:
        for name, rx in self.indicators:
            for m in rx.finditer(norm):
                self.indicator_statements.append((name, m["rest"].strip(), where, original))
        norm = self._specials(norm, original, where)
        for part in re.split(r"[;；]", norm):
            scored = ""  # the last quantity in this part that is an indicator's rate: 得4分 is its score
            for clause in re.split(r",", part):
                said = self.c.score.fullmatch(clause.strip()) or self.c.score_formula.fullmatch(clause.strip())
                if said is not None and scored:
                    self.statements.append(
                        Statement(
                            f"score:{scored}",
                            "score",
                            _number(said["value"]),
                            "分",
                            _decimals(said["value"]),
                            said[0],
                            where,
                            original,
                        )
                    )
                    if self.c.score.fullmatch(clause.strip()):
                        continue
                before = len(self.statements)
                if "=" in clause:
                    self.formula(clause, original, where)
                else:
                    self.plain(clause, original, where)
                for st in self.statements[before:]:
                    if st.quantity in self.scored:
                        scored = st.quantity

    def _blank(self, text: str, m: re.Match[str]) -> str:
        return text[: m.start()] + "#" * (m.end() - m.start()) + text[m.end() :]

    def _specials(self, norm: str, original: str, where: str) -> str:
        for m in list(self.c.level1.finditer(norm)):
            self.statements.append(
                Statement(
                    f"l1:{m['name']}", "score", _number(m["value"]), "分", _decimals(m["value"]), m[0], where, original
                )
            )
            norm = self._blank(norm, m)
        for m in list(self.c.grade.finditer(norm)):
            self.statements.append(Statement("grade", "text", m["value"], "", 0, m[0], where, original))
            norm = self._blank(norm, m)
        for m in self.c.change.finditer(norm):
            self._change(m, original, where)
        for m in self.c.total_items.finditer(norm):
            self._total_items(m, original, where)
        return norm

    def plain(self, clause: str, original: str, where: str) -> None:
        claimed: list[tuple[int, int]] = []
        for q, rx in self.c.names:
            for m in rx.finditer(clause):
                if any(m.start() < e and s < m.end() for s, e in claimed) or self.qualified(clause, m.start()):
                    continue
                v = self.value.match(clause, m.end())
                claimed.append((m.start(), m.end()))
                if v is None:
                    continue
                st = _statement(q.id, q.kind, v, where, original)
                if st is not None:
                    self.statements.append(st)

    def formula(self, clause: str, original: str, where: str) -> None:
        segments = clause.split("=")
        result = self.operand.match(segments[-1])
        head = segments[0].strip().rstrip("(%)").strip()
        q = None
        for cand, rx in self.c.names:
            found = [m for m in rx.finditer(head) if m.end() == len(head) and not self.qualified(head, m.start())]
            if found:
                q = cand
                break
        if result is not None and q is not None:
            st = _statement(q.id, q.kind, result, where, original)
            if st is not None:
                self.statements.append(st)
        middle = segments[1:-1]
        numeric = [s for s in middle if ARITHMETIC.match(s) and re.search(r"\d", s)]
        named = [s for s in middle if re.search(r"[\u4e00-\u9fff]", s)]
        if named and numeric:
            terms = [t for t in OPERATORS.split(HUNDRED_PERCENT.sub("", named[0])) if t.strip()]
            numbers = list(re.finditer(VALUE, HUNDRED_PERCENT.sub("", numeric[0])))
            if len(terms) == len(numbers):
                for term, num in zip(terms, numbers, strict=True):
                    tq = self.match_name(term.strip().strip('“”"'), full=True)
                    if tq is not None and not num["sign"]:
                        st = _statement(tq.id, tq.kind, num, where, original)
                        if st is not None:
                            self.statements.append(st)
        if result is not None:
            for seg in numeric:
                if re.search(r"[+\-*/×÷]", seg.strip().lstrip("-")):
                    self._calc(seg, result, clause, original, where)

    def _calc(self, seg: str, result: re.Match[str], clause: str, original: str, where: str) -> None:
        try:
            got = evaluate(seg)
        except (ValueError, ArithmeticError):
            return
        stated = _number(result["num"], result["sign"])
        quantum = Decimal(1).scaleb(-_decimals(result["num"]))
        if result["unit"] == "%":
            candidates = [got * 100] if "%" in seg else [got * 100, got]
        else:
            candidates = [got]
        if any(_same_at(c, stated, quantum) for c in candidates):
            return
        shown = f"{half_up(candidates[0], quantum)}{'%' if result['unit'] == '%' else ''}"
        self.calc.append(
            ReportCalcMismatch.found(
                self.report_path,
                self.report_name,
                where,
                f"“{_short(original)}”中 {seg.strip()} 重新计算为 {shown}，报告写作 {result[0].strip()}",
                expected=shown,
                actual=result[0].strip(),
                indicator=clause.split("=")[0].strip()[:20],
            )
        )

    def _change(self, m: re.Match[str], original: str, where: str) -> None:
        current = _number(m["current"]) * AMOUNT_UNITS[m["cunit"]]
        diff = _number(m["diff"]) * AMOUNT_UNITS[m["dunit"]]
        up = m["dir"] in ("增加", "增长")
        base = current - diff if up else current + diff
        if base == 0:
            return
        got = diff / base * 100
        quantum = Decimal(1).scaleb(-_decimals(m["pct"]))
        stated = _number(m["pct"])
        if _same_at(got, stated, quantum):
            return
        shown = f"{half_up(got, quantum)}%"
        self.calc.append(
            ReportCalcMismatch.found(
                self.report_path,
                self.report_name,
                where,
                f"“{_short(original)}”：本年 {m['current']}{m['cunit']}、"
                f"{'增加' if up else '减少'} {m['diff']}{m['dunit']}，"
                f"上年应为 {base / AMOUNT_UNITS[m['cunit']]:f}{m['cunit']}，变动率应为 {shown}，报告写作 {m['pct']}%",
                expected=shown,
                actual=f"{m['pct']}%",
                indicator="较上年变动",
            )
        )

    def _total_items(self, m: re.Match[str], original: str, where: str) -> None:
        total_scale = AMOUNT_UNITS[m["unit"]]
        total = _number(m["total"]) * total_scale
        items = [
            (
                x,
                _number(x["num"]) * AMOUNT_UNITS[x["unit"]],
                Decimal(1).scaleb(-_decimals(x["num"])) * AMOUNT_UNITS[x["unit"]],
            )
            for x in re.finditer(rf"(?P<num>{NUMBER_PATTERN})(?P<unit>亿元|万元|百元|元)", m["items"])
        ]
        if len(items) < 2:
            return
        got = sum((v for _, v, _ in items), Decimal(0))
        # Each figure was rounded to its last written place: the sum may differ by half a place per figure (a
        # written 0 is exact).
        places = [q for _, v, q in items if v] + [Decimal(1).scaleb(-_decimals(m["total"])) * total_scale]
        slack = sum((q / 2 for q in places), Decimal(0))
        if abs(got - total) <= slack:
            return
        shown = f"{got / total_scale:f}{m['unit']}"
        self.calc.append(
            ReportCalcMismatch.found(
                self.report_path,
                self.report_name,
                where,
                f"“{_short(original)}”中合计 {m['total']}{m['unit']}，其中各项之和为 {shown}",
                expected=shown,
                actual=f"{m['total']}{m['unit']}",
                indicator="合计与分项",
            )
        )


def _short(text: str, size: int = 80) -> str:
    text = text.strip()
    return text if len(text) <= size else text[: size - 2] + "……"


def _same_at(value: Decimal, stated: Decimal, quantum: Decimal) -> bool:
    """Stated equals value rounded half-up (or truncated, as some writers do) at the stated decimals."""
    if half_up(value, quantum) == stated:
        return True
    if quantum < 1:
        return value.quantize(quantum, rounding=ROUND_DOWN) == stated
    return False


# -- arithmetic as written in reports ----------------------------------------------------------------


def evaluate(text: str) -> Decimal:
    """Evaluate `(484.13/368.08)×100%`, `5*(1-33%)`, `[(29.22-145.26)/145.26]`: + - × ÷ * / ( ) [ ] and %."""
    tokens: list[str] = re.findall(rf"{NUMBER_PATTERN}|[()\[\]+\-*/×÷%]", text)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def primary() -> Decimal:
        tok = peek()
        if tok is None:
            raise ValueError("unexpected end")
        if tok in ("(", "["):
            take()
            v = expression()
            if peek() not in (")", "]"):
                raise ValueError("unbalanced")
            take()
        elif tok == "-":
            take()
            v = -primary()
        elif tok[0].isdigit() or tok[0] == ".":
            v = Decimal(take().replace(",", ""))
        else:
            raise ValueError(f"unexpected {tok}")
        while peek() == "%":
            take()
            v = v / 100
        return v

    def term() -> Decimal:
        v = primary()
        while peek() in ("*", "/", "×", "÷"):
            op = take()
            right = primary()
            v = v * right if op in ("*", "×") else v / right
        return v

    def expression() -> Decimal:
        v = term()
        while peek() in ("+", "-"):
            op = take()
            right = term()
            v = v + right if op == "+" else v - right
        return v

    try:
        value = expression()
    except (DivisionByZero, InvalidOperation) as e:
        raise ArithmeticError(str(e)) from None
    if pos != len(tokens):
        raise ValueError("trailing tokens")
    return value


# -- checks -------------------------------------------------------------------------------------------


@dataclass
class ReportCheck:
    """What was read from one report and what was found."""

    path: Path
    statements: list[Statement] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def stated(self, quantity: str) -> list[Decimal | str]:
        return [s.value for s in self.statements if s.quantity == quantity]


def _base(st: Statement, unit: str) -> tuple[Decimal, Decimal]:
    """(value, quantum) of an amount in 元 read in `unit`; other kinds as written (rates as percent)."""
    assert isinstance(st.value, Decimal)
    q = Decimal(1).scaleb(-st.decimals)
    if st.kind == "amount":
        scale = AMOUNT_UNITS[unit]
        return st.value * scale, q * scale
    return st.value, q


def _units(st: Statement) -> list[str]:
    if st.kind != "amount":
        return [""]
    return [st.unit] if st.unit else ["元", "百元", "万元"]


def _agree(a: Statement, b: Statement) -> bool:
    if isinstance(a.value, str) or isinstance(b.value, str):
        return a.value == b.value
    for ua in _units(a):
        for ub in _units(b):
            va, qa = _base(a, ua)
            vb, qb = _base(b, ub)
            coarse = max(qa, qb)
            if half_up(va, coarse) == half_up(vb, coarse):
                return True
    return False


def _show(st: Statement) -> str:
    return st.value if isinstance(st.value, str) else f"{st.value:f}{st.unit}"


def contradictions(check: ReportCheck, name: str) -> Iterator[Finding]:
    """The same quantity written with different values: one finding per differing value, at its first place."""
    seen: dict[str, list[Statement]] = {}
    for st in check.statements:
        earlier = seen.setdefault(st.quantity, [])
        if earlier and not any(_agree(st, e) for e in earlier):
            first = earlier[0]
            label = _label(st.quantity)
            yield ReportContradiction.found(
                str(check.path),
                name,
                st.where,
                f"{label}在{first.where}“{first.quote}”中为 {_show(first)}，在{st.where}“{st.quote}”中为 {_show(st)}",
                expected=_show(first),
                actual=_show(st),
                indicator=label,
            )
        earlier.append(st)


def _label(quantity: str) -> str:
    if quantity.startswith("score:"):
        return f"{_label(quantity[6:])}得分"
    if quantity.startswith("l1:"):
        return f"{quantity[3:]}指标得分"
    if quantity == "grade":
        return "自评等级"
    labels = {q.id: q.label for q in load_patterns().patterns.quantities}
    return labels.get(quantity, quantity)


def against_workbook(
    check: ReportCheck, name: str, outline: Outline, d: Draftable, where_of: Callable[[str], str]
) -> Iterator[Finding]:
    """Every statement whose quantity names a workbook figure, compared with the recalculated value."""
    p = load_patterns().patterns
    figures = {q.id: q.figure for q in p.quantities if q.figure}
    scores = {q.id: q.score_figure for q in p.quantities if q.score_figure}
    level1 = {n: (v, k) for (n, _, v), k in zip(d.level1, d.level1_keys, strict=True)}
    reported: set[tuple[str, str]] = set()
    for st in check.statements:
        key = (st.quantity, _show(st))
        if key in reported:
            continue
        if st.quantity.startswith("l1:"):
            entry = next(((v, k) for n, (v, k) in level1.items() if n.startswith(st.quantity[3:])), None)
            if entry is None or entry[0] is None or not isinstance(st.value, Decimal):
                continue
            value, cell = entry
            q = Decimal(1).scaleb(-st.decimals)
            if value is not None and half_up(value, q) != st.value:
                reported.add(key)
                yield ReportScoreMismatch.found(
                    str(check.path),
                    name,
                    st.where,
                    f"“{st.quote}”中{_label(st.quantity)}为 {_show(st)}，"
                    f"工作簿（{where_of(cell)}）重新计算为 {fmt_score(value)}分",
                    expected=f"{fmt_score(value)}分",
                    actual=_show(st),
                    indicator=_label(st.quantity),
                )
            continue
        if st.quantity.startswith("score:"):
            fig_name: str | None = scores.get(st.quantity[6:])
        else:
            fig_name = "grade" if st.quantity == "grade" else figures.get(st.quantity)
        if fig_name is None or fig_name not in d.figures:
            continue
        fig = outline.figures[fig_name]
        want = d.figures[fig_name]
        ok = _matches(st, want, outline.scale)
        if ok:
            continue
        reported.add(key)
        shown = fmt_figure(fig.kind, want) + {"amount": "万元", "score": "分", "count": ""}.get(fig.kind, "")
        rule = ReportScoreMismatch if fig.kind in ("score", "text") else ReportFigureMismatch
        at = where_of(fig.expr)
        yield rule.found(
            str(check.path),
            name,
            st.where,
            f"“{st.quote}”中{fig.label}为 {_show(st)}，工作簿{f'（{at}）' if at else ''}为 {shown}",
            expected=shown,
            actual=_show(st),
            indicator=fig.label,
        )


def _matches(st: Statement, want: Decimal | str, scale: Decimal) -> bool:
    if isinstance(want, str) or isinstance(st.value, str):
        return str(st.value) == str(want)
    q = Decimal(1).scaleb(-st.decimals)
    if st.kind == "rate":
        return _same_at(want * 100, st.value, q)
    if st.kind == "amount":
        for unit in _units(st):
            value, quantum = _base(st, unit)
            coarse = max(quantum, scale)  # the workbook holds amounts to its own unit (百元)
            if half_up(value, coarse) == half_up(want, coarse):
                return True
        return False
    return half_up(want, q) == st.value


def indicator_findings(check: ReportCheck, name: str, reader: _Reader, d: Draftable) -> Iterator[Finding]:
    results = {i.name: i.result for i in d.indicators}
    for ind, written, where, sentence in reader.indicator_statements:
        result = results.get(ind, "")
        said = [t for t in parse_targets(written) if t.op != "range"]
        want = [t for t in parse_targets(result) if t.op != "range"]
        if len(said) != 1 or len(want) != 1 or said[0].unit != want[0].unit:
            continue
        num = re.search(NUMBER_PATTERN, written)
        q = Decimal(1).scaleb(-_decimals(num[0] if num else "0")) * said[0].scale
        if half_up(want[0].value, q) == half_up(said[0].value, q):
            continue
        yield ReportIndicatorMismatch.found(
            str(check.path),
            name,
            where,
            f"“{_short(sentence)}”中“{ind}”完成值为 {written}，目标完成情况表的执行结果为 {result}",
            expected=result,
            actual=written,
            indicator=ind,
        )


def check_report(
    path: Path,
    *,
    outline: Outline | None = None,
    draftable: Draftable | None = None,
    where_of: Callable[[str], str] = lambda _: "",
) -> ReportCheck:
    """Read one report; internal checks always, workbook cross-checks when its figures are given."""
    compiled = load_patterns()
    pieces = read_report(path)
    reader = _Reader(compiled, [i.name for i in draftable.indicators] if draftable else [])
    reader.report_path, reader.report_name = str(path), path.name
    reader.read(pieces)
    check = ReportCheck(path, reader.statements)
    check.findings.extend(reader.calc)
    check.findings.extend(contradictions(check, path.name))
    if draftable is not None and outline is not None:
        check.findings.extend(against_workbook(check, path.name, outline, draftable, where_of))
        check.findings.extend(indicator_findings(check, path.name, reader, draftable))
    return check


def report_alone(path: Path) -> Report:
    """`xlsx-kpi check 报告.docx`: a Report of the internal checks only (error set when unreadable)."""
    report = Report(file=path, workbook_id="自评报告", unit_name="仅核对报告本身")
    try:
        report.findings = check_report(path).findings
    except XlsxKpiError as e:
        report.error = e.render()
    report.sort()
    return report


def matches(title: str, unit: str, project: str, kind: str) -> bool:
    """Whether a report (its name and title) belongs to a workbook of `unit` (and `project`)."""
    if not unit or _squash(unit) not in title:
        return False
    if kind == "project":
        return bool(project) and _squash(project).strip('“”"') in title.replace("“", "").replace("”", "")
    return "部门" in title or "整体" in title


def pick_report(
    reports: tuple[tuple[Path, str], ...], unit: str, project: str, kind: str, *, match_any: bool = False
) -> Path | None:
    """The report (path, title) that belongs to this workbook: the only one given with --report, or by title."""
    if match_any and len(reports) == 1:
        return reports[0][0]
    for path, title in reports:
        if matches(title, unit, project, kind):
            return path
    return None


def workbook_report_findings(doc: Path, filing: Filing, values: dict[str, expr.Value]) -> list[Finding]:
    """The findings of a unit's report read beside its recalculated workbook (internal checks when no outline)."""
    spec = filing.layout.spec
    try:
        outline: Outline | None = outline_for(spec.id, Path(spec.path).parent if spec.path else None)
    except SpecError:
        outline = None
    from xlsx_kpi.selfreport.draft import gather_from

    d = gather_from(filing, values, outline) if outline is not None else None

    def where_of(text: str) -> str:
        if text in filing.layout.refs:
            sheet, a1 = filing.a1(text)
            return f"{sheet}!{a1}"
        return ""

    return check_report(doc, outline=outline, draftable=d, where_of=where_of).findings


def find_reports(paths: list[Path], explicit: list[Path]) -> list[Path]:
    """Reports given with --report or as arguments, and every .docx in the folders given (Word's ~$ files skipped)."""
    found: list[Path] = list(explicit)
    for p in paths:
        if p.is_dir():
            found += [f for f in sorted(p.rglob("*.docx")) if f.is_file() and not f.name.startswith("~$")]
        elif p.suffix.lower() == ".docx" and not p.name.startswith("~$"):
            found.append(p)
    unique: dict[Path, None] = {}
    for f in found:
        unique.setdefault(f, None)
    return list(unique)


def report_titles(docs: list[Path]) -> tuple[list[tuple[Path, str]], list[Report]]:
    """(report, name + title) for each readable report; an unreadable one becomes a Report with its error."""
    titled: list[tuple[Path, str]] = []
    bad: list[Report] = []
    for doc in docs:
        try:
            pieces = read_report(doc)
        except XlsxKpiError as e:
            bad.append(Report(file=doc, workbook_id="自评报告", error=e.render()))
            continue
        titled.append((doc, _squash(doc.stem + "".join(p.text for p in pieces[:3]))))
    return titled, bad


def unmatched_reports(
    titled: list[tuple[Path, str]], reports: list[Report], kinds: Callable[[str], str], match_any: bool
) -> list[Path]:
    """Reports no usable workbook took (they are then checked alone); `kinds` maps a workbook id to its kind."""
    usable = [r for r in reports if r.usable]
    if match_any and usable:
        return []
    return [
        doc
        for doc, title in titled
        if not any(
            pick_report(((doc, title),), r.unit_name, r.project_name, kinds(r.workbook_id)) is not None for r in usable
        )
    ]
