"""xlsx-kpi: budget-performance self-evaluation workbooks (预算绩效自评) as a round trip in Excel."""

import os

# python-docx (the 自评报告 drafts) brings lxml, and openpyxl switches its XML parser and writer to lxml when it
# finds it: another parser (not defusedxml) for untrusted workbooks and differently written XML. Keep the
# backend the project measured (../shared/EXCEL-FACTS.md) unless the caller chose one; this must run before
# openpyxl is first imported, which importing any xlsx_kpi module guarantees.
os.environ.setdefault("OPENPYXL_LXML", "False")

__version__ = "0.1.0"
