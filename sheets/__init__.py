"""Table specs shipped as package data (xlsx_kpi.sheets); the YAML files are the content."""
