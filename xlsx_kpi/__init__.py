"""xlsx-kpi: budget-performance self-evaluation workbooks (预算绩效自评) as a round trip in Excel."""

__version__ = "0.1.0"
