"""template --units: each shape written once, every unit's file patched from it, byte for byte the direct write."""

from __future__ import annotations

import errno
import functools
import json
import os
import random
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import openpyxl
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import fill  # noqa: E402
from published import corrected_dept_inputs  # noqa: E402
from seed_data import DEPT_IDENTITY  # noqa: E402

from xlsx_kpi.audit.reader import read_workbook  # noqa: E402
from xlsx_kpi.batch.check import Options, check_file  # noqa: E402
from xlsx_kpi.cli import main  # noqa: E402
from xlsx_kpi.errors import XlsxKpiError  # noqa: E402
from xlsx_kpi.formats.catalog import load_specs  # noqa: E402
from xlsx_kpi.formats.identity import fingerprint, identity_digest  # noqa: E402
from xlsx_kpi.formats.layout import build_layout  # noqa: E402
from xlsx_kpi.formats.plan import Identity  # noqa: E402
from xlsx_kpi.formats.spec import Catalog  # noqa: E402
from xlsx_kpi.formats.units import parse_rows, read_targets  # noqa: E402
from xlsx_kpi.ooxml.splice import Spliceable  # noqa: E402
from xlsx_kpi.outputs import template_batch  # noqa: E402
from xlsx_kpi.outputs.dump import dump_workbook  # noqa: E402
from xlsx_kpi.outputs.template import generate, shaped, template_filename, write_template  # noqa: E402
from xlsx_kpi.outputs.template_batch import BatchWriter  # noqa: E402


def direct(catalog: Catalog, ident: Identity, wid: str, path: Path, password: str | None = None) -> bytes:
    """The template XlsxWriter writes for the unit on its own (the path before batches were patched)."""
    return write_template(build_layout(catalog, catalog.workbook(wid), ident), path, password=password).read_bytes()


def batch(catalog: Catalog, wid: str, idents: list[Identity], folder: Path) -> tuple[BatchWriter, list[bytes]]:
    folder.mkdir()
    writer = BatchWriter(catalog, catalog.workbook(wid), functools.partial(write_template, force=True))
    for i, ident in enumerate(idents):
        writer.write(ident, folder / f"{i}.xlsx")
    return writer, [(folder / f"{i}.xlsx").read_bytes() for i in range(len(idents))]


def meta(path: Path) -> dict[str, str]:
    return {str(k): str(v or "") for k, v in openpyxl.load_workbook(path)["_xlsx_kpi"].iter_rows(values_only=True)}


def test_two_units_of_one_shape_are_patched_to_exactly_the_direct_templates(catalog: Catalog, tmp_path: Path) -> None:
    second = Identity(year=2021, unit_name="资阳市安岳县农业农村局", unit_code="301002")
    writer, made = batch(catalog, "sc-department", [DEPT_IDENTITY, second], tmp_path / "batch")
    # One XlsxWriter write (the probe) for both units; only the first unit's own layout is built and compared.
    assert (writer.patched, len(writer.probes), writer.layouts) == (2, 1, 1)
    for i, ident in enumerate([DEPT_IDENTITY, second]):
        assert made[i] == direct(catalog, ident, "sc-department", tmp_path / f"direct{i}.xlsx")
    a, b = (dump_workbook(tmp_path / "batch" / f"{i}.xlsx") for i in range(2))
    assert a == dump_workbook(tmp_path / "direct0.xlsx") and b == dump_workbook(tmp_path / "direct1.xlsx")
    # The two files differ where the unit is named, and there only.
    assert b["附件2"]["cells"]["C3"][0] == "资阳市安岳县农业农村局" and b["附件2"]["cells"]["F3"][0] == "301002"
    assert a["附件2"]["cells"]["C3"][0] == "资阳市科学技术协会"
    assert b["填表说明"]["cells"]["B3"][0] == "资阳市安岳县农业农村局"
    assert meta(tmp_path / "batch" / "1.xlsx")["unit_name"] == "资阳市安岳县农业农村局"
    assert meta(tmp_path / "batch" / "1.xlsx")["identity"] != meta(tmp_path / "batch" / "0.xlsx")["identity"]
    assert meta(tmp_path / "batch" / "1.xlsx")["fingerprint"] == meta(tmp_path / "batch" / "0.xlsx")["fingerprint"]


