"""The history store: every collected submission in an embedded SQLite database, and last year's figures."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xlsx_kpi import __version__
from xlsx_kpi.audit.findings import Finding
from xlsx_kpi.errors import XlsxKpiError, os_reason, write_atomically
from xlsx_kpi.formats.expr import Value
from xlsx_kpi.safe_text import neutralise, printable
from xlsx_kpi.store.encoding import decode_values, encode_value, encode_values, finding_json, snapshot
from xlsx_kpi.store.records import Record, record_kind

if TYPE_CHECKING:
    import pandas as pd

    from xlsx_kpi.audit.checked import Checked


DB_NAME = "xlsx-kpi.sqlite"
SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS submission (
    id            INTEGER PRIMARY KEY,
    sha256        TEXT NOT NULL UNIQUE,
    unit_code     TEXT NOT NULL,
    unit_name     TEXT NOT NULL,
    year          INTEGER NOT NULL,
    workbook_id   TEXT NOT NULL,
    project_name  TEXT NOT NULL DEFAULT '',
    file_name     TEXT NOT NULL,
    file_mtime    TEXT NOT NULL,
    collected_at  TEXT NOT NULL,
    total         TEXT,
    grade         TEXT NOT NULL DEFAULT '',
    errors        INTEGER NOT NULL,
    warnings      INTEGER NOT NULL,
    explained     INTEGER NOT NULL,
    infos         INTEGER NOT NULL,
    inputs        TEXT NOT NULL,
    "values"      TEXT NOT NULL,
    written       TEXT NOT NULL,
    findings      TEXT NOT NULL,
    tool_version  TEXT NOT NULL DEFAULT '',
    snapshot      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS submission_unit ON submission (unit_code, workbook_id, project_name, year);
CREATE TABLE IF NOT EXISTS finding (
    submission_id INTEGER NOT NULL REFERENCES submission (id),
    seq           INTEGER NOT NULL,
    code          TEXT NOT NULL,
    severity      TEXT NOT NULL,
    sheet         TEXT NOT NULL,
    cell          TEXT NOT NULL,
    message       TEXT NOT NULL,
    PRIMARY KEY (submission_id, seq)
);
"""
# The summary workbooks collect wrote: which inputs (fingerprint) and the file's own SHA-256, so that collect run again
# on an unchanged folder keeps the summary instead of writing the same workbook again (issue 14). Created on first
# use, without a new schema version: an older xlsx-kpi opens the database as before and ignores the table.
SUMMARY_TABLE = """
CREATE TABLE IF NOT EXISTS summary_file (
    path         TEXT PRIMARY KEY,
    fingerprint  TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    written_at   TEXT NOT NULL
);
"""
_UPGRADE_1_TO_2 = (
    "ALTER TABLE submission ADD COLUMN tool_version TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE submission ADD COLUMN snapshot TEXT NOT NULL DEFAULT '';"
)


_COLUMNS = (
    "id, sha256, unit_code, unit_name, year, workbook_id, project_name, file_name, file_mtime, collected_at, "
    'total, grade, errors, warnings, explained, infos, inputs, "values", written, findings'
)


def _record(row: sqlite3.Row) -> Record:
    return Record(
        id=row["id"],
        sha256=row["sha256"],
        unit_code=row["unit_code"],
        unit_name=row["unit_name"],
        year=row["year"],
        workbook_id=row["workbook_id"],
        project_name=row["project_name"],
        file_name=row["file_name"],
        file_mtime=row["file_mtime"],
        collected_at=row["collected_at"],
        total=None if row["total"] is None else Decimal(row["total"]),
        grade=row["grade"],
        counts={"错误": row["errors"], "警告": row["warnings"], "已说明": row["explained"], "提示": row["infos"]},
        inputs=decode_values(row["inputs"]),
        values=decode_values(row["values"]),
        written=decode_values(row["written"]),
        findings=json.loads(row["findings"]),
    )


