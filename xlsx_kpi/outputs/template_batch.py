"""Templates for many units: each shape written once by XlsxWriter, every unit's file patched from it.

A shape is what decides a template's layout: workbook kind, year, project type, contact, indicator rows,
approved targets, which identity fields are empty, and the row heights the texts need. For each shape the
template is written once by the ordinary writer (`write_template`) for a *probe* identity whose unit name,
code and project name are tokens of private-use characters as wide as the first unit's values (so the
probe's rows are as tall). A unit's file is then the probe's zip with the tokens (and the identity digest)
replaced by the unit's values in the few parts that hold them (shared strings, core and custom properties,
the cached results of formulas that print them); every other member is copied still compressed.

What is checked: the first unit of each class (same shape, same row heights asked for by its texts) has its
own layout built, recalculated and compared with the probe's, cell by cell, with the tokens replaced; every
other unit's formula results are recalculated on the probe's layout and compared the same way; every unit's
shared strings must stay distinct (else XlsxWriter would have numbered them differently) and its values
must be plain text that XlsxWriter writes as is. The patched file is then byte for byte the one
`write_template` writes for the unit (tests/test_template_batch.py compares them, names of every width
included); any other unit is written by `write_template` itself.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path

from xlsx_kpi.audit.recalc import prefilled, recalculate
from xlsx_kpi.errors import XlsxKpiError, os_reason
from xlsx_kpi.formats import expr
from xlsx_kpi.formats.identity import identity_digest, identity_rows
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import Identity, SheetLayout, WorkbookLayout
from xlsx_kpi.formats.sheet_builder import SheetBuilder
from xlsx_kpi.formats.spec import Catalog, WorkbookSpec
from xlsx_kpi.formats.widths import display_width
from xlsx_kpi.ooxml.splice import Spliceable

# The identity fields that differ from unit to unit within one shape; every other field is part of the shape.
FIELDS = ("unit_name", "unit_code", "project_name")
MAX_VALUE = 100  # longer values are written directly (a token as wide stays under the 255-character property limit)
POOL_MIN = 3000  # fewer are written in this process (~2 ms each): two workers cost ~1.2 s of CPU to start
MAX_WORKERS = 4
CHUNK = 25  # units handed to a worker at a time
PAD = "\ue0ff"  # a token is a private-use head character (one per field) padded to the value's display width
# XlsxWriter escapes a literal "_x0041_" in a shared string as "_x005F_x0041_": a value must not form one.
ESCAPE_LIKE = re.compile(rb"_x[0-9A-Fa-f]{4}_")

# Writes the template of a layout to a path, as `write_template(layout, path, password=..., force=True)` does.
DirectWriter = Callable[[WorkbookLayout, Path], object]


def plain(value: str) -> bool:
    """A value XlsxWriter writes unchanged but for &amp;: no control, private-use or surrogate character,
    no < or > (a shared string "<r>…</r>" is taken as rich text), no space at either end, not too long."""
    if not value or len(value) > MAX_VALUE or value != value.strip() or "<" in value or ">" in value:
        return False
    return not any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs") for ch in value)


def escaped(value: str) -> bytes:
    """A plain value as XlsxWriter writes it in a text node (its `_escape_data`)."""
    return value.replace("&", "&amp;").encode("utf-8")


def with_fields(ident: Identity, values: Mapping[str, str]) -> Identity:
    """The identity with some of FIELDS replaced."""
    return dataclasses.replace(
        ident,
        unit_name=values.get("unit_name", ident.unit_name),
        unit_code=values.get("unit_code", ident.unit_code),
        project_name=values.get("project_name", ident.project_name),
    )


def heights(layout: WorkbookLayout) -> tuple[tuple[tuple[int, float], ...], ...]:
    return tuple(tuple(sorted(sl.row_heights.items())) for sl in layout.sheets)


def blanked(ident: Identity) -> Identity:
    """The identity with each varying field reduced to whether it is filled: what units of one shape share."""
    return with_fields(ident, {f: "*" if getattr(ident, f) else "" for f in FIELDS})


def shape_key(ident: Identity, layout: WorkbookLayout) -> Hashable:
    """Units with the same key share a probe: the blanked identity and the row heights of the unit's layout."""
    return (blanked(ident), heights(layout))


