"""Load test of `xlsx-kpi serve`: 200 workbooks uploaded through 20 units' links by 20 concurrent clients.

Run:  .venv/bin/python benchmarks/bench_serve.py [--uploads 200] [--clients 20] [--workers 2]

Localhost only and bounded: the server is started on 127.0.0.1 on a free port with a fresh data folder,
every client makes a fixed number of requests, the whole run stops after --timeout seconds, and the server
is stopped at the end. Prints: upload response times (p50, p95, max), the time until every upload was
audited, how many uploads were stored and audited (each must be exactly once), and the server's memory
(the server process and its audit workers, RSS) before and after the load.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from decimal import Decimal
from pathlib import Path

import httpx2 as httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from seed_data import DEPT_SCORES, dept_inputs  # noqa: E402

from xlsx_kpi.formats.catalog import load_specs  # noqa: E402
from xlsx_kpi.formats.layout import build_layout  # noqa: E402
from xlsx_kpi.formats.plan import Identity  # noqa: E402
from xlsx_kpi.outputs.template import write_template  # noqa: E402

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def make_workbooks(folder: Path, clients: int, per_client: int) -> dict[int, list[Path]]:
    """Per client (unit): one filled department workbook, copied per upload with a distinct zip comment."""
    catalog = load_specs()
    wb = catalog.workbook("sc-department")
    rng = random.Random(2025)
    out: dict[int, list[Path]] = {}
    for i in range(clients):
        code = f"{900001 + i}"
        ident = Identity(year=2025, unit_name=f"压测单位{i + 1}", unit_code=code)
        inputs = dept_inputs()
        inputs["info.unit_name"], inputs["info.unit_code"] = ident.unit_name, code
        for key, full in DEPT_SCORES.items():
            inputs[f"s.{key}.score"] = Decimal(full) - Decimal(rng.choice([0, 0, 0, 0.5, 1]))
        base = write_template(build_layout(catalog, wb, ident), folder / f"{code}.xlsx", inputs=inputs)
        copies = []
        for k in range(per_client):
            copy = folder / f"2025_{code}_{k:02d}.xlsx"
            copy.write_bytes(base.read_bytes())
            with zipfile.ZipFile(copy, "a") as z:
                z.comment = f"upload {i}-{k}".encode()
            copies.append(copy)
        out[i] = copies
    return out


def rss(pid: int) -> int:
    """Resident memory of the server and its children (the audit workers), in bytes."""
    try:
        proc = psutil.Process(pid)
        return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
    except psutil.Error:
        return 0


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    if not m:
        raise SystemExit("no CSRF field on the page")
    return m.group(1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uploads", type=int, default=200)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds before the run gives up")
    args = ap.parse_args()
    per_client = max(1, args.uploads // args.clients)
    total = per_client * args.clients
    deadline = time.monotonic() + args.timeout

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        files = make_workbooks(tmp / "in", args.clients, per_client) if (tmp / "in").mkdir() is None else {}
        sent_hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for ps in files.values() for p in ps}
        units = tmp / "units.csv"
        units.write_text(
            "预算单位编码,单位名称\n" + "".join(f"{900001 + i},压测单位{i + 1}\n" for i in range(args.clients)),
            encoding="utf-8",
        )
        port = free_port()
        data = tmp / "data"
        exe = Path(sys.executable).with_name("xlsx-kpi")
        server = subprocess.Popen(
            [
                str(exe),
                "serve",
                "--host",
                HOST,
                "--port",
                str(port),
                "--data",
                str(data),
                "--units",
                str(units),
                "--workers",
                str(args.workers),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            code = ""
            assert server.stdout is not None
            while not code:
                line = server.stdout.readline()
                if not line:
                    raise SystemExit("the server stopped: " + (server.stdout.read() or ""))
                m = re.search(r"设置码 ([0-9a-f]+)", line)
                code = m.group(1) if m else ""
            threading.Thread(target=server.stdout.read, daemon=True).start()  # keep the pipe drained
            base = f"http://{HOST}:{port}"
            reviewer = httpx.Client(base_url=base, timeout=60)
            for _ in range(100):
                try:
                    page = reviewer.get("/setup")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            pw = "bench-password"
            reviewer.post("/setup", data={"csrf": csrf(page.text), "code": code, "password": pw, "password2": pw})
            page = reviewer.get("/review/links")
            page = reviewer.post("/review/links", data={"csrf": csrf(page.text), "action": "new"})
            links = re.findall(r'class="url">[^<]*/u/([\w-]+)</td>', page.text)
            assert len(links) == args.clients, f"expected {args.clients} links, got {len(links)}"
            time.sleep(2.0)  # let the audit workers (started with the server) finish loading the specs
            before = rss(server.pid)

            times: list[float] = []
            failures: list[str] = []
            lock = threading.Lock()
            db = sqlite3.connect(f"file:{data / 'web.sqlite'}?mode=ro", uri=True)

            def client(n: int, paths: list[Path]) -> None:
                token = links[n]
                with httpx.Client(base_url=base, timeout=120) as c:
                    form = csrf(c.get(f"/u/{token}").text)
                    for path in paths:
                        if time.monotonic() > deadline:
                            return
                        start = time.perf_counter()
                        r = c.post(
                            f"/u/{token}/upload",
                            data={"csrf": form},
                            files=[("files", (path.name, path.read_bytes(), "application/octet-stream"))],
                            follow_redirects=False,
                        )
                        took = time.perf_counter() - start
                        with lock:
                            times.append(took)
                            if r.status_code != 303:
                                failures.append(f"{path.name}: HTTP {r.status_code}")

            def wave(part: int) -> tuple[float, float]:
                """Half the uploads from every client at once; (seconds to upload, seconds until all audited)."""
                half = (per_client + 1) // 2
                started = time.perf_counter()
                threads = [
                    threading.Thread(target=client, args=(n, files[n][part * half : (part + 1) * half]))
                    for n in range(args.clients)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=max(1.0, deadline - time.monotonic()))
                uploaded = time.perf_counter() - started
                while time.monotonic() < deadline:
                    if db.execute("SELECT COUNT(*) FROM submission WHERE state = 'queued'").fetchone()[0] == 0:
                        break
                    time.sleep(0.5)
                return uploaded, time.perf_counter() - started

            up1, audited1 = wave(0)
            time.sleep(1.0)
            middle = rss(server.pid)
            up2, audited2 = wave(1)
            uploaded, audited_all = up1 + up2, audited1 + audited2
            time.sleep(1.0)
            after = rss(server.pid)
            rows = db.execute("SELECT sha256, state, audits, status FROM submission").fetchall()
            uploads_logged = db.execute("SELECT COUNT(*) FROM event WHERE action = '上传'").fetchone()[0]
            db.close()
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()

    stored = len(rows)
    once = sum(1 for r in rows if r[1] == "done" and r[2] == 1)
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r[3]] = statuses.get(r[3], 0) + 1
    times.sort()
    p95 = times[max(0, int(round(0.95 * len(times))) - 1)] if times else float("nan")
    print(f"uploads sent: {len(times)} of {total} from {args.clients} clients; HTTP failures: {len(failures)}")
    print(
        f"stored: {stored} submissions, {len({r[0] for r in rows} & sent_hashes)} distinct files of {total} sent; "
        f"upload events logged: {uploads_logged}"
    )
    print(f"audited exactly once: {once} of {stored}; statuses: {statuses}")
    print(
        f"upload response time: p50 {statistics.median(times) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {times[-1] * 1000:.0f} ms"
    )
    print(
        f"all uploaded in {uploaded:.1f} s; all audited in {audited_all:.1f} s "
        f"({stored / audited_all:.1f} workbooks/s with {args.workers} workers)"
    )
    print(
        f"server memory (server + workers, RSS): before {before / 2**20:.0f} MB, after the first half "
        f"{middle / 2**20:.0f} MB, after all {after / 2**20:.0f} MB"
    )
    for f in failures[:5]:
        print("  failed:", f)
    ok = not failures and stored == total and once == total
    print("OK" if ok else "PROBLEM")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
