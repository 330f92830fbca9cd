"""The one accessor of 绩效指标 rows on every form, and the rules data file the indicator rules read."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from xlsx_kpi.audit.rules.base import Context
from xlsx_kpi.formats.catalog import load_data
from xlsx_kpi.formats.spec import IndicatorsBlock, TargetsBlock, default_dir

QUALITY_FILE = "indicator-quality.yml"


@functools.lru_cache(maxsize=1)
def quality_data(path: Path | None = None) -> dict[str, Any]:
    """sheets/indicator-quality.yml: word lists, thresholds and units (formats are data, not code)."""
    # Parsed once and cached (formats.catalog.load_data): a check need not import PyYAML (issue 14).
    data: dict[str, Any] = load_data(path or default_dir() / QUALITY_FILE)
    return data


@dataclass(frozen=True)
class IndicatorRow:
    """One 绩效指标 row, whatever the form.

    `keys` maps a part (name, target, result, deviation, score, max) to the cell key where the unit types
    it; `printed` holds the parts the template prints from the spec (a fixed 三级指标 or 年度指标值).
    `kinds` are the indicator kinds of its 一级/二级指标 (quantity, cost, satisfaction...), several when
    a form merges 二级指标 names into one cell.
    """

    sheet: str
    level1: str
    level2: str
    index: int
    keys: dict[str, str]
    printed: dict[str, str] = field(default_factory=dict)
    kinds: frozenset[str] = frozenset()

    def typed(self, part: str) -> bool:
        return part in self.keys

    def text(self, ctx: Context, part: str) -> str:
        if part in self.keys:
            return ctx.text(self.keys[part])
        return self.printed.get(part, "").strip()

    def key(self, part: str) -> str | None:
        return self.keys.get(part)

    def label(self, ctx: Context) -> str:
        """How a message names the row: its 三级指标, else 数量指标第2行."""
        name = self.text(ctx, "name")
        return name or f"{self.level2.splitlines()[0]}第{self.index}行"

    def explain_key(self) -> str | None:
        """Where the unit explains a 警告 on this row: the 差异说明 column, else the 偏差原因."""
        return self.keys.get("note") or self.keys.get("deviation")

    def anchor(self) -> str:
        """The cell a finding about the whole row points at (its first typed cell)."""
        for part in ("name", "target", "result", "deviation", "score"):
            if part in self.keys:
                return self.keys[part]
        raise ValueError("indicator row without typed cells")

    def filled(self, ctx: Context) -> bool:
        return any(ctx.text(k) for p, k in self.keys.items() if p in ("name", "target", "result", "deviation"))


def kinds_of(*names: str) -> frozenset[str]:
    kinds = quality_data()["kinds"]
    text = "".join(names)
    return frozenset(k for k, spec in kinds.items() if any(w in text for w in spec["words"]))


# Parts of a free row and the key suffixes that may hold them (the national form names its result
# `actual` and its deviation `basis`; the Sichuan 附件2 `result` and `deviation`).
_PARTS = {
    "name": ("name",),
    "target": ("target",),
    "result": ("result", "actual"),
    "deviation": ("deviation", "basis"),
    "score": ("score",),
    "max": ("max",),
    "note": ("note",),
}


def _free_row(ctx: Context, base: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for part, suffixes in _PARTS.items():
        for suffix in suffixes:
            key = f"{base}.{suffix}"
            cell = ctx.layout.cells.get(key)
            if cell is not None and cell.role == "input":
                keys[part] = key
                break
    return keys


def _rows_of(ctx: Context, prefix: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows `<prefix>.1`, `<prefix>.2`, ... as far as the layout has them (any row count, added rows too)."""
    i = 1
    while True:
        keys = _free_row(ctx, f"{prefix}.{i}")
        if not keys:
            return
        yield i, keys
        i += 1


def indicator_rows(ctx: Context) -> list[IndicatorRow]:
    """Every 绩效指标 row of the workbook in sheet order (worked out once per layout).

    Sichuan 附件2 target tables: every row the layout holds per group, however many. National and 广州
    scoring tables: each fixed indicator that has a 实际完成值 (its 三级指标 and 年度指标值 printed) and
    every free row a group holds. Row counts come from the layout's cells, never from fixed numbers.
    """
    memo = ctx.layout.memo
    if "indicator_rows" not in memo:
        memo["indicator_rows"] = list(_indicator_rows(ctx))
    rows: list[IndicatorRow] = memo["indicator_rows"]
    return rows


def _indicator_rows(ctx: Context) -> Iterator[IndicatorRow]:
    for sl in ctx.layout.sheets:
        for block in sl.spec.blocks:
            if isinstance(block, TargetsBlock):
                for t1 in block.groups:
                    for g in t1.groups:
                        for i, keys in _rows_of(ctx, f"{block.id}.{g.id}"):
                            yield IndicatorRow(sl.name, t1.name, g.name, i, keys, kinds=kinds_of(t1.name, g.name))
            elif isinstance(block, IndicatorsBlock):
                for l1 in block.groups:
                    for l2 in l1.groups:
                        kinds = kinds_of(l1.name, l2.name)
                        for n, ind in enumerate(l2.indicators, start=1):
                            base = f"{block.id}.{ind.id}"
                            keys = _free_row(ctx, base)
                            if "result" not in keys or keys["result"] != f"{base}.actual":
                                continue  # a scoring row without a 实际完成值 is not a 绩效指标 row
                            printed = {"name": ind.name}
                            target = ctx.layout.cells.get(f"{base}.target")
                            printed["target"] = (target.text if target and target.text else "") or ind.target
                            yield IndicatorRow(sl.name, l1.name, l2.name, n, keys, printed, kinds)
                        for i, keys in _rows_of(ctx, f"{block.id}.{l2.id}"):
                            yield IndicatorRow(sl.name, l1.name, l2.name, i, keys, kinds=kinds)


def full_marks(ctx: Context, row: IndicatorRow) -> bool | None:
    """True when the row's score equals its 分值; None when the row has no score."""
    if "score" not in row.keys:
        return None
    score = ctx.inputs.get(row.keys["score"])
    points = ctx.values.get(row.keys["max"]) if "max" in row.keys else None
    if points is None:
        points = ctx.values.get(row.keys["score"].rsplit(".", 1)[0] + ".max")
    if not isinstance(score, Decimal) or not isinstance(points, Decimal):
        return None
    return score >= points
