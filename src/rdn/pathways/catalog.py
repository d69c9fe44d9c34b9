"""The pathway catalog: the legal pathways each destination government offers, and who can use them.

A government's administrators and officers keep their own pathways; every member's staff searches the whole
catalog. The question a caseworker asks is "which pathways could a Venezuelan family in Colombia use?": each
pathway's search keys (rows of ``pathway_keys``) are written on every change of its eligible nationalities
("n:VE") and the countries applicants may be in ("l:CO"); a pathway open to any nationality (or location) has
none of that kind, and search matches its empty list instead. The search is then two index probes and a test
of two short lists, on either database, rather than list logic in Python.

Beside the pathways, the search shows the obstacles known in the applicant's country that affect their
nationality (:func:`obstacles_for`), and the catalog draws places offered against places used per destination
country (:func:`places_by_country`).
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, case, delete, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from rdn.cases.models import Category
from rdn.cases.search import _keys, has_any
from rdn.core import audit, clock, i18n, policy
from rdn.core.audit import Actor
from rdn.core.errors import FieldError, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.modules import DemoContext
from rdn.core.pagination import MAX_PER_PAGE, Page, paginate
from rdn.core.tenancy import Organization
from rdn.db import is_empty_list
from rdn.pathways.models import (
    Obstacle,
    ObstacleStatus,
    Pathway,
    PathwayKey,
    PathwayStatus,
    PathwayType,
    Severity,
)

MAX_CODES = 120  # eligible nationalities or locations listed on one pathway
MAX_DOCUMENTS = 30
MAX_OBSTACLES = 20  # shown beside a search
SEVERITY_RANK = {Severity.critical.value: 4, Severity.high.value: 3, Severity.medium.value: 2, Severity.low.value: 1}
CURRENCY = re.compile(r"^[A-Z]{3}$")
#: The fields a pathway's keeper sets (``country`` and ``org_id`` come from the keeper's government).
FIELDS = ("name", "type", "description", "nationalities", "locations", "categories", "conditions", "year",
          "places", "places_used", "processing_days", "fee_amount", "fee_currency", "documents", "responsible",
          "status", "opens_on", "closes_on")


def today() -> date:
    return clock.now().date()


# Cleaning -------------------------------------------------------------------------------------------------------


def _text(value: Any, name: str, errors: list[FieldError], *, high: int, required: bool = False) -> str:
    text = str(value if value is not None else "").strip()
    if required and not text:
        errors.append(FieldError(name, _("is required")))
    elif len(text) > high:
        errors.append(FieldError(name, _("at most %(high)s characters", high=high)))
    return text


def _integer(value: Any, name: str, errors: list[FieldError], *, low: int = 0, high: int = 10_000_000,
             required: bool = False, default: int | None = None) -> int | None:
    if value is None or str(value).strip() == "":
        if required:
            errors.append(FieldError(name, _("is required")))
        return default
    if isinstance(value, bool):
        errors.append(FieldError(name, _("must be a whole number")))
        return default
    try:
        number = float(str(value).strip())
    except ValueError:
        errors.append(FieldError(name, _("must be a whole number")))
        return default
    if number != number or number != int(number):  # NaN, or a fraction
        errors.append(FieldError(name, _("must be a whole number")))
        return default
    if not low <= number <= high:
        errors.append(FieldError(name, _("must be between %(low)s and %(high)s", low=low, high=high)))
        return default
    return int(number)


def _amount(value: Any, name: str, errors: list[FieldError]) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        errors.append(FieldError(name, _("must be a number")))
        return None
    if number != number or not 0 <= number <= 1e9:
        errors.append(FieldError(name, _("must be between %(low)s and %(high)s", low=0, high="1,000,000,000")))
        return None
    return round(number, 2)


def _items(value: Any, *, lines: bool = False) -> list[str]:
    """A list, or text split by commas and semicolons (or by lines, for documents)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value)
    parts = text.splitlines() if lines else re.split(r"[,;\s]+", text)
    return [p.strip() for p in parts if p.strip()]


def _countries(value: Any, name: str, errors: list[FieldError]) -> list[str]:
    codes = [c.upper() for c in _items(value)]
    bad = [c for c in codes if not i18n.is_country(c)]
    if bad:
        errors.append(FieldError(name, _("not ISO 3166 country codes: %(codes)s", codes=", ".join(bad[:10]))))
    codes = list(dict.fromkeys(codes))
    if len(codes) > MAX_CODES:
        errors.append(FieldError(name, _("at most %(high)s countries", high=MAX_CODES)))
    return codes


