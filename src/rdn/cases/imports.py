"""Importing households from a spreadsheet: CSV, or an XLSX workbook.

Two layouts:

* **One sheet** (CSV, or the first sheet of a workbook): one row per person, a ``case_key`` column grouping
  people into cases. Case columns (``current_country`` ...) are given on every row of the case or only on
  one (the principal applicant's, usually); rows of one case that disagree are an error.
* **Two sheets** (a workbook with sheets named ``cases`` and ``members``): one row per case on ``cases``
  (``case_key`` and the case columns), one row per person on ``members`` (``case_key`` and the member columns).

Header names are trimmed and case-insensitive (spaces may stand for underscores). A row of HXL hashtags right
under the header (as exports write) is skipped, so an export imports back, as new cases; the columns of an
export that an import does not read (stage, dates ...) are skipped with a warning.

Every row is checked by ``rdn.cases.validation``, the rules forms and the API use, and every error of the
whole file is reported (up to :data:`MAX_ERRORS`), each naming its row as a spreadsheet shows it (the header is
row 1) and its column. A file with any error imports nothing. Warnings (people who look like someone already
on one of the organization's cases, or like someone else in the file) never stop an import.

The import is one bulk write in the caller's transaction (services never commit): numbers reserved at once,
rows streamed with ``db.bulk_insert`` (binary ``COPY`` on PostgreSQL), one audit entry per case plus one for
the import, recorded by ``audit.record_many``. Nothing goes through ``service.create_case``, whose per-case
round trips would cap an import at a few hundred people a second.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import re
import uuid
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import Text, cast, func, select, text
from sqlalchemy.orm import Session

from rdn import db
from rdn.cases import columns, names, pipeline, service
from rdn.cases.models import (
    Case,
    CaseImport,
    Member,
    Priority,
    Relationship,
    Section,
    StageEvent,
)
from rdn.cases.pipeline import Stage
from rdn.cases.policy import owner_sections
from rdn.cases.validation import check_household, clean_case, clean_member, clean_preferences
from rdn.core import audit, clock, ids, policy
from rdn.core.errors import FieldError, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.tenancy import Organization

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 500_000
MAX_COLUMNS = 200
MAX_ERRORS = 1000
MAX_WARNINGS = 1000
CHUNK = 5000  # look-alike probes per query
CASES_PER_BATCH = 5000  # cases whose rows are streamed to the database together
_KEPT_ERRORS = 50_000  # errors kept for sorting before the report is cut to MAX_ERRORS
_SIMILAR_SHOWN = 3  # matches named in one warning

#: progress(done, total, phase): phase is "read", "validate", "check" or "write"; total is None while unknown.
Progress = Callable[[int, int | None, str], None]


@dataclass
class ImportReport:
    """What an import found (and did): counts, errors naming row and column, warnings."""

    cases: int = 0
    people: int = 0
    errors: list[FieldError] = field(default_factory=list)
    more_errors: int = 0  # errors beyond those listed
    warnings: list[FieldError] = field(default_factory=list)
    more_warnings: int = 0
    import_id: uuid.UUID | None = None
    dry_run: bool = False
    numbers: tuple[str, str] | None = None  # the first and last case numbers given

    @property
    def ok(self) -> bool:
        return not self.errors and not self.more_errors

    @property
    def imported(self) -> bool:
        return self.import_id is not None


# Reading ------------------------------------------------------------------------------------------------------


@dataclass
class _Sheet:
    """One sheet's rows: (row number as a spreadsheet shows it, cells as text)."""

    label: str  # "" for a CSV or a one-sheet layout, else "cases" / "members"
    rows: list[tuple[int, list[str]]]


_FORMULA_GUARD = re.compile(r"^'(?=[=+\-@\t\r])")  # what an export adds before text a spreadsheet would compute


