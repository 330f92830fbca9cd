"""Read the figures a 自评报告 (.docx) states: its text in reading order, the patterns, and each Statement."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, DivisionByZero, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xlsx_kpi.audit.findings import Finding
from xlsx_kpi.audit.rules.report_rules import ReportCalcMismatch
from xlsx_kpi.audit.values import NUMBER_PATTERN, normalise_text
from xlsx_kpi.errors import SpecError, XlsxKpiError
from xlsx_kpi.formats.outline import AMOUNT_UNITS, half_up, outlines_dir
from xlsx_kpi.safe_text import without_spaces

if TYPE_CHECKING:
    from docx.table import Table


__all__ = [
    "Compiled",
    "Kind",
    "Patterns",
    "Piece",
    "Quantity",
    "Statement",
    "StatementReader",
    "decimals_of",
    "evaluate",
    "load_patterns",
    "read_report",
    "same_at",
    "shorten",
    "without_spaces",
]

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


def _table_pieces(table: Table, number: int) -> Iterator[Piece]:
    """Each cell as '<row label><column header><value><unit>', the way prose would state it.

    A 合计 row puts the word after the header (预算数合计368.08万元); a header's （万元） becomes the unit.
    """
    rows = [[without_spaces(c.text) for c in r.cells] for r in table.rows]
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


def decimals_of(num: str) -> int:
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
    return Statement(q_id, kind, _number(m["num"], m["sign"]), unit, decimals_of(m["num"]), m[0], where, sentence)


class StatementReader:
    """Reads Statements sentence by sentence, and checks the arithmetic a sentence writes out as it goes.

    Extraction is rule-based: the text is normalised (full-width forms folded, 千分位 commas dropped), cut into
    sentences and clauses, and read with the regular expressions of sheets/reports/report-patterns.yaml over the
    number grammar of xlsx_kpi/audit/values.py.
    """

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
                            decimals_of(said["value"]),
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
                    f"l1:{m['name']}",
                    "score",
                    _number(m["value"]),
                    "分",
                    decimals_of(m["value"]),
                    m[0],
                    where,
                    original,
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
        quantum = Decimal(1).scaleb(-decimals_of(result["num"]))
        if result["unit"] == "%":
            candidates = [got * 100] if "%" in seg else [got * 100, got]
        else:
            candidates = [got]
        if any(same_at(c, stated, quantum) for c in candidates):
            return
        shown = f"{half_up(candidates[0], quantum)}{'%' if result['unit'] == '%' else ''}"
        self.calc.append(
            ReportCalcMismatch.found(
                self.report_path,
                self.report_name,
                where,
                f"“{shorten(original)}”中 {seg.strip()} 重新计算为 {shown}，报告写作 {result[0].strip()}",
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
        quantum = Decimal(1).scaleb(-decimals_of(m["pct"]))
        stated = _number(m["pct"])
        if same_at(got, stated, quantum):
            return
        shown = f"{half_up(got, quantum)}%"
        self.calc.append(
            ReportCalcMismatch.found(
                self.report_path,
                self.report_name,
                where,
                f"“{shorten(original)}”：本年 {m['current']}{m['cunit']}、"
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
                Decimal(1).scaleb(-decimals_of(x["num"])) * AMOUNT_UNITS[x["unit"]],
            )
            for x in re.finditer(rf"(?P<num>{NUMBER_PATTERN})(?P<unit>亿元|万元|百元|元)", m["items"])
        ]
        if len(items) < 2:
            return
        got = sum((v for _, v, _ in items), Decimal(0))
        # Each figure was rounded to its last written place: the sum may differ by half a place per figure (a
        # written 0 is exact).
        places = [q for _, v, q in items if v] + [Decimal(1).scaleb(-decimals_of(m["total"])) * total_scale]
        slack = sum((q / 2 for q in places), Decimal(0))
        if abs(got - total) <= slack:
            return
        shown = f"{got / total_scale:f}{m['unit']}"
        self.calc.append(
            ReportCalcMismatch.found(
                self.report_path,
                self.report_name,
                where,
                f"“{shorten(original)}”中合计 {m['total']}{m['unit']}，其中各项之和为 {shown}",
                expected=shown,
                actual=f"{m['total']}{m['unit']}",
                indicator="合计与分项",
            )
        )


def shorten(text: str, size: int = 80) -> str:
    text = text.strip()
    return text if len(text) <= size else text[: size - 2] + "……"


def same_at(value: Decimal, stated: Decimal, quantum: Decimal) -> bool:
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