def test_names_that_wrap_other_years_and_odd_names_still_match_the_direct_write(
    catalog: Catalog, tmp_path: Path
) -> None:
    long_name = "四川省资阳市雁江区人民政府办公室机关事务服务中心（资阳市雁江区接待办公室）"
    idents = [
        Identity(year=2021, unit_name="甲", unit_code="1"),  # "1" is already a shared string of the template
        Identity(year=2021, unit_name="研究所&合作社", unit_code="015001"),  # & is written as &amp;
        Identity(year=2021, unit_name=long_name, unit_code="301003"),  # taller title rows: a second shape
        Identity(year=2022, unit_name="资阳市科学技术协会", unit_code="156001"),  # another year: a third
        Identity(year=2021, unit_name="单位名称", unit_code="301004"),  # a string the template already has
        Identity(year=2021, unit_name="<r>乙</r>", unit_code="301005"),  # not plain: XlsxWriter's rich text
        Identity(year=2021, unit_name="丙单位", unit_code="301006"),
    ]
    writer, made = batch(catalog, "sc-department", idents, tmp_path / "batch")
    for i, ident in enumerate(idents):
        assert made[i] == direct(catalog, ident, "sc-department", tmp_path / f"direct{i}.xlsx"), ident
    # Code "1" and name "单位名称" would share a string the template has, "<r>乙</r>" is not plain: these three
    # are written directly (XlsxWriter would have numbered their shared strings differently).
    assert writer.patched == 4
    assert len([p for p in writer.probes.values() if p is not None]) == 3
    # Layouts built: the first unit of each class (甲, the long name, 2022; 甲's serves its direct write too)
    # and the other two written directly.
    assert writer.layouts == 5
    assert meta(tmp_path / "batch" / "1.xlsx")["unit_name"] == "研究所&合作社"


def test_project_units_with_rows_and_targets_go_through_their_own_shapes(catalog: Catalog, tmp_path: Path) -> None:
    wb = catalog.workbook("sc-project")
    targets = tmp_path / "绩效目标.csv"
    targets.write_text(
        "预算单位编码,项目名称,二级指标,三级指标,预算指标值\n"
        "015001,天府科技云,数量指标,科技志愿服务活动场次,≥12场\n"
        "015001,天府科技云,满意度指标,服务对象满意度,≥90%\n",
        encoding="utf-8",
    )
    approved = read_targets(targets)
    plain = [
        Identity(year=2021, unit_name="资阳市科学技术协会", unit_code="156001", project_name="“科创会”专项经费"),
        Identity(year=2021, unit_name="资阳市农业农村局", unit_code="301002", project_name="高标准农田建设"),
    ]
    rows = Identity(
        year=2021, unit_name="资阳市水务局", unit_code="301007", project_name="河湖治理", project_type="民生保障"
    )
    with_targets = Identity(year=2021, unit_name="资阳市科学技术协会", unit_code="015001", project_name="天府科技云")
    idents = [
        *(shaped(catalog, wb, i, [], approved) for i in plain),
        shaped(catalog, wb, rows, parse_rows("数量=12,质量=4"), approved),
        shaped(catalog, wb, with_targets, [], approved, targets_file="绩效目标.csv"),
    ]
    assert [len(i.approved) for i in idents] == [0, 0, 0, 2]
    out = tmp_path / "out"
    paths = generate(catalog, wb, idents, out)
    assert [p.name for p in paths] == [template_filename(wb, i) for i in idents]
    for i, (ident, path) in enumerate(zip(idents, paths, strict=True)):
        assert path.read_bytes() == direct(catalog, ident, "sc-project", tmp_path / f"direct{i}.xlsx"), path.name
    assert json.loads(meta(paths[2])["rows"]) == {"tgt.qty": 12, "tgt.quality": 4}
    assert json.loads(meta(paths[3])["approved"])[0] == ["tgt.qty", "科技志愿服务活动场次", "≥12场"]
    prints = [meta(p)["fingerprint"] for p in paths]
    assert prints[0] == prints[1] == fingerprint(build_layout(catalog, wb, idents[0]))
    assert len(set(prints)) == 3  # the rows and the targets each change the layout
    assert sorted(out.iterdir()) == sorted(paths)  # no staging folder or probe left behind