def _year(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


class History:
    """The database of collected submissions. `collect` writes it; `check --db` only reads (readonly=True).

    A History can be handed to worker processes: it pickles as its path and reopens there read-only
    (workers only look up last year's figures; the collecting process alone writes).
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._open()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopen, (self.path, True))

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _fail(self, message: str) -> XlsxKpiError:
        return XlsxKpiError(message, file=str(self.path))

    def _open(self) -> None:
        existed = self.path.exists()
        try:
            self._connect()
        except XlsxKpiError:
            if not existed:
                # A database that could not even be set up (a full disk) is not left behind as a 0-byte file.
                for leftover in (self.path, self.path.with_name(self.path.name + "-journal")):
                    with contextlib.suppress(OSError):
                        leftover.unlink()
            raise

    def _connect(self) -> None:
        if self.path.is_dir():
            raise self._fail("历史数据库路径是一个文件夹，请指定 .sqlite 文件")
        if self.readonly and not self.path.exists():
            raise self._fail("历史数据库不存在；请先用 xlsx-kpi collect 汇总上一年度的报送")
        try:
            if self.readonly:
                conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30)
            conn.row_factory = sqlite3.Row
            # Autocommit mode: every write below opens its own explicit transaction.
            conn.isolation_level = None
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                conn.close()
                raise self._fail(f"历史数据库版本（{version}）比本工具新，请升级 xlsx-kpi")
            if not self.readonly and version < SCHEMA_VERSION:
                # One script, one transaction: executescript would commit a transaction begun outside it.
                # Version 1 lacks the audit snapshot (collect's skip of files already stored, issue 14).
                upgrade = _UPGRADE_1_TO_2 if version == 1 else ""
                conn.executescript(f"BEGIN IMMEDIATE;{SCHEMA}{upgrade}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")
            elif version < 1:
                conn.close()
                raise self._fail("不是 xlsx-kpi 的历史数据库（缺少数据表）")
        except sqlite3.DatabaseError as e:
            if _is_full(e):
                raise self._fail(f"无法创建或打开历史数据库：磁盘空间不足（{e}），请清理磁盘后重试") from None
            raise self._fail(f"无法打开历史数据库（{e}），请确认它是 xlsx-kpi 生成的 .sqlite 文件") from None
        except OSError as e:
            raise self._fail(f"无法创建或打开历史数据库：{os_reason(e)}") from None
        self._conn = conn

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._open()
        assert self._conn is not None
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception: nothing half-written is ever visible."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- reading -------------------------------------------------------------------------------------

    def previous(self, meta: Mapping[str, str]) -> dict[str, Value] | None:
        """Last year's stored values for the same unit, workbook kind and project; None when not stored."""
        year = _year(meta.get("year", ""))
        code = meta.get("unit_code", "").strip()
        if year is None or not code:
            return None
        record = self.latest(code, meta.get("workbook_id", ""), meta.get("project_name", "").strip(), year - 1)
        return None if record is None else record.values

    def latest(self, unit_code: str, workbook_id: str, project_name: str, year: int) -> Record | None:
        """The newest stored submission (by file time, then by collection) of one unit, kind, project, year."""
        try:
            row = self.conn.execute(
                f"SELECT {_COLUMNS} FROM submission WHERE unit_code = ? AND workbook_id = ? AND project_name = ? "
                "AND year = ? ORDER BY file_mtime DESC, id DESC LIMIT 1",
                (unit_code, workbook_id, project_name, year),
            ).fetchone()
        except sqlite3.DatabaseError as e:
            raise self._fail(f"读取历史数据库失败（{e}）") from None
        return None if row is None else _record(row)

    def records(self, unit_code: str | None = None) -> list[Record]:
        """Every stored submission (of one unit), ordered by unit, kind, project, year, then storage order."""
        where, args = ("WHERE unit_code = ?", (unit_code,)) if unit_code is not None else ("", ())
        try:
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} FROM submission {where} "
                "ORDER BY unit_code, workbook_id, project_name, year, file_mtime, id",
                args,
            ).fetchall()
        except sqlite3.DatabaseError as e:
            raise self._fail(f"读取历史数据库失败（{e}）") from None
        return [_record(r) for r in rows]

    def unit_years(self, unit_code: str) -> list[Record]:
        """One record per year (and kind, project) of a unit: the newest of each, oldest year first."""
        latest: dict[tuple[str, str, int], Record] = {}
        for r in self.records(unit_code):
            latest[(r.workbook_id, r.project_name, r.year)] = r  # records() ends with the newest of each
        return list(latest.values())

    def has(self, sha256: str) -> bool:
        return self.conn.execute("SELECT 1 FROM submission WHERE sha256 = ?", (sha256,)).fetchone() is not None

    def snapshot(self, sha256: str, specs: str = "") -> dict[str, Any] | None:
        """The audit stored for this file content by this version of the tool with these specs (their digest, as
        given to store); None otherwise.

        A database written before version 2 of the schema, by another version of xlsx-kpi (other rules, other
        messages) or with other specs has none: collect then checks the file again (and refresh_snapshot keeps it).
        """
        try:
            row = self.conn.execute(
                "SELECT snapshot FROM submission WHERE sha256 = ? AND tool_version = ?", (sha256, __version__)
            ).fetchone()
        except sqlite3.DatabaseError:
            return None  # a read-only database of schema version 1: no such columns
        return None if row is None else _snapshot_data(row[0], specs)

    def summary_record(self, path: Path) -> tuple[str, str] | None:
        """(fingerprint, SHA-256) of the summary workbook record_summary noted at `path`; None when none."""
        try:
            row = self.conn.execute(
                "SELECT fingerprint, sha256 FROM summary_file WHERE path = ?", (_path_key(path),)
            ).fetchone()
        except sqlite3.DatabaseError:
            return None  # no such table yet (written by an older xlsx-kpi), or unreadable: written again
        return None if row is None else (row[0], row[1])

    def record_summary(self, path: Path, fingerprint: str, sha256: str) -> None:
        """Note the summary workbook just written at `path` (from inputs `fingerprint`, its bytes `sha256`)."""
        if self.readonly:
            raise self._fail("历史数据库以只读方式打开，不能写入")
        try:
            with self._transaction() as conn:
                conn.execute(SUMMARY_TABLE)
                conn.execute(
                    "INSERT OR REPLACE INTO summary_file (path, fingerprint, sha256, written_at) VALUES (?, ?, ?, ?)",
                    (_path_key(path), fingerprint, sha256, datetime.now().isoformat(timespec="seconds")),
                )
        except sqlite3.DatabaseError as e:
            raise self._fail(f"写入历史数据库失败（{e}）") from None

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM submission").fetchone()[0])

    # --- writing -------------------------------------------------------------------------------------

    def store(
        self,
        checked: Checked,
        *,
        sha256: str,
        file_mtime: datetime,
        collected_at: datetime | None = None,
        specs: str = "",
    ) -> bool:
        """Store one usable submission in one transaction; False when this exact file is already stored.

        `specs` (the digest of the specs it was checked with) goes with the audit snapshot (see snapshot()).
        """
        if self.readonly:
            raise self._fail("历史数据库以只读方式打开，不能写入")
        report = checked.report
        if not report.usable:
            raise ValueError("an unusable file has nothing to store")
        year = _year(report.year)
        if year is None:
            raise self._fail(f"文件 {report.file.name} 的年度“{report.year}”不是数字，未写入历史数据库")
        if self._stored(sha256):
            return False  # checked before encoding: collect run again on an unchanged folder stores nothing
        counts = report.counts
        row = (
            sha256,
            report.unit_code.strip(),
            report.unit_name.strip(),
            year,
            report.workbook_id,
            report.project_name.strip(),
            printable(report.file.name),  # SQLite text must be UTF-8: a GBK name is decoded
            file_mtime.isoformat(timespec="seconds"),
            (collected_at or datetime.now()).isoformat(timespec="seconds"),
            None if report.total is None else encode_value(report.total),
            report.grade,
            counts["错误"],
            counts["警告"],
            counts["已说明"],
            counts["提示"],
            encode_values(checked.inputs),
            encode_values(checked.values),
            encode_values(checked.written),
            json.dumps([finding_json(f) for f in report.findings], ensure_ascii=False),
            __version__,
            _snapshot_json(checked, specs),
        )
        try:
            with self._transaction() as conn:
                if self._stored(sha256, conn):  # again inside the transaction: another process may have stored it
                    return False
                cur = conn.execute(
                    f"INSERT INTO submission ({_COLUMNS.removeprefix('id, ')}, tool_version, snapshot) "
                    f"VALUES ({', '.join('?' * len(row))})",
                    row,
                )
                assert cur.lastrowid is not None
                self._insert_findings(conn, cur.lastrowid, report.findings)
        except sqlite3.DatabaseError as e:
            if _is_full(e):
                raise self._fail(f"写入历史数据库失败：磁盘空间不足（{e}），本次未存入的报送不受影响") from None
            raise self._fail(f"写入历史数据库失败（{e}）") from None
        return True

    def refresh_snapshots(self, audits: Sequence[tuple[Checked, str]], *, specs: str = "") -> None:
        """Replace the audit snapshots of stored files (Checked, SHA-256) by new audits (this version, these specs),
        all in one transaction.

        The stored records themselves (figures, findings, times) stay as first stored. Without this, a file stored
        by an older version, or with other specs, would be read again by every later collect (issue 14).
        """
        if self.readonly:
            raise self._fail("历史数据库以只读方式打开，不能写入")
        if not audits:
            return
        try:
            with self._transaction() as conn:
                conn.executemany(
                    "UPDATE submission SET tool_version = ?, snapshot = ? WHERE sha256 = ?",
                    [(__version__, _snapshot_json(checked, specs), sha256) for checked, sha256 in audits],
                )
        except sqlite3.DatabaseError as e:
            if _is_full(e):
                raise self._fail(f"写入历史数据库失败：磁盘空间不足（{e}）") from None
            raise self._fail(f"写入历史数据库失败（{e}）") from None

    def _stored(self, sha256: str, conn: sqlite3.Connection | None = None) -> bool:
        try:
            return (conn or self.conn).execute(
                "SELECT 1 FROM submission WHERE sha256 = ?", (sha256,)
            ).fetchone() is not None
        except sqlite3.DatabaseError as e:
            raise self._fail(f"读取历史数据库失败（{e}）") from None

    def _insert_findings(self, conn: sqlite3.Connection, submission_id: int, findings: list[Finding]) -> None:
        # One row per finding as well as the JSON, so that SQL can ask "which units had rate-mismatch?".
        conn.executemany(
            "INSERT INTO finding (submission_id, seq, code, severity, sheet, cell, message) VALUES (?,?,?,?,?,?,?)",
            [
                (submission_id, n, f.code, f.severity.value, f.sheet, f.cell, f.message)
                for n, f in enumerate(findings, start=1)
            ],
        )