def _categories(value: Any, errors: list[FieldError]) -> list[str]:
    codes = list(dict.fromkeys(c.upper() for c in _items(value)))
    bad = [c for c in codes if c not in Category.__members__]
    if bad:
        errors.append(FieldError("categories", _("unknown categories: %(codes)s; the categories are %(all)s",
                                                 codes=", ".join(bad[:10]), all=", ".join(Category))))
    return [c for c in Category if c.value in codes]  # in the usual order


def _enum(kind: Any, value: Any, name: str, errors: list[FieldError], default: Any = None) -> Any:
    text = str(getattr(value, "value", value) or "").strip()
    if not text and default is not None:
        return default
    try:
        return kind(text)
    except ValueError:
        errors.append(FieldError(name, _("must be one of %(values)s", values=", ".join(k.value for k in kind))))
        return default


def _date(value: Any, name: str, errors: list[FieldError]) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        parsed = date.fromisoformat(str(value).strip())
    except ValueError:
        errors.append(FieldError(name, _("must be a date such as 2027-03-31")))
        return None
    if not 2000 <= parsed.year <= 2100:
        errors.append(FieldError(name, _("must be between %(low)s and %(high)s", low=2000, high=2100)))
        return None
    return parsed


def clean_pathway(data: Mapping[str, Any]) -> dict[str, Any]:
    """The pathway's fields checked and normalised; raises ValidationFailed naming every bad field."""
    errors: list[FieldError] = []
    documents = _items(data.get("documents"), lines=True)
    out: dict[str, Any] = {
        "name": _text(data.get("name"), "name", errors, high=200, required=True),
        "type": _enum(PathwayType, data.get("type"), "type", errors),
        "description": _text(data.get("description"), "description", errors, high=5000),
        "nationalities": _countries(data.get("nationalities"), "nationalities", errors),
        "locations": _countries(data.get("locations"), "locations", errors),
        "categories": _categories(data.get("categories"), errors),
        "conditions": _text(data.get("conditions"), "conditions", errors, high=2000),
        "year": _integer(data.get("year"), "year", errors, low=2000, high=2100, default=today().year),
        "places": _integer(data.get("places"), "places", errors, default=0),
        "places_used": _integer(data.get("places_used"), "places_used", errors, default=0),
        "processing_days": _integer(data.get("processing_days"), "processing_days", errors, high=3650),
        "fee_amount": _amount(data.get("fee_amount"), "fee_amount", errors),
        "fee_currency": _text(data.get("fee_currency"), "fee_currency", errors, high=3).upper(),
        "documents": list(dict.fromkeys(documents)),
        "responsible": _text(data.get("responsible"), "responsible", errors, high=200),
        "status": _enum(PathwayStatus, data.get("status"), "status", errors, default=PathwayStatus.open),
        "opens_on": _date(data.get("opens_on"), "opens_on", errors),
        "closes_on": _date(data.get("closes_on"), "closes_on", errors),
    }
    if len(out["documents"]) > MAX_DOCUMENTS:
        errors.append(FieldError("documents", _("at most %(high)s documents", high=MAX_DOCUMENTS)))
    if any(len(d) > 200 for d in out["documents"]):
        errors.append(FieldError("documents", _("each document at most %(high)s characters", high=200)))
    if out["places_used"] > out["places"] and not any(e.field in ("places", "places_used") for e in errors):
        errors.append(FieldError("places_used", _("cannot be more than the places")))
    if out["fee_currency"] and not CURRENCY.match(out["fee_currency"]):
        errors.append(FieldError("fee_currency", _("must be an ISO 4217 currency code such as EUR")))
    elif out["fee_amount"] and not out["fee_currency"]:
        errors.append(FieldError("fee_currency", _("is required with a fee")))
    if out["opens_on"] and out["closes_on"] and out["closes_on"] < out["opens_on"]:
        errors.append(FieldError("closes_on", _("cannot be before the opening date")))
    if errors:
        raise ValidationFailed(errors=errors)
    return out


def pathway_keys(nationalities: list[str], locations: list[str]) -> list[str]:
    """What search matches: "n:VE" per eligible nationality, "l:CO" per location. A pathway open to any
    nationality (or location) has no "n:" (or "l:") key: search matches its empty list instead, so that the
    many pathways open to all do not make every probe long."""
    return [f"n:{c}" for c in nationalities] + [f"l:{c}" for c in locations]


def key_rows(pathway_id: uuid.UUID, nationalities: list[str], locations: list[str]) -> list[PathwayKey]:
    return [PathwayKey(key=key, pathway_id=pathway_id) for key in dict.fromkeys(pathway_keys(nationalities,
                                                                                              locations))]


