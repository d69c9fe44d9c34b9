"""Case lists: filters, sorting, pagination, and name search across transliterations.

Every list starts from ``policy.scoped(principal, Case)``. Name search only looks at people whose identity
the caller may see: the owner's case handlers on their own cases, a recipient government's handlers on
cases referred to it with the identity section. A search that looks like a case number finds the case by
its number (or a number it had under an earlier owner).
"""

from __future__ import annotations

import functools
import json
import operator
import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY as PG_ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean, TypeDecorator, TypeEngine

from rdn.cases import names
from rdn.cases.models import (
    LIVE_REFERRAL,
    PRIORITY_RANK,
    Case,
    CaseShare,
    Category,
    Member,
    Priority,
    Referral,
    Section,
)
from rdn.cases.pipeline import Stage, is_open
from rdn.cases.policy import HANDLERS, listing_scope, owner_sections
from rdn.cases.policy import case_staff as policy_case_staff
from rdn.core import clock, policy
from rdn.core.identity import Principal
from rdn.core.pagination import MAX_PER_PAGE, Page
from rdn.core.tenancy import OrgKind

CASE_NUMBER = re.compile(r"^[A-Za-z0-9]+-\d{2}-\d{1,9}$")
COUNT_CAP = 1_000  # a list says "more than 1,000" rather than counting every case of a broad filter
SORTS = ("relevance", "due", "updated", "number", "priority", "name")

# Soonest due first, cases without a clock last: written as NULLS LAST (not "due_at IS NULL" first) so that
# PostgreSQL walks the (owner, due_at) index in order and stops at the page instead of sorting every match.
_DUE = Case.due_at.asc().nulls_last()


@dataclass
class CaseFilters:
    q: str = ""
    stage: list[str] = field(default_factory=list)
    priority: str = ""
    category: str = ""
    nationality: str = ""
    current_country: str = ""
    overdue: bool | None = None
    referred_to: uuid.UUID | None = None
    relation: str = ""  # "" (all), "owned", "referred" (to my organization)
    sort: str = ""

    def active(self) -> bool:
        return any((self.q, self.stage, self.priority, self.category, self.nationality, self.current_country,
                    self.overdue is not None, self.referred_to, self.relation))


def _identity_scope(p: Principal) -> ColumnElement[bool]:
    """The cases (``Case``, in the enclosing query) whose people's identities ``p`` may see."""
    conditions = []
    if Section.identity in owner_sections(p):
        conditions.append(Case.owner_org_id == p.org_id)
    if p.roles & HANDLERS and p.org_kind == OrgKind.government and p.org_id is not None:
        conditions.append(exists(select(CaseShare.case_id).where(
            CaseShare.org_id == p.org_id, CaseShare.case_id == Case.id,
            CaseShare.identity_until >= clock.now().date())))
    return or_(*conditions) if conditions else false()


