"""Recipe: turn the narrative 自评报告 of seed 000 (lines 208-357) into a .docx, as the unit sent it.

    python tests/data/make_reports.py OUT_DIR      # writes OUT_DIR/资阳市科学技术协会_部门整体支出绩效自评报告.docx

The paragraphs are the seed's text unchanged, so its real contradictions (财政拨款总收入 360.08 万元 against
the 368.08 万元 budget of the tables; a “三公经费” 预算安排数 of 2000 against 0.12 万元) travel with it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from docx import Document

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
SEED_000 = "000_04c96ce19f25fec9.txt"
REPORT_LINES = (208, 357)  # 1-based, inclusive: from the unit's name to the last line before the 附件 list
HEADING = re.compile(r"^(?:[一二三四五六七八九十]+、|（[一二三四五六七八九十]+）)")


def seed_paragraphs(seeds: Path = SEEDS, lines: tuple[int, int] = REPORT_LINES, file: str = SEED_000) -> list[str]:
    """The non-empty lines `lines` (1-based, inclusive) of a seed, one paragraph each."""
    text = (seeds / file).read_text(encoding="utf-8").split("\n")
    return [line.strip() for line in text[lines[0] - 1 : lines[1]] if line.strip()]


def write_report(paragraphs: list[str], out: Path) -> Path:
    """One paragraph per line; 一、/（一） lines become headings, as in the unit's Word file."""
    doc = Document()
    for text in paragraphs:
        if HEADING.match(text):
            doc.add_heading(text, level=1 if "、" in text[:4] else 2)
        else:
            doc.add_paragraph(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(out))
    return out


def seed_report(out_dir: Path, seeds: Path = SEEDS) -> Path:
    return write_report(seed_paragraphs(seeds), out_dir / "资阳市科学技术协会_部门整体支出绩效自评报告.docx")


if __name__ == "__main__":
    print(seed_report(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