def test_a_filled_patched_template_is_read_back_and_passes_check(catalog: Catalog, tmp_path: Path) -> None:
    """The identity digest and fingerprint patched into a unit's file are the ones the reader recomputes."""
    first = Identity(year=2021, unit_name="资阳市安岳县农业农村局", unit_code="301002")
    wb = catalog.workbook("sc-department")
    paths = generate(catalog, wb, [first, DEPT_IDENTITY], tmp_path / "out")
    stored = meta(paths[1])
    assert stored["identity"] == identity_digest(stored)
    layout = build_layout(catalog, wb, DEPT_IDENTITY)
    filled = fill(paths[1], layout, corrected_dept_inputs(), tmp_path / "filled.xlsx")
    filing = read_workbook(filled, catalog)
    assert (filing.meta["unit_name"], filing.meta["unit_code"]) == ("资阳市科学技术协会", "156001")
    report = check_file(filled, catalog, Options(annotate=False))
    assert report.error is None and report.counts["错误"] == 0 and report.status == "通过"
    assert main(["check", str(filled), "--no-annotate"]) == 0
    # A hand edit of the patched identity sheet is still caught.
    book = openpyxl.load_workbook(filled)
    book["_xlsx_kpi"]["B7"] = "资阳市另一个单位"
    book.save(tmp_path / "edited.xlsx")
    edited = check_file(tmp_path / "edited.xlsx", catalog, Options(annotate=False))
    assert "与其校验值不符" in (edited.error or "")


def test_a_large_batch_is_written_by_a_pool_of_processes(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(template_batch, "POOL_MIN", 3)
    monkeypatch.setattr(template_batch, "CHUNK", 2)
    monkeypatch.setattr(template_batch, "MAX_WORKERS", 2)
    idents = [Identity(year=2021, unit_name=f"资阳市第{i}中学", unit_code=f"30{i:04d}") for i in range(5)]
    assert template_batch.workers_for(len(idents)) == min(2, os.cpu_count() or 1)
    paths = generate(catalog, catalog.workbook("cn-department"), idents, tmp_path / "out", password="绩效科")
    for i, (ident, path) in enumerate(zip(idents, paths, strict=True)):
        assert path.read_bytes() == direct(catalog, ident, "cn-department", tmp_path / f"d{i}.xlsx", "绩效科")
    assert b'workbookPassword="' in zipfile.ZipFile(paths[4]).read("xl/workbook.xml")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)


def test_random_names_of_every_width_match_the_direct_write(catalog: Catalog, tmp_path: Path) -> None:
    """Names and project names from 1 to 60 characters, CJK and Latin, with spaces, & and quotes inside."""
    rng = random.Random(14)
    alphabet = "资阳市安岳县乐至农业科技局中心（）“”·& AbcXYZ0123456789-_."
    idents = []
    for _ in range(12):
        name = "".join(rng.choice(alphabet) for _c in range(rng.randint(1, 60))).strip() or "甲"
        project = "".join(rng.choice(alphabet) for _c in range(rng.randint(1, 40))).strip() or "乙"
        idents.append(
            Identity(year=2021, unit_name=name, unit_code=f"{rng.randint(0, 999999):06d}", project_name=project)
        )
    writer, made = batch(catalog, "sc-project", idents, tmp_path / "batch")
    for i, ident in enumerate(idents):
        assert made[i] == direct(catalog, ident, "sc-project", tmp_path / f"direct{i}.xlsx"), ident
    assert writer.patched == 12 and writer.layouts < 12