class _KeyList(TypeDecorator[list[str]]):
    """Name keys as one parameter: a text array for PostgreSQL, a JSON array for SQLite (read by json_each)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(PG_ARRAY(Text()) if dialect.name == "postgresql" else Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return list(value) if dialect.name == "postgresql" else json.dumps(list(value))


class has_any(FunctionElement[bool]):
    """``has_any(Member.name_keys, keys)``: the member has one of the keys (a GIN index probe on PostgreSQL)."""

    type = Boolean()
    inherit_cache = True


class has_all(FunctionElement[bool]):
    """``has_all(Member.name_keys, keys)``: the member has every one of the keys (distinct keys)."""

    type = Boolean()
    inherit_cache = True


@compiles(has_any, "postgresql")
def _has_any_pg(element: has_any, compiler: Any, **kw: Any) -> str:
    column, keys = (compiler.process(c, **kw) for c in element.clauses)
    return f"({column} ?| CAST({keys} AS TEXT[]))"


@compiles(has_all, "postgresql")
def _has_all_pg(element: has_all, compiler: Any, **kw: Any) -> str:
    column, keys = (compiler.process(c, **kw) for c in element.clauses)
    return f"({column} ?& CAST({keys} AS TEXT[]))"


@compiles(has_any)
def _has_any_json(element: has_any, compiler: Any, **kw: Any) -> str:
    column, keys = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXISTS (SELECT 1 FROM json_each({column}) AS k WHERE k.value IN (SELECT value FROM json_each({keys})))"


@compiles(has_all)
def _has_all_json(element: has_all, compiler: Any, **kw: Any) -> str:
    column, keys = (compiler.process(c, **kw) for c in element.clauses)
    return (f"((SELECT count(DISTINCT k.value) FROM json_each({column}) AS k WHERE k.value IN "
            f"(SELECT value FROM json_each({keys}))) = json_array_length({keys}))")


def _keys(keys: Any) -> Any:
    return literal(tuple(dict.fromkeys(keys)), _KeyList())


def _spelled(token: names.QueryToken) -> Any:
    """1 when the member has ``token`` spelled as typed, else 0."""
    return case((has_any(Member.name_keys, _keys([token.exact])), 1), else_=0)


def _query_tokens(text: str) -> list[names.QueryToken]:
    """The search's tokens, one per distinct set of alternatives."""
    seen: set[tuple[str, ...]] = set()
    unique = []
    for token in names.query(text):
        if token.alternatives not in seen:
            seen.add(token.alternatives)
            unique.append(token)
    return unique


def name_matches(p: Principal, text: str) -> Any | None:
    """A subquery of (case_id, rank) for cases with a person matching every token of ``text`` (every match:
    exports use it; the paged list uses ``_name_page``, which stops at PEOPLE_CAP people)."""
    unique = _query_tokens(text)
    if not unique:
        return None
    rank = functools.reduce(operator.add, [_spelled(t) for t in unique])
    people = (select(Member.case_id.label("case_id"), rank.label("rank"))
              .join(Case, Case.id == Member.case_id)
              .where(_identity_scope(p), *(has_any(Member.name_keys, _keys(t.alternatives)) for t in unique))
              .subquery())
    return (select(people.c.case_id, func.max(people.c.rank).label("rank"))
            .group_by(people.c.case_id).subquery())


def scoped_cases(p: Principal) -> Select[Any]:
    """The cases ``p`` may see, for lists (``policy.listing_scope``: the same rule, read from ``case_shares``)."""
    return select(Case).where(listing_scope(p))


def filtered(p: Principal, f: CaseFilters, *, scoped: bool = True) -> Select[Any]:
    """The cases matching ``f`` that ``p`` may see, sorted (``scoped=False``: the caller applies a narrower
    scope of its own, as name search does through the name keys)."""
    shape, values = _shape(p, f)
    stmt = (scoped_cases(p) if scoped else select(Case)).where(*_conditions(Case, Case.id, shape)).params(values)
    if f.relation == "owned":
        stmt = stmt.where(Case.owner_org_id == p.org_id)
    elif f.relation == "referred":
        stmt = stmt.where(Case.owner_org_id != p.org_id)
    if f.referred_to is not None and f.referred_to != p.org_id:
        # Where else a case was referred is its owner's to know (a recipient sees its own referrals only).
        stmt = stmt.where(Case.owner_org_id == p.org_id)
    rank = None
    q = f.q.strip()
    if q and CASE_NUMBER.match(q):
        number = q.upper()
        stmt = stmt.where(or_(Case.number == number, has_any(Case.previous_numbers, _keys([number]))))
    elif q:
        matches = name_matches(p, q)
        if matches is None:
            return stmt.where(false())
        stmt = stmt.join(matches, matches.c.case_id == Case.id)
        rank = matches.c.rank
    return _order(stmt, f.sort, rank)


