"""Load the sheets/ folder into a validated Catalog: the specs parsed, cross-checked and laid out once (cached)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

from xlsx_kpi import __version__
from xlsx_kpi.errors import SpecError
from xlsx_kpi.formats import expr
from xlsx_kpi.formats.expr.syntax import remember
from xlsx_kpi.formats.layout import build_layout, check_catalog
from xlsx_kpi.formats.plan import Identity, WorkbookLayout
from xlsx_kpi.formats.spec import Catalog, IndicatorsBlock, SheetSpec, WorkbookSpec, default_dir

__all__ = ["CACHE_ENV", "CACHE_KEEP", "cache_dir", "layout_of", "load_data", "load_specs"]


def load_specs(directory: Path | None = None) -> Catalog:
    """Load every sheets/*.yaml and check the cross-file references.

    The validated catalog is kept in a cache (cache_dir()) keyed by the specs' bytes, paths and the tool's
    version: a later run unpickles it instead of validating every spec and laying every workbook out again
    (0.1-0.5 s, paid by every command). An unreadable or stale cache is ignored and rewritten.
    """
    directory = directory or default_dir()
    paths = sorted(directory.glob("*.yaml"))
    key, where = _cache_key(directory, paths)
    if where is not None:
        cached = _read_cache(where, key)
        if isinstance(cached, Catalog):
            _keep_key(cached, key)
            return cached
    catalog = _load_specs(directory, paths)
    if where is not None:
        _write_cache(where, key, catalog)
        _keep_key(catalog, key)
    return catalog


# The last catalogs load_specs returned from (or wrote to) the cache, by id: (the catalog, kept so its id is not
# reused; its cache key). layout_of caches parsed expressions only for these.
_KEYS: dict[int, tuple[Catalog, str]] = {}
_KEYS_KEPT = 8
# (a catalog's cache key, workbook id) -> the sources whose parsed trees that workbook's cache file holds.
_STORED: dict[tuple[str, str], frozenset[str]] = {}


def _keep_key(catalog: Catalog, key: str) -> None:
    _KEYS[id(catalog)] = (catalog, key)
    while len(_KEYS) > _KEYS_KEPT:  # a server loading the specs per request holds only the last few
        del _KEYS[next(iter(_KEYS))]


def layout_of(catalog: Catalog, wb: WorkbookSpec, identity: Identity) -> WorkbookLayout:
    """build_layout, with the expressions of that kind of workbook parsed in an earlier run read from the cache.

    The first layout of a kind in a process reads the trees its formulas, self-checks and rule readings parsed into
    (one file per kind, next to the catalog, keyed by the catalog's key); a layout that needs a tree not in the
    file (another row count) writes the file again with it. A catalog not from the cache: build_layout alone.
    """
    known = _KEYS.get(id(catalog))
    root = cache_dir()
    if known is None or known[0] is not catalog or root is None:
        return build_layout(catalog, wb, identity)
    key = hashlib.sha256(f"{known[1]}\0{wb.id}".encode()).hexdigest()
    where = root / f"exprs-{key[:24]}.pickle"
    slot = (known[1], wb.id)
    if slot not in _STORED:
        trees = _read_cache(where, key)
        trees = trees if isinstance(trees, list) and all(isinstance(t, expr.Expr) for t in trees) else []
        remember(trees)
        _STORED[slot] = frozenset(t.source for t in trees)
    layout = build_layout(catalog, wb, identity)
    sources = _sources(layout)
    if not sources <= _STORED[slot]:
        everything = _STORED[slot] | sources
        # One kind's few shapes stay well under this; past it (many row counts) keep this layout's only.
        kept = everything if len(everything) <= 4 * len(sources) else sources
        _write_cache(where, key, [expr.parse(s) for s in sorted(kept)])
        _STORED[slot] = frozenset(kept)
    return layout


def _sources(layout: WorkbookLayout) -> frozenset[str]:
    """The expressions a check of this layout parses: formulas, self-checks, rule readings."""
    found = {c.expr for c in layout.formulas() if c.expr is not None}
    found.update(chk.expr for chk in layout.checks())
    for sl in layout.sheets:
        for block in sl.spec.blocks:
            if isinstance(block, IndicatorsBlock):
                for _, _, ind in block.indicators():
                    if ind.rule is not None:
                        found.update(r.expr for r in ind.rule.readings.values())
    return frozenset(found)


def load_data(path: Path) -> Any:
    """A YAML data file of the sheets folder (indicator-quality.yml): parsed once, then read from the cache.

    Keyed like the catalog by the file's bytes and path and the tool's version, so PyYAML (~15 ms to import) is
    not loaded by a `check` the cache serves (issue 14). A bad file raises PyYAML's error, as parsing it did.
    """
    text = path.read_bytes()
    root = cache_dir()
    h = hashlib.sha256(f"{__version__}\0{sys.version}\0{path}\0".encode())
    h.update(text)
    key = h.hexdigest()
    where = root / f"data-{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]}.pickle" if root else None
    if where is not None:
        cached = _read_cache(where, key)
        if cached is not None:
            return cached
    import yaml

    # libyaml's safe loader when PyYAML has it: the pure-Python one takes ~20 ms more.
    data = yaml.load(text.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if where is not None:
        _write_cache(where, key, data)
    return data


CACHE_ENV = "XLSX_KPI_CACHE_DIR"
# Cached catalogs kept (one per sheets folder); past this the least recently written go.
CACHE_KEEP = 16


def cache_dir() -> Path | None:
    """Where catalogs are cached: $XLSX_KPI_CACHE_DIR (empty: no cache), else the user's cache folder."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return Path(chosen) if chosen.strip() else None
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return Path(base) / "xlsx-kpi" / "cache" if base else None
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "xlsx-kpi"


def _cache_key(directory: Path, paths: list[Path]) -> tuple[str, Path | None]:
    """(the content key, the cache file of this folder); no file when caching is off or a spec is unreadable."""
    root = cache_dir()
    h = hashlib.sha256(f"{__version__}\0{sys.version}\0{pickle.HIGHEST_PROTOCOL}\0".encode())
    # The code that defines and validates the models is part of the key too: an edited checkout (same version
    # number) must not unpickle objects of a class that has changed since.
    here = Path(__file__).parent
    try:
        for source in sorted(here.rglob("*.py")):  # spec, layout, the expr package, catalog...
            h.update(hashlib.sha256(source.read_bytes()).digest())
        for path in paths:
            h.update(f"{path}\0".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    except OSError:
        return "", None  # load_file names the unreadable spec
    if root is None:
        return h.hexdigest(), None
    name = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:24]
    return h.hexdigest(), root / f"catalog-{name}.pickle"


def _read_cache(where: Path, key: str) -> Any:
    """What was stored under `key`, or None (no file, another key, unreadable)."""
    try:
        with where.open("rb") as fh:
            stored_key, value = pickle.load(fh)
    except Exception:  # noqa: BLE001 - a missing, truncated or foreign cache file is only a cache miss
        return None
    return value if stored_key == key else None


def _write_cache(where: Path, key: str, value: object) -> None:
    """Write atomically (a temporary file renamed into place); a cache that cannot be written is skipped."""
    tmp: str | None = None
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".catalog.", suffix=".tmp", dir=where.parent)
        with os.fdopen(fd, "wb") as fh:
            pickle.dump((key, value), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, where)
        tmp = None
        kind = where.name.split("-", 1)[0]  # catalog-..., data-...
        old = sorted(where.parent.glob(f"{kind}-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in old[CACHE_KEEP:]:
            stale.unlink(missing_ok=True)
    except (OSError, pickle.PicklingError, RecursionError):
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _load_specs(directory: Path, paths: list[Path]) -> Catalog:
    # Validation (pydantic, PyYAML) only here, when the cache cannot serve: not on a warm `check` (issue 14).
    from xlsx_kpi.formats.spec_schema import load_file

    workbooks: dict[str, WorkbookSpec] = {}
    sheets: dict[str, SheetSpec] = {}
    for path in paths:
        spec = load_file(path)
        target: dict[str, Any] = workbooks if isinstance(spec, WorkbookSpec) else sheets
        if spec.id in target:
            raise SpecError(f"规格 id {spec.id!r} 重复：{path.name} 与 {Path(target[spec.id].path).name}")
        target[spec.id] = spec
    if not workbooks:
        raise SpecError(f"目录 {directory} 中没有表种规格（*.yaml）")
    for wb in workbooks.values():
        for sid in wb.sheets:
            if sid not in sheets:
                raise SpecError(f"{Path(wb.path).name}: sheets 引用了不存在的表 {sid!r}")
            if sheets[sid].workbook != wb.id:
                raise SpecError(f"{Path(sheets[sid].path).name}: workbook 应为 {wb.id!r}")
    workbooks = dict(sorted(workbooks.items(), key=lambda kv: kv[1].order))  # stable: file order within a rank
    catalog = Catalog(workbooks=workbooks, sheets=sheets)
    # Lay every workbook out once so a formula naming a missing cell fails now, not mid-run.
    check_catalog(catalog)
    return catalog