class Probe:
    """The template of one shape, written once with tokens, and what a unit's file changes in it."""

    def __init__(self, layout: WorkbookLayout, values: Mapping[str, expr.Value], data: bytes, tokens: dict[str, str]):
        self.layout = layout
        self.values = values
        self.tokens = tokens  # token -> field
        self.text_pattern = re.compile("|".join(re.escape(t) for t in tokens))
        self.rows = identity_rows(layout)
        digest = self.rows[-1][1]
        assert self.rows[-1][0] == "identity"
        self.digest = digest.encode()
        self.byte_keys = [t.encode("utf-8") for t in tokens] + [self.digest]
        self.byte_pattern = re.compile(b"(" + b"|".join(re.escape(k) for k in self.byte_keys) + b")")
        self.token_cells = [
            [i for i, c in enumerate(sl.cells) if c.text and self.text_pattern.search(c.text)] for sl in layout.sheets
        ]
        self.token_values = {k for k, v in values.items() if isinstance(v, str) and self.text_pattern.search(v)}
        # The inputs holding a token and the formulas that read them, directly or not, in evaluation order.
        inputs = prefilled(layout)
        self.token_inputs = {k: v for k, v in inputs.items() if isinstance(v, str) and self.text_pattern.search(v)}
        self.touched = set(self.token_inputs)
        self.dependent = []
        for cell in layout.formulas():
            assert cell.key is not None and cell.expr is not None
            if expr.parse(cell.expr).names() & self.touched:
                self.touched.add(cell.key)
                self.dependent.append((cell.key, cell.expr))
        self.package = Spliceable(data)
        # The members that hold a token or the digest, split around them: fixed text, key, fixed text, ...
        self.parts = {
            name: self.byte_pattern.split(text)
            for name, text in self.package.texts.items()
            if self.byte_pattern.search(text)
        }
        self.check_parts()
        sst = self.texts.get("xl/sharedStrings.xml", b"")
        entries = re.findall(rb"<si>(.*?)</si>", sst, re.DOTALL)
        unique = re.search(rb'<sst [^>]*uniqueCount="(\d+)"', sst)
        if unique is None or int(unique.group(1)) != len(entries):
            raise ValueError("shared strings not as XlsxWriter writes them")
        self.varying_strings = [self.byte_pattern.split(e) for e in entries if self.byte_pattern.search(e)]
        self.fixed_strings = {e for e in entries if not self.byte_pattern.search(e)}
        if len(entries) != len(set(entries)):
            raise ValueError("shared strings repeat")

    @property
    def texts(self) -> dict[str, bytes]:
        """The members a unit patches, as the probe has them."""
        return {name: self.package.texts[name] for name in self.parts}

    def check_parts(self) -> None:
        """Tokens only in text nodes (never in an attribute or a name), the digest only as the identity row's value."""
        for name, text in self.texts.items():
            for m in self.byte_pattern.finditer(text):
                before = text[: m.start()]
                if before.rfind(b"<") > before.rfind(b">"):
                    raise ValueError(f"a token inside a tag of {name}")
        digest_places = sum(text.count(self.digest) for text in self.texts.values())
        custom = self.texts.get("docProps/custom.xml", b"")
        sst = self.texts.get("xl/sharedStrings.xml", b"")
        expected = custom.count(b">" + self.digest + b"<") + sst.count(b"<t>" + self.digest + b"</t>")
        if digest_places != expected or expected == 0:
            raise ValueError("the identity digest also appears elsewhere")

    # -- a unit --------------------------------------------------------------------------------
    def matches(self, ident: Identity, layout: WorkbookLayout, values: Mapping[str, expr.Value]) -> bool:
        """Whether the unit's own layout, values and identity rows are the probe's with the tokens replaced."""
        sub = self.substitution(ident)
        if not self.same_layout(layout, sub) or not self.same_values(values, sub):
            return False
        rows = identity_rows(layout)
        if len(rows) != len(self.rows) or rows[-1][1] != self.digest_of(sub):
            return False
        pairs = zip(self.rows, rows, strict=True)
        return all(kp == kr and (kp == "identity" or sub(vp) == vr) for (kp, vp), (kr, vr) in pairs)

    def substitution(self, ident: Identity) -> Callable[[str], str]:
        real = {t: getattr(ident, f) for t, f in self.tokens.items()}
        return lambda text: self.text_pattern.sub(lambda m: real[m.group()], text)

    def digest_of(self, sub: Callable[[str], str]) -> str:
        """The unit's identity digest: the probe's identity rows with the tokens replaced, hashed."""
        return identity_digest({k: sub(v) for k, v in self.rows[:-1]})

    def same_results(self, ident: Identity) -> bool:
        """Whether the unit's inputs give the probe's formula results with the tokens replaced: a spec may compute
        from the unit's name or code (a length check, a count of problems), which no layout comparison sees."""
        sub = self.substitution(ident)
        values = dict(self.values)  # recalculate(), but only for what the unit's texts can change
        for key, text in self.token_inputs.items():
            values[key] = sub(text)
        lookup = values.get
        for key, source in self.dependent:
            values[key] = expr.evaluate(expr.parse(source), lookup)
        return all(self.same_value(key, values[key], sub) for key in self.touched)

    def needs(self, ident: Identity) -> Hashable:
        """The row heights the unit's own texts ask for, per sheet: the probe's cells that hold a token, with the
        unit's values, sized by the layout's own `heights` (every other cell is the same for every unit)."""
        sub = self.substitution(ident)
        out: list[tuple[tuple[int, float], ...]] = []
        for sl, marked in zip(self.layout.sheets, self.token_cells, strict=True):
            if not marked:
                out.append(())
                continue
            builder = SheetBuilder(sl.spec, self.layout.spec, self.layout.identity)
            builder.layout = SheetLayout(spec=sl.spec, name=sl.name)
            builder.layout.cells = [dataclasses.replace(sl.cells[i], text=sub(sl.cells[i].text or "")) for i in marked]
            builder.heights()
            out.append(tuple(sorted(builder.layout.row_heights.items())))
        return tuple(out)

    def patch(self, ident: Identity) -> bytes | None:
        """The unit's file; None when its shared strings would not keep the probe's numbering."""
        replace = {t.encode("utf-8"): escaped(getattr(ident, f)) for t, f in self.tokens.items()}
        replace[self.digest] = self.digest_of(self.substitution(ident)).encode()

        def sub_bytes(parts: list[bytes]) -> bytes:
            # parts: fixed text, a token, fixed text, ... (re.split with the token group), so no search per unit
            return b"".join(replace[p] if i % 2 else p for i, p in enumerate(parts))

        strings = [sub_bytes(e) for e in self.varying_strings]
        if len(set(strings)) != len(strings) or not self.fixed_strings.isdisjoint(strings):
            return None  # XlsxWriter would have merged two shared strings: another string table
        if any(ESCAPE_LIKE.search(s) for s in strings):
            return None
        return self.package.replaced({name: sub_bytes(parts) for name, parts in self.parts.items()})

    def same_layout(self, layout: WorkbookLayout, sub: Callable[[str], str]) -> bool:
        probe = self.layout
        if (
            layout.spec is not probe.spec
            or len(layout.sheets) != len(probe.sheets)
            or layout.refs != probe.refs
            or layout.readings != probe.readings
            or layout.groups != probe.groups
        ):
            return False
        return all(
            self.same_sheet(sp, sr, marked, sub)
            for sp, sr, marked in zip(probe.sheets, layout.sheets, self.token_cells, strict=True)
        )

    @staticmethod
    def same_sheet(sp: SheetLayout, sr: SheetLayout, marked: list[int], sub: Callable[[str], str]) -> bool:
        if (
            sp.spec is not sr.spec
            or sp.name != sr.name
            or sp.row_heights != sr.row_heights
            or sp.checks != sr.checks
            or sp.repeat_rows != sr.repeat_rows
            or sp.last_row != sr.last_row
            or sp.groups != sr.groups
            or len(sp.cells) != len(sr.cells)
        ):
            return False
        tokens = set(marked)
        for i, (cp, cr) in enumerate(zip(sp.cells, sr.cells, strict=True)):
            if i in tokens:
                if dataclasses.replace(cp, text=sub(cp.text or "")) != cr:
                    return False
            elif cp != cr:
                return False
        return True

    def same_values(self, values: Mapping[str, expr.Value], sub: Callable[[str], str]) -> bool:
        return values.keys() == self.values.keys() and all(self.same_value(k, v, sub) for k, v in values.items())

    def same_value(self, key: str, value: expr.Value, sub: Callable[[str], str]) -> bool:
        """The unit's value of `key` is the probe's, with the tokens replaced in a text that holds one."""
        probe = self.values[key]
        if key in self.token_values:
            return isinstance(value, str) and sub(str(probe)) == value
        return type(probe) is type(value) and probe == value