@dataclass(frozen=True)
class _Shape:
    """What a list's query looks like whatever the values (the statement of each shape is built once, its values
    passed as parameters named ``f_...``, from ``_shape``)."""

    own: bool  # the caller's own cases
    shared: bool  # the cases shared with the caller (a government)
    stages: int  # how many stages are asked for (f_stage_0, ...)
    no_stage: bool  # stages were asked for, none of them real: nothing matches
    priority: bool
    category: bool
    nationality: bool
    country: bool
    overdue: bool | None
    referred_to: bool
    number: bool  # a case number (or one it had under an earlier owner)
    sort: str  # a key of _SORT_NEEDS


def _shape(p: Principal, f: CaseFilters) -> tuple[_Shape, dict[str, Any]]:
    """The shape of ``f``'s query for ``p``, and its parameters."""
    stages = [Stage(s).value for s in dict.fromkeys(f.stage) if s in Stage.__members__]
    category = f.category.upper()
    q = f.q.strip()
    number = bool(q) and bool(CASE_NUMBER.match(q))
    government = p.org_kind == OrgKind.government and p.org_id is not None
    shape = _Shape(
        own=f.relation != "referred",
        shared=(f.relation != "owned" and government and (f.referred_to is None or f.referred_to == p.org_id)),
        stages=len(stages), no_stage=bool(f.stage) and not stages, priority=f.priority in Priority.__members__,
        category=category in Category.__members__, nationality=bool(f.nationality),
        country=bool(f.current_country), overdue=f.overdue, referred_to=f.referred_to is not None,
        number=number, sort=f.sort if f.sort in _SORT_NEEDS else "due")
    now = clock.now()
    values: dict[str, Any] = {"f_org": p.org_id, "f_now": now, "f_today": now.date(),
                              **{f"f_stage_{i}": stage for i, stage in enumerate(stages)}}
    if shape.priority:
        values["f_rank"] = PRIORITY_RANK[Priority(f.priority)]
    if shape.category:
        values["f_category"] = category
    if shape.nationality:
        values["f_nationality"] = f.nationality.upper()
    if shape.country:
        values["f_country"] = f.current_country.upper()
    if shape.referred_to:
        values["f_referred_to"] = f.referred_to
    if number:
        values["f_number"] = q.upper()
        values["f_number_keys"] = (q.upper(),)
    return shape, values


def _conditions(src: Any, case_id: Any, shape: _Shape, *, stage: int | None = None) -> list[ColumnElement[bool]]:
    """The list filters over ``src`` (``Case``, or ``CaseShare``: the same columns), ``case_id`` its case, with
    parameters (``stage``: only that one of the stages asked for)."""
    out: list[ColumnElement[bool]] = []
    if shape.no_stage:
        out.append(false())
    if stage is not None:
        out.append(src.stage == bindparam(f"f_stage_{stage}"))
    elif shape.stages:
        out.append(src.stage.in_([bindparam(f"f_stage_{i}") for i in range(shape.stages)]))
    if shape.priority:
        # By rank (the same thing): the (owner, rank, due) index then serves the filter and the order.
        out.append(src.priority_rank == bindparam("f_rank"))
    if shape.category:
        out.append(or_(src.category_primary == bindparam("f_category"),
                       src.category_secondary == bindparam("f_category")))
    if shape.nationality:
        out.append(src.nationality == bindparam("f_nationality"))
    if shape.country:
        out.append(src.current_country == bindparam("f_country"))
    if shape.overdue is True:
        out.append(src.due_at < bindparam("f_now"))
    elif shape.overdue is False:  # on time: a clock that has not run out (cases without a clock are neither)
        out.append(src.due_at >= bindparam("f_now"))
    if shape.referred_to:
        out.append(exists(select(Referral.id).where(
            Referral.case_id == case_id, Referral.recipient_org_id == bindparam("f_referred_to"),
            Referral.status.in_(LIVE_REFERRAL))))
    return out