def _set_keys(session: Session, pathway: Pathway) -> None:
    """Replace the pathway's search keys with those of its nationalities and locations now."""
    session.execute(delete(PathwayKey).where(PathwayKey.pathway_id == pathway.id))
    session.add_all(key_rows(pathway.id, pathway.nationalities, pathway.locations))


def pathway_values(pathway: Pathway) -> dict[str, Any]:
    return {name: getattr(pathway, name) for name in FIELDS}


# Writing --------------------------------------------------------------------------------------------------------


def _insert(session: Session, actor: Principal | Actor, org: Organization, values: dict[str, Any]) -> Pathway:
    now = clock.now()
    pathway = Pathway(org_id=org.id, country=org.country, status_since=now.date(), created_at=now, updated_at=now,
                      **values)
    session.add(pathway)
    session.flush()
    _set_keys(session, pathway)
    audit.record(session, action="pathway.create", actor=actor, object_type="pathway", object_id=pathway.id,
                 org_id=org.id, details={"name": pathway.name, "country": pathway.country,
                                         "type": pathway.type.value, "status": pathway.status.value})
    return pathway


def create_pathway(session: Session, *, actor: Principal, data: Mapping[str, Any]) -> Pathway:
    """A new pathway of the actor's government (its country is the government's)."""
    policy.require(actor, "pathway.manage")
    values = clean_pathway(data)
    org = session.get(Organization, actor.org_id)
    if org is None or not org.country:
        raise ValidationFailed("country", _("your organization has no country"))
    return _insert(session, actor, org, values)


def update_pathway(session: Session, *, actor: Principal, pathway: Pathway, data: Mapping[str, Any]) -> Pathway:
    """Change some fields of one of the actor's government's pathways (the others keep their values)."""
    policy.require(actor, "pathway.manage", pathway)
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValidationFailed(errors=[FieldError(k, _("unknown field")) for k in unknown])
    values = clean_pathway({**pathway_values(pathway), **data})
    changed = {k: v for k, v in values.items() if getattr(pathway, k) != v}
    for key, value in changed.items():
        setattr(pathway, key, value)
    if "status" in changed:
        pathway.status_since = today()
    if "nationalities" in changed or "locations" in changed:
        _set_keys(session, pathway)
    pathway.updated_at = clock.now()
    details: dict[str, Any] = {"changed": sorted(changed)}
    if "status" in changed:
        details["status"] = pathway.status.value
    audit.record(session, action="pathway.update", actor=actor, object_type="pathway", object_id=pathway.id,
                 org_id=pathway.org_id, details=details)
    return pathway


# Reading --------------------------------------------------------------------------------------------------------


def reading(session: Session) -> Session:
    """Mark a request's session as one that only reads: on SQLite it then begins DEFERRED, as
    ``rdn.db.read_only`` does, so that searches share the database instead of queueing one by one for the write
    lock every SQLite transaction otherwise takes. Nothing changes on PostgreSQL, or once the session has begun
    (or in the test harness, whose sessions join one connection)."""
    if session.get_bind().dialect.name == "sqlite" and isinstance(session.get_bind(), Engine) \
            and not session.in_transaction():
        session.connection(execution_options={"sqlite_begin": "DEFERRED"})
    return session



def _code(value: str, name: str) -> str:
    code = value.strip().upper()
    if code and not (len(code) == 2 and code.isalpha()):
        raise ValidationFailed(name, _("not an ISO 3166 country code"))
    return code


def _like(text: str) -> str:
    escaped = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


#: What a list of pathways shows (the search page reads these columns only, not whole pathways).
LISTED = (Pathway.id, Pathway.country, Pathway.name, Pathway.type, Pathway.status, Pathway.year, Pathway.places,
          Pathway.places_used, Pathway.processing_days, Pathway.fee_amount, Pathway.fee_currency)
#: Every column: what the API gives of each pathway found (rows, not ORM objects: a search reads many and
#: changes none, and building objects was a tenth of an API search's time).
EVERY_COLUMN = tuple(getattr(Pathway, c.key) for c in Pathway.__table__.columns)
#: What the obstacles beside a search show.
OBSTACLE_LISTED = (Obstacle.id, Obstacle.title, Obstacle.type, Obstacle.severity, Obstacle.status,
                   Obstacle.nationalities)


def _listed_or_any(codes: Any, key: str) -> Any:
    """The pathway names the code (its key), or lists no code at all (open to any)."""
    return or_(is_empty_list(codes),
               Pathway.id.in_(select(PathwayKey.pathway_id).where(PathwayKey.key == key)))


