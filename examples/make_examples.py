"""Regenerate the example workbooks in examples/: the seed's published figures, as its units filled them.

Run: .venv/bin/python examples/make_examples.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from published import dept_published, kechuang_full_inputs, kechuang_published  # noqa: E402

from xlsx_kpi.formats.catalog import load_specs  # noqa: E402


def main() -> None:
    catalog = load_specs()
    dept = dept_published(catalog, HERE, name="2021_156001_资阳市科学技术协会_部门整体支出绩效自评.xlsx")
    project = kechuang_published(
        catalog,
        HERE,
        inputs=kechuang_full_inputs(),
        name="2021_156001_资阳市科学技术协会_“科创会”专项经费_项目支出绩效自评.xlsx",
    )
    for p in (dept, project):
        print(f"已生成：{p.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