def _text(value: Any) -> str:
    """A cell as text: numbers without a spurious ``.0``, dates as ISO dates, booleans as true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    return _FORMULA_GUARD.sub("", text) if text[:1] == "'" else text


def _csv_text(cell: str) -> str:
    text = cell.strip()
    return _FORMULA_GUARD.sub("", text) if text[:1] == "'" else text


def _too_many_rows() -> ValidationFailed:
    return ValidationFailed("file", _("has more than %(high)s rows: split it into smaller files",
                                      high=f"{MAX_ROWS:,}"))


def _read_csv(data: bytes) -> list[_Sheet]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("file", _("is not UTF-8 text: save the spreadsheet as \"CSV UTF-8\"")) from None
    header_line = text.split("\n", 1)[0]
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    rows: list[tuple[int, list[str]]] = []
    try:
        for n, record in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1):
            if n > MAX_ROWS + 2:
                raise _too_many_rows()
            rows.append((n, [_csv_text(cell) for cell in record]))
    except csv.Error as exc:
        raise ValidationFailed("file", _("cannot be read as CSV near row %(row)s: %(problem)s",
                                         row=len(rows) + 1, problem=str(exc))) from None
    return [_Sheet("", rows)]


def _sheet_rows(ws: Any, label: str) -> _Sheet:
    ws.reset_dimensions()  # some writers record wrong dimensions; read what is there
    rows: list[tuple[int, list[str]]] = []
    for n, values in enumerate(ws.iter_rows(values_only=True, max_col=MAX_COLUMNS), start=1):
        if n > MAX_ROWS + 2:
            raise _too_many_rows()
        rows.append((n, [_text(v) for v in values]))
    while rows and not any(rows[-1][1]):
        rows.pop()
    return _Sheet(label, rows)


def _read_xlsx(data: bytes) -> list[_Sheet]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise ValidationFailed("file", _("is not a readable XLSX workbook (%(problem)s)",
                                         problem=type(exc).__name__)) from None
    try:
        by_name = {ws.title.strip().casefold(): ws for ws in wb.worksheets}
        if "cases" in by_name and "members" in by_name:
            return [_sheet_rows(by_name["cases"], "cases"), _sheet_rows(by_name["members"], "members")]
        if not wb.worksheets:
            raise ValidationFailed("file", _("has no sheets"))
        return [_sheet_rows(wb.worksheets[0], "")]
    except ValidationFailed:
        raise
    except Exception as exc:  # a damaged sheet: openpyxl raises whatever its XML parser met
        raise ValidationFailed("file", _("is not a readable XLSX workbook (%(problem)s)",
                                         problem=type(exc).__name__)) from None
    finally:
        wb.close()


def _read_file(data: bytes, filename: str) -> list[_Sheet]:
    """The file's sheets, or ValidationFailed when it cannot be read at all."""
    if len(data) > MAX_BYTES:
        raise ValidationFailed("file", _("is larger than %(high)s MB: split it into smaller files",
                                         high=MAX_BYTES // (1024 * 1024)))
    if not data.strip():
        raise ValidationFailed("file", _("is empty"))
    lower = filename.lower()
    if data[:4] == b"PK\x03\x04" or lower.endswith((".xlsx", ".xlsm")):
        return _read_xlsx(data)
    if lower.endswith(".xls") or data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise ValidationFailed("file", _("is an old Excel .xls workbook: save it as .xlsx or as CSV UTF-8"))
    if lower.endswith((".ods", ".numbers", ".json", ".pdf")):
        raise ValidationFailed("file", _("must be a CSV file or an XLSX workbook"))
    return _read_csv(data)


# Errors -------------------------------------------------------------------------------------------------------


class _Findings:
    """Errors (or warnings) with where they are, sorted by sheet and row, cut to a maximum."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: list[tuple[int, int, str, str]] = []
        self.count = 0

    @property
    def full(self) -> bool:
        """No room for another message (it would only be counted): callers may skip composing it."""
        return len(self.items) >= max(_KEPT_ERRORS, self.limit)

    def add(self, sheet: _Sheet | None, row: int, column: str | None, message: str) -> None:
        self.count += 1
        if len(self.items) >= max(_KEPT_ERRORS, self.limit):
            return
        label = f"{sheet.label} " if sheet is not None and sheet.label else ""
        where = f"{label}row {row}" + (f", column {column}" if column else "")
        self.items.append((0 if sheet is None or sheet.label != "members" else 1, row, where, message))

    def extend_from(self, sheet: _Sheet, row: int, errors: list[FieldError],
                    rows_of: Mapping[str, int] | None = None) -> None:
        for e in errors:
            self.add(sheet, (rows_of or {}).get(e.field, row), e.field, e.message)

    def report(self) -> tuple[list[FieldError], int]:
        self.items.sort(key=lambda t: (t[0], t[1]))
        shown = [FieldError(where, message) for _s, _r, where, message in self.items[: self.limit]]
        return shown, self.count - len(shown)


# Columns ------------------------------------------------------------------------------------------------------


def _name(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().casefold())


@dataclass
class _Layout:
    """Which cell of a row holds which column; where the data starts."""

    positions: dict[str, int]
    first_data: int  # index into the sheet's rows


def _header(sheet: _Sheet, allowed: tuple[str, ...], required: tuple[str, ...], errors: _Findings,
            warnings: _Findings) -> _Layout | None:
    rows = sheet.rows
    start = next((i for i, (_n, cells) in enumerate(rows) if any(cells)), None)
    if start is None:
        errors.add(sheet, 1, None, _("the header row is missing"))
        return None
    header_row, cells = rows[start]
    positions: dict[str, int] = {}
    unknown: list[str] = []
    skipped: list[str] = []
    for i, raw in enumerate(cells):
        if not raw:
            continue
        name = _name(raw)
        if name in columns.KEY_ALIASES:
            name = columns.KEY
        if name in positions:
            errors.add(sheet, header_row, raw, _("this column appears twice"))
        elif name in allowed:
            positions[name] = i
        elif name in columns.EXPORT_ONLY:
            skipped.append(raw)
        else:
            unknown.append(raw)
    for raw in unknown:
        errors.add(sheet, header_row, raw, _("is not a column RDN knows (known columns: %(names)s)",
                                             names=", ".join(allowed)))
    for name in (columns.KEY, *required):
        if name not in positions:
            errors.add(sheet, header_row, name, _("this column is required and missing"))
    if skipped:
        warnings.add(sheet, header_row, None, _("these columns are not imported: %(names)s",
                                                names=", ".join(skipped)))
    first = start + 1
    if first < len(rows):
        hxl = [c for c in rows[first][1] if c]
        if hxl and all(c.startswith("#") for c in hxl):
            first += 1  # the HXL hashtag row
    return _Layout(positions, first) if not errors.count else None


def _values(layout: _Layout, cells: list[str], names_: tuple[str, ...]) -> dict[str, str]:
    size = len(cells)
    return {name: cells[i] if (i := layout.positions[name]) < size else ""
            for name in names_ if name in layout.positions}


# Validation ---------------------------------------------------------------------------------------------------


@dataclass
class _Person:
    row: int
    data: dict[str, Any]
    pair: tuple[tuple[str, str], int] | None  # (name skeletons, birth year), for warnings about look-alikes


def _look_alike_key(data: Mapping[str, Any]) -> tuple[tuple[str, str], int] | None:
    keys = names.same_person_keys(data["given_name"] or "", data["family_name"] or "")
    year = data.get("birth_year")
    return (keys, year) if keys is not None and isinstance(year, int) else None


@dataclass
class _CaseDraft:
    key: str
    sheet: _Sheet  # where the case's own values are (and where household errors are reported)
    row: int  # the case's first row
    values: dict[str, str] = field(default_factory=dict)
    rows_of: dict[str, int] = field(default_factory=dict)  # which row gave each case value
    disagreeing: set[str] = field(default_factory=set)  # case columns already reported as disagreeing
    people: list[_Person] = field(default_factory=list)
    people_sheet: _Sheet | None = None
    bad_relationship: bool = False
    data: dict[str, Any] | None = None


def _short(text: str, high: int = 40) -> str:
    return repr(text if len(text) <= high else text[: high - 1] + "…")


def _same(a: str, b: str) -> bool:
    return a == b or " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _member(draft: _CaseDraft, sheet: _Sheet, row: int, raw: dict[str, str], errors: _Findings) -> None:
    data, problems = clean_member(raw)
    if problems:
        errors.extend_from(sheet, row, problems)
        draft.bad_relationship = draft.bad_relationship or any(e.field == "relationship" for e in problems)
    draft.people.append(_Person(row, data, _look_alike_key(data)))
    draft.people_sheet = sheet


def _one_sheet(sheet: _Sheet, errors: _Findings, warnings: _Findings, progress: Progress | None
               ) -> dict[str, _CaseDraft]:
    allowed = (columns.KEY, *columns.IMPORT_CASE, *columns.IMPORT_MEMBER)
    layout = _header(sheet, allowed, (*columns.REQUIRED_CASE, *columns.REQUIRED_MEMBER), errors, warnings)
    drafts: dict[str, _CaseDraft] = {}
    if layout is None:
        return drafts
    case_names = tuple(n for n in columns.IMPORT_CASE if n in layout.positions)
    member_names = tuple(n for n in columns.IMPORT_MEMBER if n in layout.positions)
    width = max(layout.positions.values()) + 1
    data_rows = sheet.rows[layout.first_data:]
    for done, (row, cells) in enumerate(data_rows, start=1):
        if progress and done % 2000 == 0:
            progress(done, len(data_rows), "validate")
        if not any(cells):
            continue
        if len(cells) > width and any(cells[width:]):
            errors.add(sheet, row, None, _("has values to the right of the last column"))
        key = cells[layout.positions[columns.KEY]] if layout.positions[columns.KEY] < len(cells) else ""
        if not key:
            errors.add(sheet, row, columns.KEY, _("is required (it groups the people of one case)"))
            continue
        draft = drafts.get(key)
        if draft is None:
            draft = drafts[key] = _CaseDraft(key, sheet, row)
        for name in case_names:
            value = cells[layout.positions[name]] if layout.positions[name] < len(cells) else ""
            if not value:
                continue
            if name not in draft.values:
                draft.values[name], draft.rows_of[name] = value, row
            elif name not in draft.disagreeing and not _same(value, draft.values[name]):
                draft.disagreeing.add(name)  # once per case and column, however many rows follow
                errors.add(sheet, row, name, _(
                    "is %(value)s here but %(other)s on row %(row)s: the rows of one case must agree",
                    value=_short(value), other=_short(draft.values[name]), row=draft.rows_of[name]))
        _member(draft, sheet, row, _values(layout, cells, member_names), errors)
    return drafts


def _two_sheets(cases: _Sheet, members: _Sheet, errors: _Findings, warnings: _Findings,
                progress: Progress | None) -> dict[str, _CaseDraft]:
    case_layout = _header(cases, (columns.KEY, *columns.IMPORT_CASE), columns.REQUIRED_CASE, errors, warnings)
    member_layout = _header(members, (columns.KEY, *columns.IMPORT_MEMBER), columns.REQUIRED_MEMBER, errors,
                            warnings)
    drafts: dict[str, _CaseDraft] = {}
    if case_layout is None or member_layout is None:
        return drafts
    case_names = tuple(n for n in columns.IMPORT_CASE if n in case_layout.positions)
    for row, cells in cases.rows[case_layout.first_data:]:
        if not any(cells):
            continue
        values = _values(case_layout, cells, (columns.KEY, *case_names))
        key = values.pop(columns.KEY)
        if not key:
            errors.add(cases, row, columns.KEY, _("is required (it links the case to its people)"))
            continue
        if key in drafts:
            errors.add(cases, row, columns.KEY, _("appears twice on the cases sheet (first on row %(row)s)",
                                                  row=drafts[key].row))
            continue
        drafts[key] = _CaseDraft(key, cases, row, values, dict.fromkeys(values, row))
    member_names = tuple(n for n in columns.IMPORT_MEMBER if n in member_layout.positions)
    data_rows = members.rows[member_layout.first_data:]
    for done, (row, cells) in enumerate(data_rows, start=1):
        if progress and done % 2000 == 0:
            progress(done, len(data_rows), "validate")
        if not any(cells):
            continue
        values = _values(member_layout, cells, (columns.KEY, *member_names))
        key = values.pop(columns.KEY)
        draft = drafts.get(key)
        if draft is None:
            errors.add(members, row, columns.KEY,
                       _("is required") if not key else _("no case has this key on the cases sheet"))
            continue
        _member(draft, members, row, values, errors)
    return drafts


def _check_cases(drafts: dict[str, _CaseDraft], errors: _Findings) -> None:
    for draft in drafts.values():
        data, problems = clean_case(draft.values)
        errors.extend_from(draft.sheet, draft.row, problems, draft.rows_of)
        draft.data = data
        if not draft.people:
            errors.add(draft.sheet, draft.row, columns.KEY, _("a case needs at least its principal applicant"))
            continue
        if draft.bad_relationship:
            continue  # the relationship errors already say what is wrong
        people = [p.data for p in draft.people]
        principals = [p for p in draft.people if p.data["relationship"] == Relationship.principal]
        sheet = draft.people_sheet or draft.sheet
        for i, problem in enumerate(check_household(people)):
            if i == 0 and len(principals) != 1:
                row = principals[1].row if len(principals) > 1 else draft.people[0].row
                errors.add(sheet, row, "relationship", problem.message)
            else:
                errors.add(sheet, draft.people[0].row, columns.KEY, problem.message)


# Warnings: people who look like someone already known ---------------------------------------------------------


def _person_label(data: Mapping[str, Any]) -> str:
    return f"{data['given_name']} {data['family_name']}".strip()


def _similar_in_file(drafts: dict[str, _CaseDraft], warnings: _Findings) -> None:
    by_pair: dict[tuple[str, str], list[tuple[int, _Person, _CaseDraft]]] = defaultdict(list)
    for draft in drafts.values():
        for person in draft.people:
            if person.pair is not None:
                by_pair[person.pair[0]].append((person.pair[1], person, draft))
    for group in by_pair.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda t: (t[0], t[1].row))
        for i, (year, person, draft) in enumerate(group):
            # Neighbours in birth order (a few each side is enough to name one) on an earlier row.
            earlier = [t[1].row for t in group[max(0, i - 5):i + 6]
                       if abs(t[0] - year) <= 1 and t[1].row < person.row]
            if earlier:
                warnings.add(draft.people_sheet or draft.sheet, person.row, None, _(
                    "%(name)s looks like the person on row %(row)s (similar names, born within a year)",
                    name=_person_label(person.data), row=min(earlier)))


def _similar_known(session: Session, actor: Principal, drafts: dict[str, _CaseDraft], warnings: _Findings,
                   progress: Progress | None) -> None:
    """People of the file who look like people on the organization's cases (name skeletons shared, birth years
    within one). Each person is one range of the (look-alike key, birth year) index (``names.person_key``,
    kept in ``Member.look_alike_key``). On PostgreSQL, a first pass asks only whether each range holds someone
    of the organization; the people named in warnings (those the report can show: the first MAX_WARNINGS in
    the file's order) are then looked up with four matches each (``LATERAL ... LIMIT``), and the rest are
    counted. An organization with a small caseload (SMALL_CASELOAD) instead reads its own people with these
    keys: a range would walk every other organization's people of a common name to find none of its own.
    SQLite: the first and last of each year. A common name born in a common year costs a few index
    entries, not thousands, and a file of common names does not fetch details for warnings nobody sees."""
    if Section.identity not in owner_sections(actor):
        return
    wanted: dict[tuple[str, int], list[tuple[_Person, _CaseDraft]]] = defaultdict(list)
    for draft in drafts.values():
        for person in draft.people:
            if person.pair is not None:
                pair, year = person.pair
                wanted[(names.person_key(pair), year)].append((person, draft))
    if not wanted:
        return
    probes = sorted(wanted)
    # Per (key, birth year), a few of the people it matches: (case number, name, birth year, member id).
    found: dict[tuple[str, int], list[tuple[str, str, int, uuid.UUID]]] = defaultdict(list)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres and _small_caseload(session, actor.org_id):
        # Few cases of its own: the organization's people with these keys, matched here. (Each probe's range
        # would walk everyone else's people of a common name to find that none is this organization's.)
        keys = sorted({k for k, _y in probes})
        for start in range(0, len(keys), CHUNK):
            _match_within_a_year(session.execute(_PEOPLE.where(
                Case.owner_org_id == actor.org_id, Member.look_alike_key.in_(keys[start:start + CHUNK]))),
                wanted, found)
        for matches in found.values():  # a few of them, as the index's ranges give them elsewhere
            matches.sort()
            del matches[_SIMILAR_SHOWN + 1:]
    elif postgres:
        hits: set[tuple[str, int]] = set()
        for start in range(0, len(probes), CHUNK):
            chunk = probes[start:start + CHUNK]
            hits.update((key, year) for key, year in session.execute(text(
                "SELECT k.key, k.year FROM unnest(CAST(:keys AS text[]), CAST(:years AS int[])) AS k(key, year) "
                "CROSS JOIN LATERAL (SELECT 1 FROM case_members cm JOIN cases c ON c.id = cm.case_id "
                "WHERE cm.look_alike_key = k.key AND cm.birth_year BETWEEN k.year - 1 AND k.year + 1 "
                "AND c.owner_org_id = :org LIMIT 1) AS m"),
                {"keys": [k for k, _y in chunk], "years": [y for _k, y in chunk], "org": actor.org_id}))
            if progress:
                progress(min(start + CHUNK, len(probes)), len(probes), "check")
        if not hits:
            return
        # The report shows warnings in the file's order, MAX_WARNINGS at most: only those people need names.
        matched = sorted(((_finding_order(draft, person), key) for key in hits for person, draft in wanted[key]),
                         key=lambda t: t[0])
        named = sorted({key for _order, key in matched[:warnings.limit]})
        for start in range(0, len(named), CHUNK):
            chunk = named[start:start + CHUNK]
            rows = session.execute(text(
                "SELECT k.key, k.year, m.number, m.given_name, m.family_name, m.birth_year, m.id "
                "FROM unnest(CAST(:keys AS text[]), CAST(:years AS int[])) AS k(key, year) CROSS JOIN LATERAL "
                "(SELECT c.number, cm.given_name, cm.family_name, cm.birth_year, cm.id "
                "FROM case_members cm JOIN cases c ON c.id = cm.case_id "
                "WHERE cm.look_alike_key = k.key AND cm.birth_year BETWEEN k.year - 1 AND k.year + 1 "
                "AND c.owner_org_id = :org LIMIT :n) AS m"),
                {"keys": [k for k, _y in chunk], "years": [y for _k, y in chunk], "org": actor.org_id,
                 "n": _SIMILAR_SHOWN + 1})
            for key, year, number, given, family, born, member_id in rows:
                found[(key, year)].append((number, f"{given} {family}".strip(), born, member_id))
        unnamed = [key for key in hits if key not in found]
        for key in unnamed:  # counted, as the report counts warnings past its maximum
            warnings.count += len(wanted[key])
    else:
        for start in range(0, len(probes), CHUNK):
            chunk = probes[start:start + CHUNK]
            as_text = cast(Member.id, Text)
            ends = (select(Member.look_alike_key, Member.birth_year, func.min(as_text), func.max(as_text))
                    .join(Case, Case.id == Member.case_id)
                    .where(Member.look_alike_key.in_({k for k, _y in chunk}), Case.owner_org_id == actor.org_id)
                    .group_by(Member.look_alike_key, Member.birth_year))
            some = {uuid.UUID(str(m)) for _k, _y, first, last in session.execute(ends) for m in (first, last)}
            _match_within_a_year(session.execute(_PEOPLE.where(Member.id.in_(some))), wanted, found)
            if progress:
                progress(min(start + CHUNK, len(probes)), len(probes), "check")
    if not found:
        return
    per_person: dict[int, tuple[_Person, _CaseDraft, dict[uuid.UUID, tuple[str, str, int, uuid.UUID]]]] = {}
    for key, people in found.items():
        for person, draft in wanted[key]:
            entry = per_person.setdefault(id(person), (person, draft, {}))
            entry[2].update((m[3], m) for m in people)
    for person, draft, candidates in per_person.values():
        if warnings.full:
            warnings.count += 1
            continue
        matches = sorted(candidates.values())
        shown = "; ".join(_("%(name)s (born %(year)s) on case %(number)s", name=n, year=y, number=num)
                          for num, n, y, _m in matches[:_SIMILAR_SHOWN])
        warnings.add(draft.people_sheet or draft.sheet, person.row, None, _(
            "%(name)s looks like someone already on a case: %(matches)s", name=_person_label(person.data),
            matches=shown + (" …" if len(matches) > _SIMILAR_SHOWN else "")))


#: People to compare with: (look-alike key, case number, given name, family name, birth year, member id).
_PEOPLE = (select(Member.look_alike_key, Case.number, Member.given_name, Member.family_name, Member.birth_year,
                  Member.id).join(Case, Case.id == Member.case_id))


def _match_within_a_year(rows: Iterable[Any], wanted: Mapping[tuple[str, int], Any],
                         found: dict[tuple[str, int], list[tuple[str, str, int, uuid.UUID]]]) -> None:
    """Add each person of ``rows`` (``_PEOPLE``'s columns) to the probes (key, year) born within a year."""
    for key, number, given, family, born, member_id in rows:
        for year in (born - 1, born, born + 1):
            if (key, year) in wanted:
                found[(key, year)].append((number, f"{given} {family}".strip(), born, member_id))


SMALL_CASELOAD = 50_000  # cases: up to this many, an organization's look-alikes are found from its own people


def _small_caseload(session: Session, org_id: uuid.UUID | None) -> bool:
    """Whether the organization has at most SMALL_CASELOAD cases (counted on its index, stopping there)."""
    mine = select(Case.id).where(Case.owner_org_id == org_id).limit(SMALL_CASELOAD + 1).subquery()
    return (session.scalar(select(func.count()).select_from(mine)) or 0) <= SMALL_CASELOAD


def _finding_order(draft: _CaseDraft, person: _Person) -> tuple[int, int]:
    """Where a warning about ``person`` sorts in the report (as ``_Findings.report`` sorts)."""
    sheet = draft.people_sheet or draft.sheet
    return (0 if sheet is None or sheet.label != "members" else 1, person.row)


# Writing ------------------------------------------------------------------------------------------------------


def _clocks(now: datetime) -> Callable[[Priority, Priority], dict[str, Any]]:
    """The SLA clocks of a case opened now at the first stage, as ``service.recompute_clocks`` sets them
    (they depend only on the two priorities, so each pair is computed once)."""
    cache: dict[tuple[Priority, Priority], dict[str, Any]] = {}

    def clocks(processing: Priority, submission: Priority) -> dict[str, Any]:
        key = (processing, submission)
        if key not in cache:
            stage_due = pipeline.stage_due(Stage.referred, now, processing)
            submit_by, depart_by = pipeline.targets(now, None, processing, submission)
            cache[key] = {"stage_due_at": stage_due, "target_submission_on": submit_by,
                          "target_departure_on": depart_by,
                          "due_at": pipeline.due_at(Stage.referred, stage_due, submit_by, depart_by)}
        return cache[key]

    return clocks


_CASE_COLUMNS = ("id", "owner_org_id", "number", "previous_numbers", "principal_name", "nationality", "size",
                 "current_country", "current_location", "category_primary", "category_secondary",
                 "processing_priority", "submission_priority", "stage", "stage_since", "opened_at", "submitted_at",
                 "departed_at", "arrived_at", "closed_at", "stage_due_at", "target_submission_on",
                 "target_departure_on", "due_at", "preferences", "protection", "medical", "sogi", "svt", "import_id",
                 "version", "created_by_user_id", "created_at", "updated_at")
_MEMBER_COLUMNS = ("id", "case_id", "position", "created_at", "updated_at", *service.MEMBER_FIELDS, "look_alike_key",
                   "name_keys", "shared_with")
_EVENT_COLUMNS = ("id", "case_id", "from_stage", "to_stage", "note", "actor_user_id", "actor_org_id", "actor_label",
                  "at")


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _write(session: Session, actor: Principal, org: Organization, drafts: list[_CaseDraft], *, filename: str,
           sha256: str, people: int, progress: Progress | None) -> tuple[uuid.UUID, tuple[str, str]]:
    now = clock.now()
    numbers = service.reserve_numbers(session, org, len(drafts))
    record = CaseImport(id=uuid.uuid4(), org_id=org.id, filename=filename[:300], sha256=sha256, cases=len(drafts),
                        people=people, created_by_user_id=actor.user_id, created_at=now)
    session.add(record)
    session.flush()
    clocks = _clocks(now)
    preferences = clean_preferences({})[0]
    note = _("Imported from %(filename)s", filename=filename)[:2000]
    pending: list[audit.Pending] = []
    referred = Stage.referred.value
    # No checklist rows: an untouched item is pending without one (service.checklist).
    tables = {model: model.__table__ for model in (Case, Member, StageEvent)}
    for start in range(0, len(drafts), CASES_PER_BATCH):
        if progress:
            progress(start, len(drafts), "write")
        batch = []  # (case id, draft, members in order, number)
        for number, draft in zip(numbers[start:start + CASES_PER_BATCH], drafts[start:start + CASES_PER_BATCH],
                                 strict=True):
            ordered = sorted((p.data for p in draft.people), key=lambda m: m["relationship"] != Relationship.principal)
            batch.append((ids.uuid7(), draft, ordered, number))

        def case_rows(batch: list[Any] = batch) -> Iterator[tuple[Any, ...]]:
            for case_id, draft, ordered, number in batch:
                data, principal = draft.data, ordered[0]
                due = clocks(data["processing_priority"], data["submission_priority"])
                yield (case_id, org.id, number, [], _person_label(principal), principal["nationality"], len(ordered),
                       data["current_country"], data["current_location"], _plain(data["category_primary"]),
                       _plain(data["category_secondary"]), _plain(data["processing_priority"]),
                       _plain(data["submission_priority"]), referred, now, now, None, None, None, None,
                       due["stage_due_at"], due["target_submission_on"], due["target_departure_on"], due["due_at"],
                       preferences, None, None, None, None, record.id, 1, actor.user_id, now, now)

        def member_rows(batch: list[Any] = batch) -> Iterator[tuple[Any, ...]]:
            for case_id, _draft, ordered, _number in batch:
                for position, m in enumerate(ordered):
                    yield (ids.uuid7(), case_id, position, now, now, *(_plain(m[k]) for k in service.MEMBER_FIELDS),
                           names.look_alike_key(m["given_name"], m["family_name"]),
                           sorted(names.member_keys(m["given_name"], m["family_name"], m["other_names"])),
                           [])  # shared_with: a new case is shared with no one

        def event_rows(batch: list[Any] = batch) -> Iterator[tuple[Any, ...]]:
            for case_id, *_rest in batch:
                yield (ids.uuid7(), case_id, None, referred, note, actor.user_id, actor.org_id, actor.full_name, now)

        # Parents before children.
        db.bulk_insert(session, tables[Case], _CASE_COLUMNS, case_rows())
        db.bulk_insert(session, tables[Member], _MEMBER_COLUMNS, member_rows())
        db.bulk_insert(session, tables[StageEvent], _EVENT_COLUMNS, event_rows())
        pending.extend(audit.Pending("case.import", "case", case_id,
                                     {"import": str(record.id), "number": number, "members": len(ordered)})
                       for case_id, _draft, ordered, number in batch)
        if progress:
            progress(min(start + CASES_PER_BATCH, len(drafts)), len(drafts), "write")
    pending.append(audit.Pending("case.import", "case_import", record.id,
                                 {"sha256": sha256, "cases": len(drafts), "people": people, "via": actor.via}))
    audit.record_many(session, actor=actor, entries=pending)
    return record.id, (numbers[0], numbers[-1])


# The entry point ----------------------------------------------------------------------------------------------


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector: a big file makes millions of objects that all live until the end, and
    the collector would walk them again and again (half the time of reading and checking 100,000 rows).
    Reference counting still frees what is dropped; the collector resumes afterwards."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def import_file(session: Session, *, actor: Principal, data: bytes, filename: str, dry_run: bool = False,
                progress: Progress | None = None) -> ImportReport:
    """Check a spreadsheet of households and, unless ``dry_run`` or it has errors, open a case for each.

    Returns the report (``ok`` is False when the file has errors: nothing was written). Raises
    ``ValidationFailed`` only for a file that cannot be read at all, and the policy's errors for an actor
    who may not open cases. Writes in the caller's transaction, which the caller commits.
    """
    policy.require(actor, "case.create")
    assert actor.org_id is not None
    org = session.get(Organization, actor.org_id)
    assert org is not None
    with _collector_paused():
        return _import(session, actor, org, data=data, filename=filename, dry_run=dry_run, progress=progress)


def _import(session: Session, actor: Principal, org: Organization, *, data: bytes, filename: str, dry_run: bool,
            progress: Progress | None) -> ImportReport:
    if progress:
        progress(0, None, "read")
    sheets = _read_file(data, filename)
    errors, warnings = _Findings(MAX_ERRORS), _Findings(MAX_WARNINGS)
    if len(sheets) == 2:
        drafts = _two_sheets(sheets[0], sheets[1], errors, warnings, progress)
    else:
        drafts = _one_sheet(sheets[0], errors, warnings, progress)
    _check_cases(drafts, errors)
    report = ImportReport(cases=len(drafts), people=sum(len(d.people) for d in drafts.values()), dry_run=dry_run)
    if not drafts and not errors.count:
        errors.add(None, 2, None, _("the file has no people to import"))
    if drafts:
        _similar_in_file(drafts, warnings)
        _similar_known(session, actor, drafts, warnings, progress)
    report.errors, report.more_errors = errors.report()
    report.warnings, report.more_warnings = warnings.report()
    if report.ok and not dry_run:
        report.import_id, report.numbers = _write(
            session, actor, org, list(drafts.values()), filename=filename, sha256=hashlib.sha256(data).hexdigest(),
            people=report.people, progress=progress)
    return report


def template_csv() -> bytes:
    """An empty import file: the header row and the HXL row, for people to fill in."""
    names_ = (columns.KEY, *columns.IMPORT_CASE, *columns.IMPORT_MEMBER)
    tags = ("#meta+id+case", *(columns.ALL[n].hxl for n in names_[1:]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(names_)
    writer.writerow(tags)
    return out.getvalue().encode("utf-8-sig")


def iter_errors(report: ImportReport) -> Iterator[str]:
    """The report's errors as lines of text ("row 7, column sex: must be one of ...")."""
    for e in report.errors:
        yield f"{e.field}: {e.message}"
    if report.more_errors:
        yield _("... and %(n)s more errors", n=report.more_errors)