def search(session: Session, actor: Principal, *, nationality: str = "", current_country: str = "",
           type: str = "", status: str = "", q: str = "", page: int = 1, per_page: int = 25,
           listed: bool = False) -> Page[Any]:
    """The pathways open to people of ``nationality`` who are in ``current_country`` (each optional), open ones
    first, then by destination country and name: rows of every column, or with ``listed`` of the LISTED
    columns."""
    policy.require(actor, "pathway.read")
    stmt = policy.scoped(actor, Pathway)
    nat, where = _code(nationality, "nationality"), _code(current_country, "current_country")
    if nat:
        stmt = stmt.where(_listed_or_any(Pathway.nationalities, f"n:{nat}"))
    if where:
        stmt = stmt.where(_listed_or_any(Pathway.locations, f"l:{where}"))
    if type:
        errors: list[FieldError] = []
        kind = _enum(PathwayType, type, "type", errors)
        if errors:
            raise ValidationFailed(errors=errors)
        stmt = stmt.where(Pathway.type == kind)
    if status:
        errors = []
        state = _enum(PathwayStatus, status, "status", errors)
        if errors:
            raise ValidationFailed(errors=errors)
        stmt = stmt.where(Pathway.status == state)
    if q.strip():
        like = _like(q)
        stmt = stmt.where(or_(func.lower(Pathway.name).like(like, escape="\\"),
                              func.lower(Pathway.description).like(like, escape="\\"),
                              func.lower(Pathway.responsible).like(like, escape="\\")))
    open_first = case((Pathway.status == PathwayStatus.open, 0), else_=1)
    return _paginate(session, stmt.order_by(open_first, Pathway.country, Pathway.name, Pathway.id), page=page,
                     per_page=per_page, listed=listed)


def _paginate(session: Session, stmt: Select[Any], *, page: int, per_page: int, listed: bool) -> Page[Any]:
    """``rdn.core.pagination.paginate`` in one query where it can: the page's rows carry the count of every match
    (a window), so the key probes run once rather than once for the count and again for the page."""
    page, per_page = max(1, page), max(1, min(MAX_PER_PAGE, per_page))
    columns = LISTED if listed else EVERY_COLUMN
    rows = session.execute(stmt.with_only_columns(*columns, func.count().over())
                           .limit(per_page).offset((page - 1) * per_page)).all()
    if rows:
        return Page(list(rows), int(rows[0][-1]), page, per_page)
    if page == 1:
        return Page([], 0, page, per_page)
    return paginate(session, stmt.with_only_columns(*columns), page=page, per_page=per_page)  # past the end


def obstacles_for(session: Session, actor: Principal, *, nationality: str, current_country: str
                  ) -> list[Any]:
    """The unresolved obstacles in ``current_country`` that affect people of ``nationality`` (those naming it,
    and those affecting everyone), most severe first, as rows of the OBSTACLE_LISTED columns; at most
    MAX_OBSTACLES. Empty without a country, or for a caller who may not read obstacles."""
    where = _code(current_country, "current_country")
    nat = _code(nationality, "nationality")
    if not where or not policy.can(actor, "obstacle.read"):
        return []
    stmt = policy.scoped(actor, Obstacle).where(Obstacle.country == where,
                                                Obstacle.status != ObstacleStatus.resolved)
    if nat:
        stmt = stmt.where(or_(has_any(Obstacle.nationalities, _keys([nat])),
                              is_empty_list(Obstacle.nationalities)))
    rank = case(SEVERITY_RANK, value=Obstacle.severity, else_=0)
    stmt = stmt.order_by(rank.desc(), Obstacle.updated_at.desc(), Obstacle.id).limit(MAX_OBSTACLES)
    return list(session.execute(stmt.with_only_columns(*OBSTACLE_LISTED)))


@dataclass(frozen=True)
class PathwayPlaces:
    id: uuid.UUID
    name: str
    type: PathwayType
    status: PathwayStatus
    places: int
    used: int


@dataclass(frozen=True)
class CountryPlaces:
    country: str
    places: int
    used: int
    count: int  # pathways
    pathways: list[PathwayPlaces]  # empty when not asked for

    @property
    def share(self) -> float:
        """Used over offered, 0 to 1 (0 when nothing is offered)."""
        return min(1.0, self.used / self.places) if self.places else 0.0