def _is_full(e: sqlite3.DatabaseError) -> bool:
    return getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(e)


def _snapshot_data(text: str, specs: str) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("specs", "") == specs else None


def _snapshot_json(checked: Checked, specs: str) -> str:
    data = snapshot(checked)
    if specs:
        data["specs"] = specs
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _path_key(path: Path) -> str:
    # SQLite text must be UTF-8: a GBK file name held as lone surrogates is kept as its escapes.
    return str(Path(path).resolve()).encode("utf-8", "backslashreplace").decode()


def _reopen(path: Path, readonly: bool) -> History:
    return History(path, readonly=readonly)


def to_dataframe(
    db_path: str | Path, *, unit_code: str | None = None, kinds: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Every stored submission as one row: identity, kind, counts, then one column per value key (s.total, …).

    `kind` (department / project) lets a pivot add amounts per kind: a project's money is already inside its
    department's 政策和项目支出, so a sum over both kinds counts it twice.

    Numbers are Decimal (exact, as stored); `df[col].astype(float)` for plotting.
    """
    import pandas as pd

    with History(Path(db_path), readonly=True) as history:
        records = history.records(unit_code)
    rows: list[dict[str, Any]] = []
    for r in records:
        rows.append(
            {
                "unit_code": r.unit_code,
                "unit_name": r.unit_name,
                "year": r.year,
                "workbook_id": r.workbook_id,
                "kind": record_kind(r, kinds),
                "project_name": r.project_name,
                "total": r.total,
                "grade": r.grade,
                "errors": r.counts["错误"],
                "warnings": r.counts["警告"],
                "explained": r.counts["已说明"],
                "infos": r.counts["提示"],
                "file_name": r.file_name,
                "file_mtime": r.file_mtime,
                "collected_at": r.collected_at,
                "sha256": r.sha256,
                **r.values,
            }
        )
    return pd.DataFrame(rows)


def write_csv(
    db_path: Path,
    csv_path: Path,
    *,
    unit_code: str | None = None,
    force: bool = False,
    kinds: Mapping[str, str] | None = None,
) -> int:
    """to_dataframe written as CSV with a BOM (Excel opens it as UTF-8); returns the number of rows."""
    if csv_path.exists() and not force:
        raise XlsxKpiError("文件已存在；如需覆盖请加 --force", file=str(csv_path))
    df = to_dataframe(db_path, unit_code=unit_code, kinds=kinds)
    # Text a unit typed (=HYPERLINK(…), +1+1) would run as a formula when Excel opens the CSV.
    for col in df.columns:  # whatever the dtype (pandas 3 holds text as "str", older ones as object)
        df[col] = df[col].map(lambda v: neutralise(v) if isinstance(v, str) else v)
    df.columns = [neutralise(str(c)) for c in df.columns]

    def write(tmp: Path) -> None:
        # CRLF rows (as Excel writes CSV): a CR inside a text is then quoted, never read as a row break.
        df.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\r\n")

    write_atomically(csv_path, write, suffix=".tmp.csv")
    return len(df)
