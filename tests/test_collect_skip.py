"""collect skips files whose content this version already stored (issue 14); --recheck reads them all again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_collect import Batch, batch  # noqa: F401 - the session's collected batch

from xlsx_kpi.batch import collect as collect_module
from xlsx_kpi.batch.collect import collect
from xlsx_kpi.cli import main
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.outputs.dump import dump_workbook
from xlsx_kpi.outputs.summary import write_summary
from xlsx_kpi.store import history as history_module
from xlsx_kpi.store.history import SCHEMA, History


@pytest.fixture()
def audited(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files collect reads and audits."""
    names: list[str] = []
    real = collect_module.audit_paths

    def counting(files, *args, **kwargs):  # type: ignore[no-untyped-def]
        names.extend(f.name for f in files)
        return real(files, *args, **kwargs)

    monkeypatch.setattr(collect_module, "audit_paths", counting)
    return names


def copy_db(batch: Batch, tmp_path: Path) -> Path:  # noqa: F811
    db = tmp_path / "again.sqlite"
    db.write_bytes(batch.db.read_bytes())
    return db


def test_stored_files_are_not_read_again(
    batch: Batch,  # noqa: F811
    catalog: Catalog,
    tmp_path: Path,
    audited: list[str],
) -> None:
    with History(copy_db(batch, tmp_path)) as history:
        again = collect([batch.folder], catalog, units=batch.units, history=history)
    # Only what was never stored is read: the broken file and the older duplicate.
    assert sorted(audited) == sorted([batch.broken.name, batch.duplicate_old.name])
    assert (again.stored, again.already_stored) == (0, 22)
    first = batch.collection
    assert [s.report.flatten("where", "code", "actual", "expected") for s in again.submissions] == [
        s.report.flatten("where", "code", "actual", "expected") for s in first.submissions
    ]
    assert [(s.report.total, s.report.grade, s.file) for s in again.submissions] == [
        (s.report.total, s.report.grade, s.file) for s in first.submissions
    ]
    assert [s.checked.values for s in again.submissions] == [s.checked.values for s in first.submissions]
    assert [s.checked.written for s in again.submissions] == [s.checked.written for s in first.submissions]
    summary = write_summary(again, tmp_path / "汇总.xlsx")
    assert dump_workbook(summary) == dump_workbook(batch.summary)


def test_recheck_reads_every_file(
    batch: Batch,  # noqa: F811
    catalog: Catalog,
    tmp_path: Path,
    audited: list[str],
) -> None:
    with History(copy_db(batch, tmp_path)) as history:
        again = collect([batch.folder], catalog, units=batch.units, history=history, recheck=True)
    assert len(audited) == len(batch.files) == 24
    assert again.already_stored == 22


def test_another_tool_version_is_checked_again(
    batch: Batch,  # noqa: F811
    catalog: Catalog,
    tmp_path: Path,
    audited: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(history_module, "__version__", "0.0.9")
    with History(copy_db(batch, tmp_path)) as history:
        collect([batch.folder], catalog, units=batch.units, history=history)
    assert len(audited) == 24


def test_cli_recheck_option(batch: Batch, tmp_path: Path, audited: list[str]) -> None:  # noqa: F811
    db = copy_db(batch, tmp_path)
    main(["collect", str(batch.folder), "--db", str(db), "-o", str(tmp_path / "a.xlsx"), "--workers", "1"])
    assert len(audited) == 2
    main(["collect", str(batch.folder), "--db", str(db), "-o", str(tmp_path / "b.xlsx"), "--workers", "1", "--recheck"])
    assert len(audited) == 2 + 24


def test_a_version_1_database_is_upgraded_and_read(batch: Batch, catalog: Catalog, tmp_path: Path) -> None:  # noqa: F811
    db = tmp_path / "v1.sqlite"
    v1 = SCHEMA.replace(
        ",\n    tool_version  TEXT NOT NULL DEFAULT '',\n    snapshot      TEXT NOT NULL DEFAULT ''", ""
    )
    assert "snapshot" not in v1
    with sqlite3.connect(db) as conn:
        conn.executescript(f"{v1}PRAGMA user_version = 1;")
    with History(db, readonly=True) as old:
        assert old.records() == [] and old.snapshot("x" * 64) is None
    with History(db) as history:
        collect([batch.folder], catalog, units=batch.units, history=history)
        assert history.count() == 22
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("SELECT COUNT(*) FROM submission WHERE snapshot != ''").fetchone()[0] == 22