class BatchWriter:
    """Writes the templates of one workbook kind for many units, each shape's through one probe.

    A unit's own layout is built and checked against the probe only for the first unit of each *class*: the
    blanked identity and the row heights the unit's texts ask for (Probe.needs). build_layout puts the unit
    name, code and project name into cells only as text, and that text changes nothing but the rows' heights,
    so units of one class have the probe's layout with their own texts. The rest of a class is patched directly.
    """

    def __init__(self, catalog: Catalog, wb: WorkbookSpec, write: DirectWriter) -> None:
        self.catalog = catalog
        self.wb = wb
        self.direct = write
        self.probes: dict[Hashable, Probe | None] = {}  # by shape
        self.first: dict[Identity, Probe] = {}  # a probe of each blanked identity: which cells hold tokens
        self.classes: dict[Hashable, Probe] = {}  # the probe the first matching unit of a class matched
        self.layouts = 0  # units' layouts built (first of a class, or written directly)
        self.patched = 0  # units whose file was patched from a probe (the rest were written directly)

    def write(self, ident: Identity, path: Path) -> None:
        layout: WorkbookLayout | None = None
        probe: Probe | None = None
        if all(plain(getattr(ident, f)) for f in FIELDS if getattr(ident, f)):
            shape = blanked(ident)
            first = self.first.get(shape)
            cls = (shape, first.needs(ident)) if first is not None else None
            if cls is not None and cls in self.classes:
                probe = self.classes[cls]
                if not probe.same_results(ident):
                    probe = None
            else:
                layout = self.layout(ident)
                probe = self.matching(ident, layout, path.parent)
                if probe is not None:  # a unit that does not match leaves its class to the next one to try
                    first = self.first.setdefault(shape, probe)
                    self.classes[(shape, first.needs(ident))] = probe
        data = probe.patch(ident) if probe is not None else None
        if data is None:
            self.direct(layout or self.layout(ident), path)
            return
        with open(path, "wb") as fh:
            fh.write(data)
        self.patched += 1

    def layout(self, ident: Identity) -> WorkbookLayout:
        self.layouts += 1
        return build_layout(self.catalog, self.wb, ident)

    def matching(self, ident: Identity, layout: WorkbookLayout, scratch: Path) -> Probe | None:
        """The probe of the unit's shape if the unit's layout, values and identity rows are the probe's."""
        key = shape_key(ident, layout)
        if key not in self.probes:
            self.probes[key] = self.probe(ident, scratch)
        probe = self.probes[key]
        if probe is None or not probe.matches(ident, layout, recalculate(layout, prefilled(layout))):
            return None
        return probe

    def probe(self, ident: Identity, scratch: Path) -> Probe | None:
        """The shape's template written for tokens as wide as this unit's values; None if it cannot be patched."""
        tokens: dict[str, str] = {}
        changes: dict[str, str] = {}
        for i, f in enumerate(FIELDS):
            value = getattr(ident, f)
            if value:
                token = chr(0xE000 + i) + PAD * (display_width(value) - 1)
                tokens[token] = f
                changes[f] = token
        if not tokens:
            return None  # nothing varies: a direct write is as fast
        probe_ident = with_fields(ident, changes)
        probe_layout = build_layout(self.catalog, self.wb, probe_ident)
        values = recalculate(probe_layout, prefilled(probe_layout))
        with tempfile.TemporaryDirectory(prefix=".xlsx-kpi-probe-", dir=scratch) as tmp:
            target = Path(tmp) / "probe.xlsx"
            self.direct(probe_layout, target)
            data = target.read_bytes()
        try:
            return Probe(probe_layout, values, data, tokens)
        except ValueError:  # a zip or a shared string table not as expected: every unit written directly
            return None


