"""`python -m xlsx_kpi.cli`: the same as the xlsx-kpi command."""

import sys

from xlsx_kpi.cli import program

sys.exit(program())