def places_by_country(session: Session, actor: Principal, year: int, *, pathways: bool = True
                      ) -> list[CountryPlaces]:
    """Places offered and used in ``year`` per destination country (by country code), with each country's
    pathways (most places first) unless ``pathways`` is false (the sums only, added up by the database).
    Every pathway of the year counts, whatever its status now."""
    policy.require(actor, "pathway.read")
    scoped = policy.scoped(actor, Pathway).where(Pathway.year == year)
    if not pathways:
        sums = session.execute(scoped.with_only_columns(
            Pathway.country, func.sum(Pathway.places), func.sum(Pathway.places_used), func.count())
            .group_by(Pathway.country).order_by(Pathway.country)).all()
        return [CountryPlaces(country, int(places or 0), int(used or 0), n, []) for country, places, used, n in sums]
    rows = session.execute(
        scoped.with_only_columns(Pathway.id, Pathway.country, Pathway.name, Pathway.type, Pathway.status,
                                 Pathway.places, Pathway.places_used)
        .order_by(Pathway.country, Pathway.places.desc(), Pathway.name, Pathway.id)).all()
    grouped: dict[str, list[PathwayPlaces]] = defaultdict(list)
    for row in rows:
        grouped[row.country].append(PathwayPlaces(row.id, row.name, PathwayType(row.type),
                                                  PathwayStatus(row.status), row.places, row.places_used))
    return [CountryPlaces(country, sum(p.places for p in items), sum(p.used for p in items), len(items), items)
            for country, items in grouped.items()]


# Demo data ------------------------------------------------------------------------------------------------------

DEMO_ACTOR = Actor("rdn demo")
ILLUSTRATIVE = " Figures are illustrative (demo data), not official statistics."
#: The Safe Mobility Offices' countries in the Americas, and the nationalities they refer.
SMO_LOCATIONS = ["CO", "CR", "EC", "GT"]
SMO_NATIONALITIES = ["VE", "CO", "CU", "HT", "NI"]
REFUGEE_DOCS = ["UNHCR Resettlement Registration Form", "Identity documents, where available",
                "Medical examination", "Security and criminality screening"]
SPONSOR_DOCS = ["Sponsorship undertaking", "Settlement plan", "Proof of the sponsor's funds",
                "Refugee status determination (UNHCR or a state)"]

