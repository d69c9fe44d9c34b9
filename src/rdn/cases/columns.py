"""The columns of case spreadsheets, shared by imports and exports: names, sections and HXL hashtags.

An export writes a header row of these names and, under it, a row of HXL hashtags
(https://hxlstandard.org/standard/1-1final/), so HXL tools read it and RDN imports it back. Hashtags are core
HXL ones refined by attributes (``#beneficiary+name+given``): people are ``#beneficiary``, codes carry
``+code``, dates ``#date``.

Each column belongs to the section of a case that holds it (``rdn.cases.models.Section``): an export only
fills the columns of sections its exporter may see, and leaves out a section nobody sees. ``importable``
columns are read by ``rdn.cases.imports``; the others (the stage, dates, preferences ... that an export shows)
are skipped on import with a warning, so that an export can be imported back as new cases.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdn.cases.models import Section


@dataclass(frozen=True)
class Column:
    name: str
    hxl: str
    section: Section
    level: str  # "case" or "member"
    importable: bool = False


#: The column that groups people into cases: ``case_key`` in a file made by hand, ``case_number`` in an export.
KEY = "case_key"
KEY_ALIASES = frozenset({"case_key", "case_number"})

CASE_COLUMNS: tuple[Column, ...] = (
    Column("case_number", "#meta+id+case", Section.summary, "case"),
    Column("stage", "#status+stage", Section.summary, "case"),
    Column("current_country", "#country+code+current", Section.summary, "case", True),
    Column("category_primary", "#indicator+category+primary", Section.summary, "case", True),
    Column("category_secondary", "#indicator+category+secondary", Section.summary, "case", True),
    Column("processing_priority", "#severity+priority+processing", Section.summary, "case", True),
    Column("submission_priority", "#severity+priority+submission", Section.summary, "case", True),
    Column("household_size", "#affected+num+household", Section.summary, "case"),
    Column("opened_on", "#date+opened", Section.summary, "case"),
    Column("due_on", "#date+due", Section.summary, "case"),
    Column("current_location", "#loc+name+current", Section.location, "case", True),
    Column("family_ties", "#description+family+ties", Section.family, "case"),
    Column("preferred_countries", "#country+code+preferred", Section.preferences, "case"),
    Column("avoided_countries", "#country+code+avoided", Section.preferences, "case"),
    Column("preferred_setting", "#loc+type+preferred", Section.preferences, "case"),
    Column("preferences_note", "#description+preferences", Section.preferences, "case"),
    Column("stage_since", "#date+stage", Section.pipeline, "case"),
    Column("checklist", "#status+checklist", Section.pipeline, "case"),
    Column("protection_narrative", "#description+protection", Section.protection, "case"),
    Column("medical_diagnosis", "#description+medical+diagnosis", Section.medical, "case"),
    Column("medical_treatment_unavailable", "#status+medical+treatment_unavailable", Section.medical, "case"),
    Column("medical_prognosis", "#description+medical+prognosis", Section.medical, "case"),
    Column("medical_informed_consent", "#status+medical+informed_consent", Section.medical, "case"),
    Column("medical_narrative", "#description+medical+narrative", Section.medical, "case"),
    Column("sogi_narrative", "#description+sogi", Section.sogi, "case"),
    Column("svt_narrative", "#description+svt", Section.svt, "case"),
)

MEMBER_COLUMNS: tuple[Column, ...] = (
    Column("relationship", "#beneficiary+relationship", Section.identity, "member", True),
    Column("given_name", "#beneficiary+name+given", Section.identity, "member", True),
    Column("family_name", "#beneficiary+name+family", Section.identity, "member", True),
    Column("other_names", "#beneficiary+name+other", Section.identity, "member", True),
    Column("sex", "#beneficiary+sex", Section.identity, "member", True),
    Column("date_of_birth", "#date+birth", Section.identity, "member", True),
    Column("nationality", "#country+code+nationality", Section.identity, "member", True),
    Column("stateless", "#beneficiary+stateless", Section.identity, "member", True),
    Column("languages", "#beneficiary+language+code", Section.background, "member", True),
    Column("education", "#beneficiary+education", Section.background, "member", True),
    Column("occupation", "#beneficiary+occupation", Section.background, "member", True),
    Column("specific_needs", "#beneficiary+needs+code", Section.needs, "member", True),
    Column("confidential_notes", "#description+confidential", Section.confidential, "member"),
)

ALL: dict[str, Column] = {c.name: c for c in (*CASE_COLUMNS, *MEMBER_COLUMNS)}

#: What an import reads, by level (the key column aside).
IMPORT_CASE: tuple[str, ...] = tuple(c.name for c in CASE_COLUMNS if c.importable)
IMPORT_MEMBER: tuple[str, ...] = tuple(c.name for c in MEMBER_COLUMNS if c.importable)
#: Columns an import cannot do without (the others may be left out or empty).
REQUIRED_CASE: tuple[str, ...] = ("current_country", "category_primary", "category_secondary",
                                  "processing_priority", "submission_priority")
REQUIRED_MEMBER: tuple[str, ...] = ("relationship", "given_name", "sex", "date_of_birth", "nationality")
#: Columns an export writes that an import skips (with a warning).
EXPORT_ONLY: frozenset[str] = frozenset(name for name, c in ALL.items()
                                        if not c.importable and name not in KEY_ALIASES)