def test_one_unit_is_written_directly_and_a_full_disk_names_the_units_file(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wb = catalog.workbook("sc-department")
    [one] = generate(catalog, wb, [DEPT_IDENTITY], tmp_path / "one")
    assert one.read_bytes() == direct(catalog, DEPT_IDENTITY, "sc-department", tmp_path / "direct.xlsx")

    def full_disk(file: object, mode: str = "r", *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(template_batch, "open", full_disk, raising=False)  # the patched files' writes only
    second = Identity(year=2021, unit_name="资阳市安岳县农业农村局", unit_code="301002")
    out = tmp_path / "out"
    with pytest.raises(XlsxKpiError) as caught:
        generate(catalog, wb, [DEPT_IDENTITY, second], out)
    name = template_filename(wb, DEPT_IDENTITY)
    assert caught.value.render() == f"文件 {out / name}：无法写入：磁盘空间不足（No space left on device）"
    assert list(out.iterdir()) == []  # no staging folder, no probe


def test_a_formula_that_reads_the_units_code_is_recalculated_for_every_unit(tmp_path: Path) -> None:
    """Specs are data: a formula may test a unit's code, not just print it. Each unit's results are checked."""
    specs = tmp_path / "sheets"
    specs.mkdir()
    for f in Path(load_specs().sheets["sc-dept-score"].path).parent.glob("*.yaml"):
        (specs / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    score = specs / "sc-dept-score.yaml"
    printed = "expr: '\"预算单位编码：\"&info.unit_code'"
    tested = 'expr: \'IF(info.unit_code="156001","预算单位编码：本级","预算单位编码："&info.unit_code)\''
    assert printed in score.read_text(encoding="utf-8")
    score.write_text(score.read_text(encoding="utf-8").replace(printed, tested), encoding="utf-8")
    catalog = load_specs(specs)
    idents = [
        Identity(year=2021, unit_name="资阳市安岳县农业局", unit_code="301002"),  # the class's first: compared whole
        Identity(year=2021, unit_name="资阳市科学技术协会", unit_code="156001"),  # same class: its results differ
        Identity(year=2021, unit_name="资阳市乐至县水务局", unit_code="301003"),
    ]
    writer, made = batch(catalog, "sc-department", idents, tmp_path / "batch")
    for i, ident in enumerate(idents):
        assert made[i] == direct(catalog, ident, "sc-department", tmp_path / f"direct{i}.xlsx"), ident
    assert (writer.patched, writer.layouts) == (2, 2)  # 156001 written directly, with its own layout
    cached = openpyxl.load_workbook(tmp_path / "batch" / "1.xlsx", data_only=True)["附件1"]["E3"].value
    assert cached == "预算单位编码：本级"  # patched from the probe, it would have said 预算单位编码：156001
    # 156001 first: it does not match the probe, so the next unit of its class is compared whole and patched.
    writer, made = batch(catalog, "sc-department", [idents[1], idents[0], idents[2]], tmp_path / "again")
    assert made == [(tmp_path / f"direct{i}.xlsx").read_bytes() for i in (1, 0, 2)]
    assert (writer.patched, writer.layouts) == (2, 2)


def test_the_splice_copies_a_zipfile_zip_exactly_and_refuses_other_zips(dept_template: Path) -> None:
    data = dept_template.read_bytes()
    package = Spliceable(data)
    assert package.replaced({}) == data  # nothing replaced: the very same bytes
    sheet = package.texts["xl/worksheets/sheet1.xml"]
    copy = package.replaced({"xl/worksheets/sheet1.xml": sheet.replace(b"</worksheet>", b" </worksheet>")})
    with zipfile.ZipFile(BytesIO(copy)) as zf:
        assert zf.testzip() is None and zf.read("xl/worksheets/sheet1.xml").endswith(b" </worksheet>")
        assert zf.namelist() == zipfile.ZipFile(dept_template).namelist()
    commented = BytesIO()
    with zipfile.ZipFile(commented, "w") as zf:
        zf.comment = b"written elsewhere"
        zf.writestr("a.xml", b"<a/>")
    with pytest.raises(ValueError, match="end record"):
        Spliceable(commented.getvalue())