class DirectOnly(BatchWriter):
    """Writes every template with XlsxWriter (one unit alone: a probe would only add work)."""

    def write(self, ident: Identity, path: Path) -> None:
        self.direct(self.layout(ident), path)


# -- many units, in a pool of processes when there are many ---------------------------------------
_worker: BatchWriter | None = None


def _start(catalog: Catalog, wb: WorkbookSpec, write: DirectWriter) -> None:
    global _worker
    _worker = BatchWriter(catalog, wb, write)


def _write_chunk(jobs: list[tuple[Identity, Path, str]]) -> tuple[str, str | None, str | None] | None:
    """Write a chunk of templates in a worker; an error the user can act on comes back as its parts."""
    assert _worker is not None
    try:
        for ident, path, shown in jobs:
            write_one(_worker, ident, path, shown)
    except XlsxKpiError as e:
        return (e.message, e.file, e.cell)
    return None


def write_one(writer: BatchWriter, ident: Identity, path: Path, shown: str) -> None:
    """One unit's template; a failing disk is reported with the file the user will look for (`shown`)."""
    try:
        writer.write(ident, path)
    except OSError as e:
        raise XlsxKpiError(f"无法写入：{os_reason(e)}", file=shown) from None
    except XlsxKpiError as e:
        if e.file is None or not Path(e.file).is_relative_to(path.parent):
            raise
        # The staging folder's copy (or the shape's probe in it) is not a file the user knows about.
        raise type(e)(e.message, file=shown, cell=e.cell) from None