def _order(stmt: Select[Any], sort: str, rank: Any) -> Select[Any]:
    if sort in ("", "relevance") and rank is not None:
        return stmt.order_by(rank.desc(), Case.principal_name, Case.id)
    if sort == "due" or sort in ("", "relevance"):
        return stmt.order_by(_DUE, Case.id)
    if sort == "updated":
        return stmt.order_by(Case.updated_at.desc(), Case.id)
    if sort == "number":
        return stmt.order_by(Case.number)
    if sort == "priority":
        return stmt.order_by(Case.priority_rank, _DUE, Case.id)
    if sort == "name":
        return stmt.order_by(Case.principal_name, Case.id)
    return stmt.order_by(_DUE, Case.id)


def list_cases(session: Session, p: Principal, f: CaseFilters, *, page: int = 1, per_page: int = 25) -> Page[Any]:
    """A page of the cases ``p`` may see matching ``f`` (rows with a case's list attributes: ``LIST_COLUMNS``)."""
    policy.require(p, "case.read")
    page, per_page = max(1, page), max(1, min(MAX_PER_PAGE, per_page))
    offset = (page - 1) * per_page
    q = f.q.strip()
    if q and not CASE_NUMBER.match(q):
        return _name_page(session, p, f, page=page, per_page=per_page)
    shape, values = _shape(p, f)
    if not policy_case_staff(p) or not (shape.own or shape.shared):
        return Page([], 0, page, per_page)
    conn = session.connection()
    # Every list is scoped to an organization's indexes. With a LIMIT and a filter it misjudges (a rare
    # combination: "urgent and on time", "medical needs and Afghan"), PostgreSQL would read the whole table in the
    # hope of stopping early; it reads the indexes that fit instead (a few milliseconds, not 80).
    # (SET LOCAL ends with the transaction, should a query fail.)
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    # One query finds up to COUNT_CAP + 1 matches (no order: the database stops there), counts them and sorts
    # them for the page. At most COUNT_CAP: that is the exact total (a rare combination of filters never walks
    # a whole index). More: the list says "more than COUNT_CAP" and the database sorts, walking the sort's index
    # (for a government, its own cases' and its shared cases' indexes merged) to the page.
    rows = conn.execute(_counted_page(shape), {**values, "f_cap": COUNT_CAP + 1, "f_first": offset + 1,
                                                "f_last": offset + per_page}).all()
    total = rows[0].total if rows else 0
    exact = total <= COUNT_CAP
    if exact:
        wanted = [row.id for row in rows if row.n > offset]
    else:
        total = COUNT_CAP
        wanted = list(conn.scalars(_walked_page(shape), {  # deeper pages work too, more slowly
            **values, "f_upto": offset + per_page, "f_limit": per_page, "f_offset": offset}))
    if postgres:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = on")
    found = _load(session, wanted)
    return Page([found[i] for i in wanted if i in found], total, page, per_page, exact)


@functools.lru_cache(maxsize=1024)
def _counted_page(shape: _Shape) -> Select[Any]:
    """(id, total, n) of the first f_cap matches (COUNT_CAP + 1), numbered in the list's order: row 1 and rows
    f_first..f_last (row 1 always comes back, so the total is known even for a page past the end)."""
    branches = _branches(shape)
    cap = bindparam("f_cap")
    if len(branches) == 1:
        capped = branches[0].limit(cap).subquery()
    else:
        both = union_all(*(select(b.limit(cap).subquery()) for b in branches)).subquery()
        capped = select(both).limit(cap).subquery()
    ranked = select(capped.c.id, func.count().over().label("total"),
                    func.row_number().over(order_by=_sort_keys(capped.c, shape.sort)).label("n")).subquery()
    return (select(ranked).where(or_(ranked.c.n == 1, ranked.c.n.between(bindparam("f_first"), bindparam("f_last"))))
            .order_by(ranked.c.n))