#: government -> pathways: (name, type, status, nationalities, locations, categories, places, used,
#: processing days, fee (amount, currency) or None, documents, responsible, description, conditions)
DEMO: dict[str, list[tuple[Any, ...]]] = {
    "ca": [
        ("Government-Assisted Refugees (GAR)", "resettlement", "open", "", "", "", 15250, 9870, 540, None,
         REFUGEE_DOCS, "Immigration, Refugees and Citizenship Canada (IRCC)",
         "Refugees referred by UNHCR or another designated referral organization are resettled with initial "
         "income support and settlement services from the Government of Canada.",
         "Referral by UNHCR or a designated referral organization; admissibility (medical, security)."),
        ("Private Sponsorship of Refugees (PSR)", "sponsorship_named", "open", "", "", "", 23000, 14100, 960,
         None, SPONSOR_DOCS, "IRCC with Sponsorship Agreement Holders, Groups of Five and community sponsors",
         "Canadians and permanent residents name and sponsor refugees, supporting them for twelve months.",
         "Groups of Five and community sponsors need a refugee status determination by UNHCR or a state."),
        ("Blended Visa Office-Referred (BVOR)", "sponsorship_matched", "open", "", "", "", 400, 185, 480, None,
         SPONSOR_DOCS, "IRCC with the Refugee Sponsorship Training Program",
         "Refugees referred by UNHCR are matched with private sponsors; the government and the sponsors share "
         "the first year's income support.", ""),
        ("Economic Mobility Pathways Pilot (EMPP)", "labour_mobility", "open", "", "", "", 2000, 860, 365, None,
         ["Job offer or qualifying work experience", "Language test results", "Proof of refugee status or need "
          "for protection"], "IRCC with Talent Beyond Boundaries, RefugePoint and other partners",
         "Skilled refugees come to Canada through economic immigration streams, with fee waivers and loans for "
         "settlement costs.", "A job offer from a Canadian employer or eligibility under a federal economic "
         "stream."),
        ("Student Refugee Program (WUSC)", "education", "open", "", "KE,MW,JO,LB,UG", "", 150, 132, 300, None,
         ["Secondary school certificate", "University admission", "Language test results"],
         "World University Service of Canada (WUSC) with campus committees",
         "Young refugees are resettled as permanent residents and study at a Canadian university or college.",
         "Aged 17 to 25, single, with completed secondary school."),
        ("One-Year Window of Opportunity (family)", "family_reunification", "open", "", "", "", 1500, 620, 420,
         None, ["Proof of relationship", "Identity documents", "Medical examination"], "IRCC",
         "Family members left behind may join a resettled refugee within a year of the refugee's arrival.",
         "The family member was declared on the refugee's application; request within one year of arrival."),
        ("Resettlement from Safe Mobility Offices", "resettlement", "open", ",".join(SMO_NATIONALITIES),
         ",".join(SMO_LOCATIONS), "", 4000, 1650, 300, None, REFUGEE_DOCS, "IRCC with UNHCR and IOM",
         "People registered at the Safe Mobility Offices in Colombia, Costa Rica, Ecuador and Guatemala are "
         "referred for resettlement in Canada.", "Registered with a Safe Mobility Office; referral by UNHCR."),
        ("Humanitarian pathway for Colombians, Haitians and Venezuelans", "humanitarian_admission", "closed",
         "CO,HT,VE", "CO,EC,PE,CR,PA,MX,BR,CL,DO,GT", "", 11000, 11000, 360, None,
         ["Statutory declaration of the anchor relative in Canada", "Passport or identity document",
          "Proof of relationship"], "IRCC",
         "Permanent residence for nationals of Colombia, Haiti and Venezuela in Central or South America or the "
         "Caribbean with extended family in Canada; the cap was reached and it is closed to new applications.",
         "An anchor relative in Canada who is a citizen or permanent resident and commits to support."),
    ],
    "us": [
        ("U.S. Refugee Admissions Program (USRAP)", "resettlement", "paused", "", "", "", 125000, 31200, 720,
         None, REFUGEE_DOCS, "Department of State (PRM) and USCIS",
         "Refugees referred by UNHCR, an embassy or a designated NGO are interviewed by USCIS and resettled "
         "with a resettlement agency.", "Admissions are suspended pending review."),
        ("Welcome Corps private sponsorship", "sponsorship_matched", "paused", "", "", "", 10000, 2100, 540, None,
         SPONSOR_DOCS, "Department of State with the Welcome Corps consortium",
         "Groups of Americans sponsor refugees approved under USRAP for their first ninety days.",
         "Suspended with refugee admissions."),
        ("Safe Mobility Office processing to the United States", "resettlement", "paused",
         ",".join(SMO_NATIONALITIES), ",".join(SMO_LOCATIONS), "", 20000, 7400, 240, None, REFUGEE_DOCS,
         "Department of State (PRM) with UNHCR and IOM",
         "Refugee processing for people registered at the Safe Mobility Offices.",
         "Suspended with refugee admissions."),
        ("Parole for Cubans, Haitians, Nicaraguans and Venezuelans (CHNV)", "humanitarian_admission", "closed",
         "CU,HT,NI,VE", "", "", 0, 0, 60, None,
         ["Valid passport", "Form I-134A by a supporter in the United States"], "DHS and USCIS",
         "Two-year humanitarian parole with a supporter in the United States (up to 30,000 travel authorizations "
         "a month while it ran).", "Terminated: no places this year."),
        ("Follow-to-join refugee relatives (I-730)", "family_reunification", "open", "", "", "", 5000, 2300, 600,
         (0, "USD"), ["Form I-730", "Proof of relationship"], "USCIS and the Department of State",
         "Spouses and unmarried children under 21 of refugees and asylees admitted to the United States.",
         "File within two years of the principal's admission."),
    ],
    "es": [
        ("National resettlement programme", "resettlement", "open", "SY,AF,SD,SS,ER,SO", "LB,JO,TR,EG,NE,LY", "",
         1200, 710, 360, None, REFUGEE_DOCS, "Ministry of Inclusion, Social Security and Migration",
         "Spain resettles refugees referred by UNHCR from the Middle East and Africa.", ""),
        ("Humanitarian visas (Asylum Law, article 38)", "humanitarian_admission", "open", "", "", "", 500, 230, 90,
         (0, "EUR"), ["Passport or travel document", "Statement of the risk faced", "Supporting evidence"],
         "Ministry of the Interior and the consulates of Spain",
         "People at risk apply at a Spanish embassy or consulate; the visa lets them travel to Spain and apply "
         "for international protection.", "Decided case by case; a risk to life or physical integrity."),
        ("Resettlement from Safe Mobility Offices", "resettlement", "open", ",".join(SMO_NATIONALITIES),
         ",".join(SMO_LOCATIONS), "", 300, 122, 240, None, REFUGEE_DOCS,
         "Ministry of Inclusion, Social Security and Migration, with UNHCR and IOM",
         "People registered at the Safe Mobility Offices in Colombia, Costa Rica, Ecuador and Guatemala are "
         "referred for resettlement in Spain.", "Registered with a Safe Mobility Office; referral by UNHCR."),
        ("Community sponsorship (patrocinio comunitario)", "sponsorship_matched", "open", "", "", "", 100, 45,
         300, None, SPONSOR_DOCS, "Ministry of Inclusion with the Basque Country, Valencia, Navarre and Catalonia",
         "Resettled refugees are welcomed by local sponsor groups who support them for eighteen months.", ""),
        ("Family reunification of protection holders", "family_reunification", "open", "", "", "", 900, 380, 270,
         (0, "EUR"), ["Proof of relationship", "Passport or travel document"],
         "Ministry of the Interior (Asylum and Refugee Office)",
         "Family members of people granted international protection in Spain.", ""),
    ],
    "br": [
        ("Humanitarian visas for Afghans", "humanitarian_admission", "open", "AF", "PK,IR,TR,QA,AE,RU", "", 3000,
         1940, 120, (0, "BRL"), ["Passport or travel document", "Proof of nationality", "Criminal record"],
         "Ministry of Justice and Public Security and Ministry of Foreign Affairs",
         "Temporary humanitarian visas for Afghans and stateless people affected by the situation in "
         "Afghanistan, issued at embassies in the region.", "No host in Brazil is required."),
        ("Humanitarian visas for Haitians", "humanitarian_admission", "open", "HT", "HT", "", 4000, 2620, 150,
         (0, "BRL"), ["Passport", "Criminal record"], "Ministry of Justice and Public Security",
         "Temporary humanitarian visas for Haitian nationals, processed in Port-au-Prince.", ""),
        ("Humanitarian visas for Ukrainians", "humanitarian_admission", "open", "UA", "", "", 1000, 160, 60,
         (0, "BRL"), ["Passport or identity document"], "Ministry of Justice and Public Security",
         "Temporary humanitarian visas and residence for Ukrainians and stateless people affected by the war.", ""),
        ("Humanitarian reception and interiorization of Venezuelans (Operação Acolhida)",
         "humanitarian_admission", "open", "VE", "VE,CO,GY", "", 30000, 21400, 30, None,
         ["Identity document (expired accepted)"], "Federal Government with UNHCR, IOM and civil society",
         "Reception at the northern border, documentation and voluntary relocation to cities across Brazil "
         "with housing or a job.", ""),
        ("Family reunion visa (VITEM XI)", "family_reunification", "open", "", "", "", 2500, 900, 120, None,
         ["Proof of relationship", "Proof of the relative's status in Brazil"], "Ministry of Foreign Affairs",
         "Relatives of refugees and residents in Brazil apply at a Brazilian consulate.", ""),
    ],
    "de": [
        ("Federal resettlement programme", "resettlement", "open", "", "TR,LB,JO,EG,KE,NE", "", 6500, 3100, 420,
         None, REFUGEE_DOCS, "Federal Office for Migration and Refugees (BAMF)",
         "Refugees referred by UNHCR are admitted under the EU resettlement framework.", ""),
        ("Federal admission programme for Afghanistan", "humanitarian_admission", "closed", "AF", "AF,PK,IR", "",
         12000, 3900, 540, None, ["Identity document", "Proof of exposure (work, activism)"],
         "Federal Foreign Office and BAMF with civil-society reporting bodies",
         "Admission of Afghans at particular risk through their work for women's rights, justice, politics, "
         "culture or the media; no new admissions.", "Only through the programme's reporting bodies."),
        ("Neustart im Team (NesT)", "sponsorship_matched", "open", "", "", "", 200, 92, 420, None, SPONSOR_DOCS,
         "BAMF with civil-society mentoring groups",
         "Resettled refugees are accompanied by mentoring groups who find housing and support them for two "
         "years.", ""),
    ],
    "gb": [
        ("UK Resettlement Scheme (UKRS)", "resettlement", "open", "", "", "", 750, 410, 365, None, REFUGEE_DOCS,
         "Home Office", "Refugees referred by UNHCR are resettled with local authorities.", ""),
        ("Afghan Citizens Resettlement Scheme (ACRS)", "resettlement", "closed", "AF", "", "", 5000, 4950, 480,
         None, ["Identity document", "Evidence of risk"], "Home Office",
         "Resettlement of Afghans at risk, including women and girls and minorities; closed to new referrals.",
         ""),
        ("Community Sponsorship", "sponsorship_matched", "open", "", "", "", 200, 64, 365, None, SPONSOR_DOCS,
         "Home Office with Reset Communities and Refugees",
         "Community groups welcome a refugee family resettled through the UK Resettlement Scheme.", ""),
        ("Refugee family reunion", "family_reunification", "paused", "", "", "", 8000, 5200, 90, (0, "GBP"),
         ["Proof of relationship", "Passport or travel document"], "Home Office",
         "Partners and children under 18 of refugees in the United Kingdom.",
         "New applications are suspended while the rules are reviewed."),
    ],
    "au": [
        ("Offshore Humanitarian Program (subclass 200 and 202)", "resettlement", "open", "", "", "", 20000, 13200,
         600, None, REFUGEE_DOCS, "Department of Home Affairs",
         "Refugees referred by UNHCR and people proposed by family in Australia under the Special Humanitarian "
         "Program.", ""),
        ("Community Support Program (CSP)", "sponsorship_named", "open", "", "", "", 1500, 700, 540,
         (19000, "AUD"), [*SPONSOR_DOCS, "Job offer or skills assessment"],
         "Department of Home Affairs with Approved Proposing Organisations",
         "Australian organisations and communities propose refugees with job prospects and meet their "
         "settlement costs.", "Aged 18 to 50, functional English and a job offer or skills."),
        ("Skilled Refugee Labour Agreement Pilot", "labour_mobility", "open", "", "", "", 500, 118, 300, None,
         ["Job offer", "Skills assessment", "English test results"],
         "Department of Home Affairs with Talent Beyond Boundaries",
         "Employers sponsor skilled refugees for skilled visas.", ""),
    ],
    "nz": [
        ("Refugee Quota Programme", "resettlement", "open", "", "", "", 1500, 1080, 365, None, REFUGEE_DOCS,
         "Immigration New Zealand", "Refugees referred by UNHCR are resettled after a reception programme.", ""),
        ("Community Organisation Refugee Sponsorship (CORS)", "sponsorship_named", "open", "", "", "", 150, 61, 420,
         None, [*SPONSOR_DOCS, "English language evidence"], "Immigration New Zealand",
         "Approved community organisations sponsor refugees and support them for two years.",
         "Recognised by UNHCR; basic English."),
    ],
    "it": [
        ("Humanitarian corridors", "humanitarian_admission", "open", "SY,AF,ER,SD,SS,SO", "LB,ET,NE,JO,PK,IR,LY", "",
         1500, 880, 180, None, ["Identity document", "Vulnerability assessment"],
         "Ministries of the Interior and Foreign Affairs with the Community of Sant'Egidio, the Federation of "
         "Evangelical Churches in Italy, the Waldensian Table and Caritas Italiana",
         "People in vulnerable situations travel safely on humanitarian visas; faith-based organizations host "
         "and support them.", ""),
        ("National resettlement programme", "resettlement", "open", "", "LY,NE,LB,JO", "", 700, 310, 360, None,
         REFUGEE_DOCS, "Ministry of the Interior", "Refugees referred by UNHCR, including evacuations from Libya.",
         ""),
        ("University corridors for refugees (UNICORE)", "education", "open", "", "ET,KE,NG,UG,ZM,ZW,CM,MZ", "", 70,
         48, 240, None, ["Bachelor's degree", "University admission", "English test results"],
         "Italian universities with UNHCR and Caritas Italiana",
         "Refugee graduates study for a master's degree at an Italian university.", ""),
    ],
}