def workers_for(count: int) -> int:
    if count < POOL_MIN:
        return 1
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def write_batch(
    catalog: Catalog, wb: WorkbookSpec, jobs: list[tuple[Identity, Path, str]], write: DirectWriter
) -> None:
    """Write each (identity, path) job's template; `shown` is the path named in a message. Stops at the first error."""
    if len(jobs) == 1:  # a probe pays off from the second unit on
        ident, path, shown = jobs[0]
        write_one(DirectOnly(catalog, wb, write), ident, path, shown)
        return
    workers = workers_for(len(jobs))
    if workers == 1:
        writer = BatchWriter(catalog, wb, write)
        for ident, path, shown in jobs:
            write_one(writer, ident, path, shown)
        return
    import multiprocessing  # only for a batch this large: `check` imports this module (styles) but no pool
    from concurrent.futures import Future, ProcessPoolExecutor

    chunks = [jobs[i : i + CHUNK] for i in range(0, len(jobs), CHUNK)]
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start, initargs=(catalog, wb, write)
    )
    try:
        futures: list[Future[tuple[str, str | None, str | None] | None]] = [
            pool.submit(_write_chunk, chunk) for chunk in chunks
        ]
        for future in futures:
            error = future.result()
            if error is not None:
                raise XlsxKpiError(*error)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
