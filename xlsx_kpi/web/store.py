"""The web app's store: one folder holding an SQLite database and the uploaded files, named by content hash."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from xlsx_kpi.api import DB_NAME, UnitRow
from xlsx_kpi.safe_text import without_spaces

__all__ = ["Store", "SubmissionRow", "UnitLink", "now"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS unit_row (
    id INTEGER PRIMARY KEY, unit_code TEXT NOT NULL, unit_name TEXT NOT NULL,
    project_name TEXT NOT NULL DEFAULT '', project_type TEXT NOT NULL DEFAULT '', line INTEGER NOT NULL,
    rows TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS unit (
    id INTEGER PRIMARY KEY, unit_code TEXT NOT NULL UNIQUE, unit_name TEXT NOT NULL,
    token_hash TEXT UNIQUE, token_created TEXT, revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS batch (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, who TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submission (
    id INTEGER PRIMARY KEY, batch_id INTEGER, unit_id INTEGER, who TEXT NOT NULL,
    sha256 TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL, uploaded_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued', audits INTEGER NOT NULL DEFAULT 0, finished_at TEXT,
    unit_code TEXT NOT NULL DEFAULT '', unit_name TEXT NOT NULL DEFAULT '', workbook_id TEXT NOT NULL DEFAULT '',
    year TEXT NOT NULL DEFAULT '', project_name TEXT NOT NULL DEFAULT '', total TEXT, grade TEXT NOT NULL DEFAULT '',
    errors INTEGER NOT NULL DEFAULT 0, warnings INTEGER NOT NULL DEFAULT 0, explained INTEGER NOT NULL DEFAULT 0,
    infos INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT '', error TEXT,
    annotated_sha256 TEXT, report TEXT, contexts TEXT, figures TEXT
);
CREATE INDEX IF NOT EXISTS submission_batch ON submission (batch_id);
CREATE INDEX IF NOT EXISTS submission_unit ON submission (unit_id);
CREATE TABLE IF NOT EXISTS event (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
    sha256 TEXT NOT NULL DEFAULT '', submission_id INTEGER, batch_id INTEGER, detail TEXT NOT NULL DEFAULT ''
);
"""
_HEX = re.compile(r"^[0-9a-f]{64}$")
SUFFIXES = (".xlsx", ".csv")


def now() -> str:
    return datetime.now().isoformat(timespec="seconds")


@dataclass(frozen=True)
class UnitLink:
    id: int
    unit_code: str
    unit_name: str
    has_token: bool
    revoked: bool
    token_created: str