@functools.lru_cache(maxsize=1024)
def _walked_page(shape: _Shape) -> Select[Any]:
    """The ids of the page (f_offset, f_limit) past COUNT_CAP, walking the sort's indexes: each part's first
    f_upto in its own index order, then merged. With several stages and the due-date order, each stage of each
    branch is a part of its own (the (owner, stage, due) index gives one stage in order; the database cannot
    merge several stages of it, and would read and sort all their cases)."""
    if shape.stages > 1 and shape.sort == "due":
        parts = [b for i in range(shape.stages) for b in _branches(shape, stage=i)]
    else:
        parts = _branches(shape)
    if len(parts) == 1:
        every = parts[0].subquery()
    else:
        every = union_all(*(select(part) for part in (
            b.order_by(*_sort_keys(b.selected_columns, shape.sort)).limit(bindparam("f_upto")).subquery()
            for b in parts))).subquery()
    return (select(every.c.id).order_by(*_sort_keys(every.c, shape.sort))
            .limit(bindparam("f_limit")).offset(bindparam("f_offset")))


def _branches(shape: _Shape, *, stage: int | None = None) -> list[Select[Any]]:
    """The list's sources, each filtered and selecting the case id and the sort's columns: the caller's own
    cases (``cases``) and, for a government, the cases shared with it (``case_shares``: copies of the same
    columns, indexed per organization). The same rule as ``policy.listing_scope``, split so each side walks
    its own index."""
    out = []
    if shape.own:
        out.append(_branch(Case, Case.id, shape, stage).where(Case.owner_org_id == bindparam("f_org")))
    if shape.shared:
        out.append(_branch(CaseShare, CaseShare.case_id, shape, stage).where(
            CaseShare.org_id == bindparam("f_org"), CaseShare.until >= bindparam("f_today")))
    return out


def _branch(src: Any, case_id: Any, shape: _Shape, stage: int | None) -> Select[Any]:
    stmt = select(case_id.label("id"), *(getattr(src, name) for name in _SORT_NEEDS[shape.sort])).where(
        *_conditions(src, case_id, shape, stage=stage))
    if shape.number:  # names go through _name_page
        # A number it had under an earlier owner: the GIN index of previous numbers on PostgreSQL.
        earlier = has_any(Case.previous_numbers, bindparam("f_number_keys", type_=_KeyList()))
        if src is Case:
            stmt = stmt.where(or_(Case.number == bindparam("f_number"), earlier))
        else:
            stmt = stmt.where(or_(src.number == bindparam("f_number"), case_id.in_(select(Case.id).where(earlier))))
    return stmt


#: What a list row shows (views.summary, the list page): sealed sections, preferences and the like stay unread.
LIST_COLUMNS = ("id", "owner_org_id", "number", "principal_name", "nationality", "size", "current_country",
                "category_primary", "category_secondary", "processing_priority", "submission_priority", "stage",
                "stage_since", "opened_at", "submitted_at", "departed_at", "arrived_at", "target_submission_on",
                "target_departure_on", "due_at", "version", "updated_at", "priority_rank")


_LIST_SELECT = select(*(Case.__table__.c[name] for name in LIST_COLUMNS))


def _load(session: Session, ids: list[Any]) -> dict[Any, Any]:
    """The list rows of these cases: plain rows with the case's attribute names (no ORM instances: nothing on a
    list page changes them, and building 25 instances cost more than the query)."""
    if not ids:
        return {}
    return {row.id: row for row in session.connection().execute(_LIST_SELECT.where(Case.id.in_(ids)))}


_SORT_NEEDS = {"due": ("due_at",), "updated": ("updated_at",), "number": ("number",),
               "priority": ("priority_rank", "due_at"), "name": ("principal_name",)}


def _sort_keys(c: Any, sort: str) -> list[Any]:
    """The order of ``_order``, over a subquery's columns (id and the sort's columns)."""
    if sort == "updated":
        return [c.updated_at.desc(), c.id]
    if sort == "number":
        return [c.number, c.id]
    if sort == "priority":
        return [c.priority_rank, c.due_at.asc().nulls_last(), c.id]
    if sort == "name":
        return [c.principal_name, c.id]
    return [c.due_at.asc().nulls_last(), c.id]


