"""Exporting cases: CSV and XLSX with HXL hashtags, and JSON for the API.

An export holds only what its exporter may see. Cases come from ``rdn.cases.search.filtered`` (the scoped list
with the user's filters); for each, ``policy.case_access`` says which sections the exporter sees, and only
those sections' values are written. Columns are fixed per section (``rdn.cases.columns``): a section the
exporter sees on no exported case is left out entirely, one seen on some cases has empty cells on the others.
People are only listed where a section about them (identity, background, needs) is visible; a case whose
people the exporter may not see is one row of summary.

Sensitive sections (protection, medical, sogi, svt, member-confidential notes) are left out unless
``include_sensitive``: that needs a fresh step-up in a browser session, exactly as reading them on the page,
and each case's read is audited by ``service.read_sensitive``. Every exported case gets an audit entry
(``case.export``, with the format and the sections written) and the export one more (``case_export``, with
the filters and the count), all in the caller's transaction.

Cases are read in two passes, in batches: the first decides what each case shows (ids and sections only),
the second reads the batches' rows and writes them, so 300,000 cases never sit in memory at once.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from rdn.cases import columns, search, service
from rdn.cases.models import (
    SENSITIVE,
    Case,
    ChecklistEntry,
    ChecklistItem,
    ChecklistStatus,
    FamilyTie,
    Member,
    Section,
)
from rdn.cases.policy import CaseAccess, case_accesses
from rdn.cases.search import CaseFilters
from rdn.core import audit, policy
from rdn.core.identity import Principal

BATCH = 1000  # cases read and written together
FORMATS = ("csv", "xlsx", "json")
#: Sections about people: a case is listed person by person when one of them is visible.
MEMBER_SECTIONS = frozenset({Section.identity, Section.background, Section.needs, Section.confidential})


@dataclass(frozen=True)
class _UntouchedItem:
    """A checklist item with no row: pending, no note."""

    item: str
    status: str = ChecklistStatus.pending.value
    note: str = ""


@dataclass
class ExportSummary:
    """What an export wrote."""

    export_id: uuid.UUID
    format: str
    cases: int
    people: int
    sections: list[str]  # the sections that have columns


def _value(v: Any) -> Any:
    """A stored value as exports show it: enums by value, dates as ISO dates."""
    if v is None:
        return None
    if hasattr(v, "value") and isinstance(v.value, str):
        return v.value
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _date(v: Any) -> str | None:
    return None if v is None else v.date().isoformat()


class _Export:
    """One export: the plan (which cases, which sections), then batches of records, then the audit."""

    def __init__(self, session: Session, actor: Principal, filters: CaseFilters, fmt: str,
                 include_sensitive: bool) -> None:
        policy.require(actor, "case.export")
        if include_sensitive:
            service.require_fresh(actor)
        self.session, self.actor, self.filters, self.fmt = session, actor, filters, fmt
        self.include_sensitive = include_sensitive
        self.plan: list[tuple[uuid.UUID, bool, frozenset[Section]]] = []
        self.sections: set[Section] = {Section.summary}
        self.pending: list[audit.Pending] = []
        self.people = 0
        self._plan()

    def _shown(self, access_sections: frozenset[Section]) -> frozenset[Section]:
        return access_sections if self.include_sensitive else access_sections - SENSITIVE

    def _plan(self) -> None:
        """Pass one: each visible case's id and the sections it shows (the list's order is kept)."""
        interned: dict[frozenset[Section], frozenset[Section]] = {}
        stmt = (search.filtered(self.actor, self.filters)
                .options(load_only(Case.id, Case.owner_org_id, raiseload=True))
                .execution_options(yield_per=BATCH))
        seen: set[uuid.UUID] = set()
        pending: list[Case] = []

        def settle() -> None:
            accesses = case_accesses(self.session, self.actor, pending)
            for case in pending:
                access = accesses[case.id]
                shown = self._shown(access.sections)
                if not shown:
                    continue
                shown = interned.setdefault(shown, shown)
                self.plan.append((case.id, access.owner, shown))
                self.sections |= shown
            pending.clear()

        for case in self.session.scalars(stmt):
            if case.id in seen:
                continue
            seen.add(case.id)
            pending.append(case)
            if len(pending) >= BATCH:
                settle()
        settle()

    def columns(self, level: str) -> list[columns.Column]:
        listed = columns.CASE_COLUMNS if level == "case" else columns.MEMBER_COLUMNS
        return [c for c in listed if c.section in self.sections]

    def records(self) -> Iterator[tuple[uuid.UUID, frozenset[Section], dict[str, Any], list[dict[str, Any]] | None]]:
        """Pass two: (case id, sections shown, case values, people's values or None), values by column name."""
        for start in range(0, len(self.plan), BATCH):
            batch = self.plan[start:start + BATCH]
            ids = [case_id for case_id, _owner, _shown in batch]
            stmt = select(Case).where(Case.id.in_(ids)).execution_options(populate_existing=True)
            cases = {c.id: c for c in self.session.scalars(stmt)}
            people = self._members([i for i, _o, s in batch if s & MEMBER_SECTIONS])
            ties = self._ties([i for i, _o, s in batch if Section.family in s])
            checklist = self._checklist([i for i, _o, s in batch if Section.pipeline in s])
            for case_id, owner, shown in batch:
                case = cases.get(case_id)
                if case is None:  # deleted between the two passes
                    continue
                sealed = self._sensitive(case, owner, shown)
                values = self._case_values(case, shown, ties.get(case_id, []), checklist.get(case_id, []), sealed)
                members = None
                if shown & MEMBER_SECTIONS:
                    members = [self._member_values(m, shown, sealed) for m in people.get(case_id, [])]
                    self.people += len(members)
                self.pending.append(audit.Pending("case.export", "case", case_id, {
                    "format": self.fmt, "sections": sorted(s.value for s in shown)}))
                yield case_id, shown, values, members

    def _members(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
        out: dict[uuid.UUID, list[Any]] = {}
        if ids:
            stmt = select(Member.__table__).where(Member.case_id.in_(ids)).order_by(Member.case_id, Member.position)
            for row in self.session.execute(stmt):
                out.setdefault(row.case_id, []).append(row)
        return out

    def _ties(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
        out: dict[uuid.UUID, list[Any]] = {}
        if ids:
            stmt = select(FamilyTie.__table__).where(FamilyTie.case_id.in_(ids)).order_by(FamilyTie.country)
            for row in self.session.execute(stmt):
                out.setdefault(row.case_id, []).append(row)
        return out

    def _checklist(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
        """Every item of each case's checklist, in order (an untouched item is pending and has no row)."""
        stored: dict[uuid.UUID, dict[str, Any]] = {case_id: {} for case_id in ids}
        if ids:
            for row in self.session.execute(select(ChecklistEntry.__table__).where(ChecklistEntry.case_id.in_(ids))):
                stored[row.case_id][_value(row.item)] = row
        return {case_id: [rows.get(item.value) or _UntouchedItem(item.value) for item in ChecklistItem]
                for case_id, rows in stored.items()}

    def _sensitive(self, case: Case, owner: bool, shown: frozenset[Section]) -> dict[Section, Any]:
        wanted = sorted(shown & SENSITIVE)
        if not wanted:
            return {}
        # The sections come from policy.case_access in the first pass; reading goes through the service, which
        # checks them again, asks for the step-up and audits the read.
        access = CaseAccess(case, owner, shown)
        return service.read_sensitive(self.session, actor=self.actor, access=access, sections=wanted,
                                      purpose="export")

    def _case_values(self, case: Case, shown: frozenset[Section], ties: list[Any], checklist: list[Any],
                     sealed: dict[Section, Any]) -> dict[str, Any]:
        v: dict[str, Any] = {
            "case_number": case.number, "stage": case.stage, "current_country": case.current_country,
            "category_primary": _value(case.category_primary), "category_secondary": _value(case.category_secondary),
            "processing_priority": _value(case.processing_priority),
            "submission_priority": _value(case.submission_priority), "household_size": case.size,
            "opened_on": _date(case.opened_at), "due_on": _date(case.due_at),
        }
        if Section.location in shown:
            v["current_location"] = case.current_location
        if Section.family in shown:
            v["family_ties"] = [{"country": t.country, "city": t.city, "relationship": t.relationship,
                                 "note": t.note} for t in ties]
        if Section.preferences in shown:
            prefs = case.preferences or {}
            v["preferred_countries"] = list(prefs.get("countries") or [])
            v["avoided_countries"] = list(prefs.get("avoid") or [])
            v["preferred_setting"] = prefs.get("setting") or "any"
            v["preferences_note"] = prefs.get("note") or ""
        if Section.pipeline in shown:
            v["stage_since"] = _date(case.stage_since)
            v["checklist"] = [{"item": _value(e.item), "status": _value(e.status), "note": e.note} for e in checklist]
        if Section.protection in sealed:
            v["protection_narrative"] = (sealed[Section.protection] or {}).get("narrative")
        if Section.medical in sealed:
            medical = sealed[Section.medical] or {}
            for key in ("diagnosis", "treatment_unavailable", "prognosis", "informed_consent", "narrative"):
                v[f"medical_{key}"] = medical.get(key)
        for section in (Section.sogi, Section.svt):
            if section in sealed:
                v[f"{section.value}_narrative"] = (sealed[section] or {}).get("narrative")
        return v

    def _member_values(self, m: Any, shown: frozenset[Section], sealed: dict[Section, Any]) -> dict[str, Any]:
        v: dict[str, Any] = {}
        if Section.identity in shown:
            v.update(relationship=_value(m.relationship), given_name=m.given_name, family_name=m.family_name,
                     other_names=list(m.other_names or []), sex=_value(m.sex),
                     date_of_birth=m.birth_date.isoformat() if m.birth_date else str(m.birth_year),
                     nationality=m.nationality, stateless=bool(m.stateless))
        if Section.background in shown:
            v.update(languages=list(m.languages or []), education=_value(m.education), occupation=m.occupation)
        if Section.needs in shown:
            v["specific_needs"] = list(m.specific_needs or [])
        if Section.confidential in sealed:
            v["confidential_notes"] = [n["body"] for n in sealed[Section.confidential] if n["member_id"] == m.id]
        return v

    def finish(self) -> ExportSummary:
        """The audit entries: one per exported case, one for the export."""
        export_id = uuid.uuid4()
        self.pending.append(audit.Pending("case.export", "case_export", export_id, {
            "format": self.fmt, "filters": _filters_for_audit(self.filters), "count": len(self.pending),
            "people": self.people, "sensitive": self.include_sensitive, "via": self.actor.via}))
        audit.record_many(self.session, actor=self.actor, entries=self.pending)
        return ExportSummary(export_id, self.fmt, len(self.pending) - 1, self.people,
                             sorted(s.value for s in self.sections))


def _filters_for_audit(f: CaseFilters) -> dict[str, Any]:
    """The filters, minus a name searched for (personal data stays out of the audit log)."""
    out = {k: v for k, v in dataclasses.asdict(f).items() if v not in ("", None, [])}
    if f.q and not search.CASE_NUMBER.match(f.q.strip()):
        out["q"] = "(a name)"
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in out.items()}


# Cells --------------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """A value as spreadsheet text: lists joined by "; ", yes/no, family ties and checklists spelled out."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        parts = []
        for item in value:
            if isinstance(item, dict) and "item" in item:  # a checklist entry
                parts.append(f"{item['item']}: {item['status']}")
            elif isinstance(item, dict):  # a family tie
                parts.append(" / ".join(str(item[k]) for k in ("country", "city", "relationship") if item.get(k)))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(value)


def _safe(text: str) -> str:
    """Text a spreadsheet would read as a formula gets a leading apostrophe (imports take it off again)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _rows(export: _Export) -> tuple[list[str], list[str], Iterator[list[str]]]:
    """Header, HXL row and rows of the one-sheet layout (one row per person, case columns repeated)."""
    case_cols, member_cols = export.columns("case"), export.columns("member")
    header = [c.name for c in (*case_cols, *member_cols)]
    tags = [c.hxl for c in (*case_cols, *member_cols)]

    def rows() -> Iterator[list[str]]:
        empty = [""] * len(member_cols)
        for _id, _shown, values, members in export.records():
            case_part = [_safe(_cell(values.get(c.name))) for c in case_cols]
            if not members:
                yield case_part + empty
                continue
            for member in members:
                yield case_part + [_safe(_cell(member.get(c.name))) for c in member_cols]

    return header, tags, rows()


# Formats ------------------------------------------------------------------------------------------------------


def write_csv(session: Session, *, actor: Principal, filters: CaseFilters, out: IO[str],
              include_sensitive: bool = False) -> ExportSummary:
    """Write the CSV export (UTF-8 with a byte-order mark, so spreadsheets read accents) to ``out``."""
    export = _Export(session, actor, filters, "csv", include_sensitive)
    header, tags, rows = _rows(export)
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerow(tags)
    writer.writerows(rows)
    return export.finish()


def export_csv(session: Session, *, actor: Principal, filters: CaseFilters,
               include_sensitive: bool = False) -> bytes:
    """The CSV export: one row per person, a header row, then a row of HXL hashtags."""
    out = io.StringIO()
    write_csv(session, actor=actor, filters=filters, out=out, include_sensitive=include_sensitive)
    return out.getvalue().encode("utf-8")


def write_xlsx(session: Session, *, actor: Principal, filters: CaseFilters, out: IO[bytes],
               include_sensitive: bool = False) -> ExportSummary:
    """Write the XLSX export to ``out``: a ``cases`` sheet and a ``members`` sheet, each with an HXL row."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    export = _Export(session, actor, filters, "xlsx", include_sensitive)
    wb = Workbook(write_only=True)
    cases_ws, members_ws = wb.create_sheet("cases"), wb.create_sheet("members")
    key = columns.ALL["case_number"]
    case_cols = export.columns("case")
    member_cols = [key, *export.columns("member")]

    def cell(ws: Any, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        text = ILLEGAL_CHARACTERS_RE.sub("", _cell(value))
        if text.startswith("="):  # text, never a formula
            c = WriteOnlyCell(ws, value=text)
            c.data_type = "s"
            return c
        return text

    cases_ws.append([c.name for c in case_cols])
    cases_ws.append([c.hxl for c in case_cols])
    members_ws.append([c.name for c in member_cols])
    members_ws.append([c.hxl for c in member_cols])
    for _id, _shown, values, members in export.records():
        cases_ws.append([cell(cases_ws, values.get(c.name)) for c in case_cols])
        for member in members or ():
            member = {**member, "case_number": values["case_number"]}
            members_ws.append([cell(members_ws, member.get(c.name)) for c in member_cols])
    wb.save(out)
    return export.finish()


def export_xlsx(session: Session, *, actor: Principal, filters: CaseFilters,
                include_sensitive: bool = False) -> bytes:
    out = io.BytesIO()
    write_xlsx(session, actor=actor, filters=filters, out=out, include_sensitive=include_sensitive)
    return out.getvalue()


def _json(session: Session, actor: Principal, filters: CaseFilters,
          include_sensitive: bool) -> tuple[list[dict[str, Any]], ExportSummary]:
    export = _Export(session, actor, filters, "json", include_sensitive)
    out = []
    for case_id, shown, values, members in export.records():
        record = {"id": str(case_id), "sections": sorted(s.value for s in shown), **values}
        if members is not None:
            record["members"] = members
        out.append(record)
    return out, export.finish()


def export_json(session: Session, *, actor: Principal, filters: CaseFilters,
                include_sensitive: bool = False) -> list[dict[str, Any]]:
    """One dict per case: the values of the sections the actor sees (and ``sections`` naming them), with
    ``members`` where the people are visible. Lists stay lists; booleans and numbers keep their types."""
    return _json(session, actor, filters, include_sensitive)[0]


def export(session: Session, *, actor: Principal, filters: CaseFilters, fmt: str, out: IO[bytes],
           include_sensitive: bool = False) -> ExportSummary:
    """Write an export in ``fmt`` (csv, xlsx or json) to a binary stream (the command line's entry point)."""
    if fmt == "xlsx":
        return write_xlsx(session, actor=actor, filters=filters, out=out, include_sensitive=include_sensitive)
    if fmt == "csv":
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        try:
            return write_csv(session, actor=actor, filters=filters, out=text, include_sensitive=include_sensitive)
        finally:
            text.detach()
    if fmt == "json":
        records, summary = _json(session, actor, filters, include_sensitive)
        out.write(json.dumps(records, ensure_ascii=False, indent=1).encode())
        return summary
    raise ValueError(f"unknown export format {fmt!r}")
