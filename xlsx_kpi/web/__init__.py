"""`xlsx-kpi serve`: the whole round (下发, 回收, 审核, 汇总) in a browser, over the same library as the CLI."""

from xlsx_kpi.web.app import Limits, clear_password, create_app, import_folder, load_unit_list

__all__ = ["Limits", "clear_password", "create_app", "import_folder", "load_unit_list"]