@dataclass(frozen=True)
class SubmissionRow:
    id: int
    batch_id: int | None
    unit_id: int | None
    who: str
    sha256: str
    name: str
    size: int
    uploaded_at: str
    state: str
    audits: int
    unit_code: str
    unit_name: str
    workbook_id: str
    year: str
    project_name: str
    total: str | None
    grade: str
    errors: int
    warnings: int
    explained: int
    infos: int
    status: str
    error: str | None
    annotated_sha256: str | None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Who filed what, as collect groups duplicates: unit code, workbook kind, project, year."""
        return (self.unit_code.strip(), self.workbook_id, without_spaces(self.project_name), self.year.strip())


_SUB_COLUMNS = ", ".join(SubmissionRow.__dataclass_fields__)


class Store:
    """Everything the app keeps, under one folder: back it up by copying the folder.

    data/web.sqlite (users' actions, submissions, results), data/xlsx-kpi.sqlite (the history that
    `collect` and `history` use), data/files/ab/<sha256> (uploads and annotated copies, named by hash).
    One connection shared by the server's threads behind a lock; writes are short transactions.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.files = self.folder / "files"
        self.work = self.folder / "work"
        for d in (self.folder, self.files, self.work):
            d.mkdir(parents=True, exist_ok=True)
        self.history_path = self.folder / DB_NAME
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.folder / "web.sqlite", check_same_thread=False, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._conn.isolation_level = None
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # --- config ----------------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM config WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set(self, key: str, value: str) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO config (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                (key, value, value),
            )

    def unset(self, key: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM config WHERE key = ?", (key,))

    # --- files, named by content hash -----------------------------------------------------------------

    def blob_path(self, sha256: str, suffix: str = ".xlsx") -> Path:
        """The stored file of a hash; only hashes from the database (64 hex digits) ever get here.

        The suffix (one of a fixed few, never from a request) is what the readers go by.
        """
        if not _HEX.match(sha256) or suffix not in SUFFIXES:
            raise ValueError("not a stored file")
        return self.files / sha256[:2] / f"{sha256}{suffix}"

    def put_bytes(self, data: bytes, suffix: str = ".xlsx") -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.blob_path(sha, suffix)
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return sha

    # --- the audit log ----------------------------------------------------------------------------------

    def log(
        self,
        who: str,
        action: str,
        *,
        sha256: str = "",
        submission_id: int | None = None,
        batch_id: int | None = None,
        detail: str = "",
    ) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO event (at, who, action, sha256, submission_id, batch_id, detail) VALUES (?,?,?,?,?,?,?)",
                (now(), who, action, sha256, submission_id, batch_id, detail),
            )

    def refused(self, batch_id: int) -> list[str]:
        """What a batch's upload did not take (too big, not a workbook), as "name：reason"."""
        rows = self.query("SELECT detail FROM event WHERE batch_id = ? AND action = '拒收' ORDER BY id", (batch_id,))
        return [r["detail"] for r in rows]

    def events(self, limit: int = 200) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM event ORDER BY id DESC LIMIT ?", (limit,))

    # --- the unit list and the units' links -------------------------------------------------------------

    def set_unit_rows(self, rows: list[UnitRow], sha256: str, suffix: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM unit_row")
            c.executemany(
                "INSERT INTO unit_row (unit_code, unit_name, project_name, project_type, line, rows) "
                "VALUES (?,?,?,?,?,?)",
                [(r.unit_code, r.unit_name, r.project_name, r.project_type, r.line, r.rows) for r in rows],
            )
            for r in rows:
                c.execute(
                    "INSERT INTO unit (unit_code, unit_name) VALUES (?, ?) "
                    "ON CONFLICT(unit_code) DO UPDATE SET unit_name = excluded.unit_name",
                    (r.unit_code, r.unit_name),
                )
            for key, value in (("units_sha256", sha256), ("units_suffix", suffix)):
                c.execute(
                    "INSERT INTO config (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                    (key, value, value),
                )

    def unit_rows(self) -> list[UnitRow]:
        return [
            UnitRow(r["unit_name"], r["unit_code"], r["project_name"], r["project_type"], r["line"], r["rows"])
            for r in self.query("SELECT * FROM unit_row ORDER BY line")
        ]

    def targets_file(self) -> Path | None:
        """The approved targets (`template --targets`) last uploaded on the 下发 page."""
        sha, suffix = self.get("targets_sha256"), self.get("targets_suffix")
        return None if sha is None or suffix is None else self.blob_path(sha, suffix)

    def units_file(self) -> Path | None:
        sha, suffix = self.get("units_sha256"), self.get("units_suffix")
        return None if sha is None or suffix is None else self.blob_path(sha, suffix)

    def units(self) -> list[UnitLink]:
        listed = {r["unit_code"] for r in self.query("SELECT DISTINCT unit_code FROM unit_row")}
        return [
            UnitLink(
                r["id"],
                r["unit_code"],
                r["unit_name"],
                r["token_hash"] is not None,
                bool(r["revoked"]),
                r["token_created"] or "",
            )
            for r in self.query("SELECT * FROM unit ORDER BY unit_code")
            if r["unit_code"] in listed or r["token_hash"] is not None
        ]

    def unit(self, unit_id: int) -> UnitLink | None:
        rows = self.query("SELECT * FROM unit WHERE id = ?", (unit_id,))
        if not rows:
            return None
        r = rows[0]
        return UnitLink(
            r["id"],
            r["unit_code"],
            r["unit_name"],
            r["token_hash"] is not None,
            bool(r["revoked"]),
            r["token_created"] or "",
        )

    def set_token(self, unit_id: int, token_hash: str) -> None:
        with self.tx() as c:
            c.execute(
                "UPDATE unit SET token_hash = ?, token_created = ?, revoked = 0 WHERE id = ?",
                (token_hash, now(), unit_id),
            )

    def revoke(self, unit_id: int) -> None:
        with self.tx() as c:
            c.execute("UPDATE unit SET revoked = 1 WHERE id = ?", (unit_id,))

    def unit_by_token_hash(self, token_hash: str) -> UnitLink | None:
        rows = self.query("SELECT id FROM unit WHERE token_hash = ? AND revoked = 0", (token_hash,))
        return self.unit(rows[0]["id"]) if rows else None

    # --- batches and submissions ------------------------------------------------------------------------

    def new_batch(self, who: str) -> int:
        with self.tx() as c:
            cur = c.execute("INSERT INTO batch (created_at, who) VALUES (?, ?)", (now(), who))
            assert cur.lastrowid is not None
            return cur.lastrowid

    def add_submission(
        self, *, who: str, sha256: str, name: str, size: int, batch_id: int | None = None, unit_id: int | None = None
    ) -> int:
        """One upload, recorded with its event in one transaction; state 'queued' until the worker is done."""
        at = now()
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO submission (batch_id, unit_id, who, sha256, name, size, uploaded_at) "
                "VALUES (?,?,?,?,?,?,?)",
                (batch_id, unit_id, who, sha256, name, size, at),
            )
            assert cur.lastrowid is not None
            c.execute(
                "INSERT INTO event (at, who, action, sha256, submission_id, detail) VALUES (?, ?, '上传', ?, ?, ?)",
                (at, who, sha256, cur.lastrowid, name),
            )
            return cur.lastrowid

    def finish(self, submission_id: int, fields: dict[str, Any]) -> bool:
        """Save a worker's result once: False (nothing written) when the submission is no longer queued."""
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.tx() as c:
            cur = c.execute(
                f"UPDATE submission SET {cols}, state = 'done', audits = audits + 1, finished_at = ? "
                "WHERE id = ? AND state = 'queued'",
                (*fields.values(), now(), submission_id),
            )
            return cur.rowcount == 1

    def queued(self) -> list[int]:
        return [r["id"] for r in self.query("SELECT id FROM submission WHERE state = 'queued' ORDER BY id")]

    def submission(self, submission_id: int) -> SubmissionRow | None:
        rows = self.query(f"SELECT {_SUB_COLUMNS} FROM submission WHERE id = ?", (submission_id,))
        return SubmissionRow(**dict(rows[0])) if rows else None

    def submissions(self, *, batch_id: int | None = None, unit_id: int | None = None) -> list[SubmissionRow]:
        where, args = "", ()  # type: tuple[str, tuple[Any, ...]]
        if batch_id is not None:
            where, args = "WHERE batch_id = ?", (batch_id,)
        elif unit_id is not None:
            where, args = "WHERE unit_id = ?", (unit_id,)
        rows = self.query(f"SELECT {_SUB_COLUMNS} FROM submission {where} ORDER BY id", args)
        return [SubmissionRow(**dict(r)) for r in rows]

    def findings(self, submission_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The stored findings (as Report.to_json gives them) and the cell context of each."""
        rows = self.query("SELECT report, contexts FROM submission WHERE id = ?", (submission_id,))
        if not rows or rows[0]["report"] is None:
            return [], []
        report = json.loads(rows[0]["report"])
        contexts = json.loads(rows[0]["contexts"] or "[]")
        return report.get("findings", []), contexts

    def figures(self, submission_id: int) -> dict[str, Any]:
        """The recalculated values and cross-rule cell places of a submission, as jobs.save stored them."""
        rows = self.query("SELECT figures FROM submission WHERE id = ?", (submission_id,))
        return json.loads(rows[0]["figures"]) if rows and rows[0]["figures"] else {}

    def counts(self) -> dict[str, int]:
        rows = self.query("SELECT state, COUNT(*) AS n FROM submission GROUP BY state")
        return {r["state"]: r["n"] for r in rows}
