"""The 自评报告 (.docx): drafting one from a checked workbook, and checking the figures one states."""