PEOPLE_CAP = 500  # people a name search looks at (often several to a case: a family shares its name)


def _people_sources(session: Session, p: Principal, shape: _Shape, extra: list[str]) -> list[Any]:
    """Where a name search finds people ``p`` may see, within the list's filters: each a function of (condition
    on the member, rank) giving a select of (member_id, id, principal_name, rank, *extra).

    The owner's cases (when its roles see identities), and for a government's case handlers the cases shared
    with it with the identity section, read from ``case_shares`` (its copies of the columns filtered and sorted
    on). On PostgreSQL the shared people are found in the same GIN index as the names (``Member.shared_with``,
    kept by ``rdn.cases.shares``), each checked against its share row with one probe (LATERAL ... LIMIT 1):
    a government walks only the people it may see, not everyone with the name."""
    out: list[Any] = []
    if shape.own and Section.identity in owner_sections(p) and p.org_id is not None:
        def owned(condition: Any, rank: Any) -> Select[Any]:
            return (select(Member.id.label("member_id"), Case.id.label("id"), Case.principal_name, rank.label("rank"),
                           *(getattr(Case, k) for k in extra))
                    .select_from(Member).join(Case, Case.id == Member.case_id)
                    .where(Case.owner_org_id == p.org_id, *_conditions(Case, Case.id, shape), condition))
        out.append(owned)
    if shape.shared and p.roles & HANDLERS and p.org_id is not None:
        org_id, today = p.org_id, clock.now().date()
        postgres = session.get_bind().dialect.name == "postgresql"

        def shared(condition: Any, rank: Any) -> Select[Any]:
            share_of = [CaseShare.org_id == org_id, CaseShare.case_id == Member.case_id,
                        CaseShare.identity_until >= today, *_conditions(CaseShare, CaseShare.case_id, shape)]
            if not postgres:
                return (select(Member.id.label("member_id"), CaseShare.case_id.label("id"), CaseShare.principal_name,
                               rank.label("rank"), *(getattr(CaseShare, k) for k in extra))
                        .select_from(Member).join(CaseShare, and_(*share_of)).where(condition))
            share = (select(CaseShare.case_id, CaseShare.principal_name, *(getattr(CaseShare, k) for k in extra))
                     .where(*share_of).limit(1).lateral("share"))
            return (select(Member.id.label("member_id"), share.c.case_id.label("id"), share.c.principal_name,
                           rank.label("rank"), *(share.c[k] for k in extra))
                    .select_from(Member).join(share, true())
                    .where(has_any(Member.shared_with, _keys([org_id.hex])), condition))
        out.append(shared)
    return out