def seed(ctx: DemoContext) -> None:
    """The demo governments' pathways (run once: nothing happens if the catalog has pathways)."""
    session = ctx.session
    if session.scalar(select(func.count()).select_from(Pathway)):
        return
    year, created = today().year, 0
    for gov, rows in DEMO.items():
        org = ctx.orgs.get(gov)
        if org is None:
            continue
        for n, (name, kind, status, nats, locs, cats, places, used, days, fee, docs, responsible, description,
                conditions) in enumerate(rows):
            values = clean_pathway({
                "name": name, "type": kind, "status": status, "nationalities": nats, "locations": locs,
                "categories": cats, "year": year, "places": places, "places_used": used, "processing_days": days,
                "fee_amount": fee[0] if fee else None, "fee_currency": fee[1] if fee else "", "documents": docs,
                "responsible": responsible, "description": description + ILLUSTRATIVE, "conditions": conditions,
                "opens_on": date(year, 1, 1) if status == "open" and kind != "family_reunification" else None,
                "closes_on": date(year, 12, 31) if status == "open" and kind == "resettlement" else None})
            pathway = _insert(session, DEMO_ACTOR, org, values)
            # Open since the year began; paused or closed some weeks ago.
            pathway.status_since = (date(year, 1, 1) if status == "open"
                                    else today() - timedelta(days=40 + 25 * n))
            created += 1
    session.flush()
    ctx.say(f"Created {created} pathways")