def _name_page(session: Session, p: Principal, f: CaseFilters, *, page: int, per_page: int) -> Page[Any]:
    """A page of a name search, with work bounded for common names, in one statement.

    People are found through their name keys (on PostgreSQL, the GIN index intersects every token's keys),
    within the list's filters and the caller's scope: first those with every token spelled exactly as typed,
    then, while fewer than PEOPLE_CAP + 1 are found, the other spellings. Up to PEOPLE_CAP people: every match,
    ranked (people with more tokens spelled as typed first), with an exact total of cases. More: the first
    PEOPLE_CAP found (exact spellings first), and "more than" their cases: a family name or a filter narrows
    it. The database ranks, groups people into cases, counts and sorts them; only the page comes back.
    """
    tokens = _query_tokens(f.q)
    offset = (page - 1) * per_page
    if not tokens:
        return Page([], 0, page, per_page)
    if not policy_case_staff(p):
        return Page([], 0, page, per_page)
    columns = _SORT_COLUMNS.get(f.sort, ()) if f.sort not in ("", "relevance") else ()
    extra = [c.key for c in columns if c.key not in ("id", "principal_name")]
    shape, values = _shape(p, replace(f, q=""))
    sources = _people_sources(session, p, shape, extra)
    if not sources:
        return Page([], 0, page, per_page)
    every_exact = has_all(Member.name_keys, _keys(t.exact for t in tokens))

    def people(condition: Any, rank: Any) -> Select[Any]:
        branches = [source(condition, rank) for source in sources]
        if len(branches) == 1:
            return branches[0]
        both = union_all(*branches).subquery()
        return select(*(both.c[n] for n in names_))

    names_ = ["member_id", "id", "principal_name", "rank", *extra]
    # spelled: every token as typed, up to PEOPLE_CAP + 1. rest: only while spelled is within the cap, the
    # people with other spellings, up to PEOPLE_CAP + 1; each ranked by how many tokens are spelled as typed.
    spelled = people(every_exact, literal(len(tokens))).limit(PEOPLE_CAP + 1).cte("spelled")
    how_many_spelled = select(func.count()).select_from(spelled).scalar_subquery()
    rest = (people(and_(*(has_any(Member.name_keys, _keys(t.alternatives)) for t in tokens), ~every_exact,
                        how_many_spelled <= PEOPLE_CAP),
                   functools.reduce(operator.add, [_spelled(t) for t in tokens]))
            .limit(PEOPLE_CAP + 1).cte("rest"))
    found = union_all(
        select(*(spelled.c[n] for n in names_), literal(0).label("first")),
        select(*(rest.c[n] for n in names_), literal(1).label("first")),
    ).cte("found")
    how_many = select(func.count()).select_from(found).scalar_subquery()
    chosen = select(*(found.c[n] for n in names_)).order_by(found.c.first).limit(PEOPLE_CAP).subquery()
    # A case ranks as its best person.
    group = [chosen.c.id, chosen.c.principal_name, *(chosen.c[k] for k in extra)]
    by_case = select(*group, func.max(chosen.c.rank).label("rank")).group_by(*group).subquery()
    if f.sort in ("", "relevance"):
        order = [by_case.c.rank.desc(), by_case.c.principal_name, by_case.c.id]
    else:
        order = _sort_keys(by_case.c, f.sort)
    ranked = select(by_case.c.id, func.count().over().label("total"), (how_many > PEOPLE_CAP).label("capped"),
                    func.row_number().over(order_by=order).label("n")).subquery()
    rows = session.connection().execute(
        select(ranked).where(or_(ranked.c.n == 1, ranked.c.n.between(offset + 1, offset + per_page)))
        .order_by(ranked.c.n), values).all()
    total = rows[0].total if rows else 0  # when capped: "more than" this many cases
    exact = not (rows and rows[0].capped)
    wanted = [row.id for row in rows if row.n > offset]
    loaded = _load(session, wanted)
    return Page([loaded[i] for i in wanted if i in loaded], total, page, per_page, exact)


_SORT_COLUMNS = {  # what each sort needs of a name search's people (grouped into cases and sorted in the database)
    "due": (Case.id, Case.due_at), "updated": (Case.id, Case.updated_at), "number": (Case.id, Case.number),
    "priority": (Case.id, Case.priority_rank, Case.due_at), "name": (Case.id, Case.principal_name),
}


def overdue(case_row: Case) -> bool:
    return case_row.due_at is not None and case_row.due_at < clock.now() and is_open(Stage(case_row.stage))


def counts_by_stage(session: Session, p: Principal) -> dict[str, int]:
    """How many visible cases are at each stage (for the list's summary bar)."""
    scoped = scoped_cases(p).with_only_columns(Case.stage, func.count()).group_by(Case.stage)
    return {stage: n for stage, n in session.execute(scoped)}


def overdue_count(session: Session, p: Principal) -> int:
    stmt = scoped_cases(p).with_only_columns(func.count()).where(and_(Case.due_at < clock.now()))
    return session.scalar(stmt) or 0
