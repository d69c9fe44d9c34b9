"""The best-practice library: members' notes on what worked (a fee waiver negotiated, a démarche drafted, a way
round a missing passport), in Markdown rendered safely, with tags, a country, a pathway or an obstacle, and one
attachment, searchable by every member's staff.

Markdown (:func:`render_markdown`) is CommonMark with tables and strikethrough, rendered by markdown-it-py with
raw HTML off (it shows as text), so the only markup in a note is what the renderer itself writes:

* links only to ``http``, ``https`` and ``mailto`` addresses (markdown-it's ``validateLink`` is replaced by our
  own allow-list, and every link is checked again when it is written); others stay as plain text. Links carry
  ``rel="nofollow noopener noreferrer"``;
* images are never loaded: ``![plan](https://example.org/plan.png)`` becomes a link to the image, labelled with
  its alternative text (the platform runs air-gapped, and a remote image would tell a third party who reads the
  note, and when);
* no ``style`` attributes (table column alignment is dropped: the pages' content security policy forbids inline
  styles), and a note's headings start at level 2 (the page's title is its level 1);
* nesting is capped (markdown-it's ``maxNesting``) and at most :data:`MAX_RENDER` characters are rendered, so a
  hostile text costs a fraction of a second, not minutes.

Attachments (one per note, at most 5 MB) are accepted by what their bytes are, not by their name: PDF, PNG,
JPEG, UTF-8 plain text or CSV, Word (.docx) and Excel (.xlsx) workbooks without macros. They are stored in the
row and downloaded as attachments with their stored type and ``nosniff``.
"""

from __future__ import annotations

import io
import re
import unicodedata
import uuid
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup
from sqlalchemy import exists, func, literal, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, defer
from sqlalchemy.sql import type_coerce

from rdn.core import audit, clock, i18n, identity, policy
from rdn.core.errors import FieldError, ValidationFailed
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.modules import DemoContext
from rdn.core.pagination import Page, paginate
from rdn.core.tenancy import Organization
from rdn.pathways.models import Obstacle, Pathway, Practice

MIN_TITLE, MAX_TITLE = 3, 200
MAX_BODY = 20_000
MAX_TAGS, MAX_TAG = 10, 30
MAX_FILE = 5 * 1024 * 1024
MAX_FILENAME = 200
MAX_RENDER = MAX_BODY  # characters render_markdown reads: longer text is cut (a stored body never is)
FIELDS = ("title", "body", "tags", "country", "pathway_id", "obstacle_id")
REL = "nofollow noopener noreferrer"
_TAG = re.compile(r"^[^\W_]+(?:-[^\W_]+)*$")  # letters and digits of any script, joined by single hyphens


# Markdown ------------------------------------------------------------------------------------------------------


def safe_url(url: str) -> bool:
    """Whether a link may point there: an absolute http(s) address with a host, or a mailto address."""
    if not url or len(url) > 2048 or any(ord(c) <= 32 or ord(c) == 127 or c == "\\" for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return url[:len(scheme) + 3].lower() == scheme + "://" and bool(parts.hostname)
    if scheme == "mailto":
        return len(url) > len("mailto:")
    return False


def _tidy(state: StateCore) -> None:
    """A core rule, after parsing: headings one level down, and no style attribute anywhere."""
    def walk(tokens: Sequence[Token]) -> None:
        for token in tokens:
            if token.type in ("heading_open", "heading_close"):
                token.tag = f"h{min(6, int(token.tag[1]) + 1)}"
            if token.attrs:
                token.attrs.pop("style", None)
            if token.children:
                walk(token.children)

    walk(state.tokens)


def _link_open(self: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    token = tokens[idx]
    href = token.attrGet("href")
    links: list[bool] = env.setdefault("links", [])
    if not isinstance(href, str) or not safe_url(href) or any(links):
        links.append(False)  # written as its text alone (and never a link inside a link)
        return ""
    links.append(True)
    title = token.attrGet("title")
    token.attrs = {"href": href, "rel": REL, **({"title": str(title)} if title else {})}
    return self.renderToken(tokens, idx, options, env)


def _link_close(self: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    links: list[bool] = env.setdefault("links", [])
    return self.renderToken(tokens, idx, options, env) if links and links.pop() else ""


def _image(self: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    """An image is never loaded: it becomes a link to the image, labelled with its alternative text."""
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env).strip()
    src = token.attrGet("src")
    if not isinstance(src, str) or not safe_url(src) or any(env.get("links", [])):
        return escapeHtml(alt)
    return f'<a href="{escapeHtml(src)}" rel="{REL}">{escapeHtml(alt or src)}</a>'


def _as_text(self: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    # Raw HTML is off, so these never occur; if they did, they would be shown, not obeyed.
    return escapeHtml(tokens[idx].content)


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False, "maxNesting": 20})
    md.enable(["table", "strikethrough"])
    md.validateLink = safe_url  # type: ignore[method-assign]
    md.core.ruler.push("rdn_tidy", _tidy)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    md.add_render_rule("image", _image)
    md.add_render_rule("html_block", _as_text)
    md.add_render_rule("html_inline", _as_text)
    return md


_MD = _markdown()


def render_markdown(text: str) -> Markup:
    """A note's Markdown as HTML that is safe to put in a page (see the module's docstring for what is kept)."""
    text = str(text or "")
    if len(text) > MAX_RENDER:
        text = text[:MAX_RENDER] + "\n\n…"
    return Markup(_MD.render(text, {"links": []}))  # noqa: S704 - built by the restricted renderer above


# Attachments ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A file as it came in: the name the sender gave it, and its bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Kind:
    label: str
    content_type: str
    extensions: tuple[str, ...]  # the first one is added to a name without any


KINDS: dict[str, Kind] = {
    "pdf": Kind(N_("a PDF document"), "application/pdf", (".pdf",)),
    "png": Kind(N_("a PNG image"), "image/png", (".png",)),
    "jpeg": Kind(N_("a JPEG image"), "image/jpeg", (".jpg", ".jpeg")),
    "text": Kind(N_("plain text"), "text/plain; charset=utf-8", (".txt", ".text", ".md")),
    "csv": Kind(N_("a CSV table"), "text/csv; charset=utf-8", (".csv",)),
    "docx": Kind(N_("a Word document"),
                 "application/vnd.openxmlformats-officedocument.wordprocessingml.document", (".docx",)),
    "xlsx": Kind(N_("an Excel workbook"),
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",)),
}
ACCEPT = ",".join(e for k in KINDS.values() for e in k.extensions)  # for the file input's accept attribute
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def sniff(data: bytes) -> str | None:
    """What the bytes are (a key of :data:`KINDS`; text and CSV both answer "text"), or None if none we take."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, ValueError, OSError):
            return None
        if "[Content_Types].xml" not in names or any(n.lower().endswith("vbaproject.bin") for n in names):
            return None  # not Office Open XML, or with macros
        if "word/document.xml" in names:
            return "docx"
        if "xl/workbook.xml" in names:
            return "xlsx"
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _TEXT_CONTROLS.search(text) else "text"


def clean_filename(name: str) -> str:
    """The name's last part, without control characters, quotes or slashes, at most 200 characters."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C" and c not in '"<>|:*?')
    name = " ".join(name.split()).strip(". ")
    if len(name) > MAX_FILENAME:
        _stem, dot, ext = name.rpartition(".")
        ext = dot + ext if dot and len(ext) <= 10 else ""
        name = name[:MAX_FILENAME - len(ext)] + ext
    return name


def check_upload(upload: Upload, errors: list[FieldError]) -> tuple[str, str, bytes] | None:
    """The file's (name, content type, bytes) if it is one we take; otherwise an error on the field "file"."""
    data = upload.data
    if not data:
        errors.append(FieldError("file", _("the file is empty")))
        return None
    if len(data) > MAX_FILE:
        errors.append(FieldError("file", _("the file is larger than %(mb)s MB", mb=MAX_FILE // 1024 // 1024)))
        return None
    found = sniff(data)
    if found is None:
        errors.append(FieldError("file", _("must be a PDF, PNG or JPEG file, plain text, CSV, a Word document "
                                           "(.docx) or an Excel workbook (.xlsx), without macros")))
        return None
    name = clean_filename(upload.filename)
    stem, dot, ext = name.rpartition(".")
    ext = f".{ext.lower()}" if dot and stem else ""
    if found == "text" and ext == ".csv":
        found = "csv"
    kind = KINDS[found]
    if not ext:
        name = (name or "attachment") + kind.extensions[0]
    elif ext not in kind.extensions:
        errors.append(FieldError("file", _("the file is %(kind)s, but its name ends in %(ext)s",
                                           kind=_(kind.label), ext=ext)))
        return None
    return name, kind.content_type, data


def content_disposition(filename: str) -> str:
    """``attachment`` with the name: an ASCII fallback, and the name itself in UTF-8 (RFC 6266)."""
    name = clean_filename(filename) or "attachment"
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def attachment_size(session: Session, practice: Practice) -> int:
    """The attachment's size in bytes (0 without one), without loading it."""
    return attachment_sizes(session, [practice]).get(practice.id, 0)


def attachment_sizes(session: Session, practices: Sequence[Practice]) -> dict[uuid.UUID, int]:
    """The sizes of the attachments of these notes (those with one), in one query, without loading them."""
    ids = [p.id for p in practices if p.filename]
    if not ids:
        return {}
    rows = session.execute(select(Practice.id, func.length(Practice.data)).where(Practice.id.in_(ids)))
    return {row[0]: int(row[1] or 0) for row in rows}


# Validation ----------------------------------------------------------------------------------------------------


def parse_tags(value: Any) -> list[str]:
    """Tags as typed (a list, or words separated by commas or semicolons), lower-cased, spaces as hyphens."""
    items = value if isinstance(value, list | tuple) else str(value or "").replace(";", ",").split(",")
    tags = ["-".join(unicodedata.normalize("NFC", str(t)).lower().split()) for t in items]
    return list(dict.fromkeys(t for t in tags if t))


def _identifier(value: Any, field_name: str, errors: list[FieldError]) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip())
    except ValueError:
        errors.append(FieldError(field_name, _("is not a valid identifier")))
        return None


def _clean(session: Session, actor: Principal, data: Mapping[str, Any], errors: list[FieldError]) -> dict[str, Any]:
    title = " ".join(str(data.get("title") or "").split())
    if not title:
        errors.append(FieldError("title", _("is required")))
    elif len(title) < MIN_TITLE:
        errors.append(FieldError("title", _("at least %(low)s characters", low=MIN_TITLE)))
    elif len(title) > MAX_TITLE:
        errors.append(FieldError("title", _("at most %(high)s characters", high=MAX_TITLE)))

    body = str(data.get("body") or "").replace("\r\n", "\n").replace("\r", "\n").rstrip()
    if not body.strip():
        errors.append(FieldError("body", _("is required")))
    elif len(body) > MAX_BODY:
        errors.append(FieldError("body", _("at most %(high)s characters", high=i18n.format_number(MAX_BODY))))

    tags = parse_tags(data.get("tags"))
    bad = [t for t in tags if len(t) > MAX_TAG or not _TAG.match(t)]
    if bad:
        errors.append(FieldError("tags", _("each tag is one word of letters and digits (hyphens between them), "
                                           "at most %(high)s characters: %(tags)s", high=MAX_TAG,
                                           tags=", ".join(b[:40] for b in bad[:5]))))
    elif len(tags) > MAX_TAGS:
        errors.append(FieldError("tags", _("at most %(high)s tags", high=MAX_TAGS)))

    country = str(data.get("country") or "").strip().upper()
    if country and not i18n.is_country(country):
        errors.append(FieldError("country", _("is not a country code (ISO 3166, two letters)")))

    pathway_id = _identifier(data.get("pathway_id"), "pathway_id", errors)
    if pathway_id is not None and session.scalar(
            policy.scoped(actor, Pathway).with_only_columns(Pathway.id).where(Pathway.id == pathway_id)) is None:
        errors.append(FieldError("pathway_id", _("is not a pathway you can see")))
    obstacle_id = _identifier(data.get("obstacle_id"), "obstacle_id", errors)
    if obstacle_id is not None and session.scalar(
            policy.scoped(actor, Obstacle).with_only_columns(Obstacle.id).where(Obstacle.id == obstacle_id)) is None:
        errors.append(FieldError("obstacle_id", _("is not an obstacle you can see")))
    return {"title": title, "body": body, "tags": tags, "country": country, "pathway_id": pathway_id,
            "obstacle_id": obstacle_id}


def clean(session: Session, actor: Principal, data: Mapping[str, Any]) -> dict[str, Any]:
    """A note's fields, checked and normalised; every invalid field is named in one ValidationFailed."""
    errors: list[FieldError] = []
    values = _clean(session, actor, data, errors)
    if errors:
        raise ValidationFailed(errors=errors)
    return values


def values_of(practice: Practice) -> dict[str, Any]:
    return {"title": practice.title, "body": practice.body, "tags": list(practice.tags or []),
            "country": practice.country, "pathway_id": practice.pathway_id, "obstacle_id": practice.obstacle_id}


# Writes --------------------------------------------------------------------------------------------------------


def create(session: Session, *, actor: Principal, data: Mapping[str, Any], upload: Upload | None = None) -> Practice:
    """Share a note (and its attachment) in the name of the caller's organization."""
    policy.require(actor, "practice.write")
    errors: list[FieldError] = []
    values = _clean(session, actor, data, errors)
    file = check_upload(upload, errors) if upload is not None else None
    if errors:
        raise ValidationFailed(errors=errors)
    assert actor.org_id is not None
    now = clock.now()
    practice = Practice(org_id=actor.org_id, author_user_id=actor.user_id, created_at=now, updated_at=now, **values)
    if file is not None:
        practice.filename, practice.content_type, practice.data = file
    session.add(practice)
    session.flush()
    audit.record(session, action="practice.create", actor=actor, object_type="practice", object_id=practice.id,
                 details={"tags": practice.tags, "country": practice.country,
                          "attachment": practice.content_type or None})
    return practice


def update(session: Session, *, actor: Principal, practice: Practice, data: Mapping[str, Any],
           upload: Upload | None = None, remove_attachment: bool = False) -> Practice:
    """Change an own organization's note: the fields given (the others stay), and its attachment (a new file
    replaces it; ``remove_attachment`` removes it)."""
    policy.require(actor, "practice.write", practice)
    errors: list[FieldError] = []
    values = _clean(session, actor, {**values_of(practice), **{k: v for k, v in data.items() if k in FIELDS}},
                    errors)
    file = check_upload(upload, errors) if upload is not None else None
    if errors:
        raise ValidationFailed(errors=errors)
    changed = sorted(k for k, v in values.items() if getattr(practice, k) != v)
    for key in changed:
        setattr(practice, key, values[key])
    if file is not None:
        practice.filename, practice.content_type, practice.data = file
        changed.append("attachment")
    elif remove_attachment and practice.filename:
        practice.filename, practice.content_type, practice.data = "", "", None
        changed.append("attachment")
    if changed:
        practice.updated_at = clock.now()
    session.flush()
    audit.record(session, action="practice.update", actor=actor, object_type="practice", object_id=practice.id,
                 details={"changed": changed})
    return practice


def delete(session: Session, *, actor: Principal, practice: Practice) -> None:
    """Remove an own organization's note (a note shared by mistake, or with what should not be there)."""
    policy.require(actor, "practice.write", practice)
    practice_id, had_file = practice.id, bool(practice.filename)
    session.delete(practice)
    session.flush()
    audit.record(session, action="practice.delete", actor=actor, object_type="practice", object_id=practice_id,
                 details={"attachment": had_file})


# Reads ---------------------------------------------------------------------------------------------------------


def access(session: Session, actor: Principal | None, practice_id: Any, action: str = "practice.read") -> Practice:
    """One note the caller may see (and act on with ``action``), or NotFound, as ``policy.access`` answers; the
    attachment's bytes load only when read."""
    if actor is None:
        raise policy.NotAuthenticated()
    found = session.scalars(policy.scoped(actor, Practice).where(Practice.id == practice_id)
                            .options(defer(Practice.data))).first()
    if found is None or not policy.can(actor, action, found):
        raise policy.NotFound()
    return found


def _has_tag(session: Session, tag: str) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return type_coerce(Practice.tags, JSONB).contains([tag])
    each = func.json_each(Practice.tags).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == tag))


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(session: Session, actor: Principal, *, q: str = "", tag: str = "", country: str = "",
           pathway_id: uuid.UUID | None = None, obstacle_id: uuid.UUID | None = None, page: int = 1,
           per_page: int = 20) -> Page[Practice]:
    """The notes the caller may read, newest change first: ``q`` in the title or the body (case-insensitive),
    with the tag, in the country, for the pathway or the obstacle. Attachments' bytes are not loaded."""
    policy.require(actor, "practice.read")
    stmt = policy.scoped(actor, Practice).options(defer(Practice.data))
    words = q.strip()[:200]
    if words:
        like = _like(words)
        stmt = stmt.where(or_(func.lower(Practice.title).like(like, escape="\\"),
                              func.lower(Practice.body).like(like, escape="\\")))
    tags = parse_tags(tag)
    if tags:
        stmt = stmt.where(_has_tag(session, tags[0]))
    if country.strip():
        stmt = stmt.where(Practice.country == country.strip().upper())
    if pathway_id is not None:
        stmt = stmt.where(Practice.pathway_id == pathway_id)
    if obstacle_id is not None:
        stmt = stmt.where(Practice.obstacle_id == obstacle_id)
    return paginate(session, stmt.order_by(Practice.updated_at.desc(), Practice.id), page=page, per_page=per_page)


def popular_tags(session: Session, actor: Principal, limit: int = 30) -> list[tuple[str, int]]:
    """The tags most used in the latest thousand notes the caller may read, with their counts."""
    if not policy.can(actor, "practice.read"):
        return []
    rows = session.scalars(policy.scoped(actor, Practice).with_only_columns(Practice.tags)
                           .order_by(Practice.updated_at.desc()).limit(1000))
    counts = Counter(t for tags in rows for t in (tags or []))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


def organizations(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, Organization]:
    if not ids:
        return {}
    return {o.id: o for o in session.scalars(select(Organization).where(Organization.id.in_(ids)))}


def author_name(session: Session, practice: Practice) -> str:
    if practice.author_user_id is None:
        return ""
    return session.scalar(select(identity.User.full_name).where(identity.User.id == practice.author_user_id)) or ""


def pathway_choices(session: Session, actor: Principal) -> list[tuple[str, str]]:
    """(id, "country · name") of the pathways the caller may see, for a form's list."""
    rows = session.execute(policy.scoped(actor, Pathway).with_only_columns(Pathway.id, Pathway.country, Pathway.name)
                           .order_by(Pathway.country, Pathway.name).limit(500))
    return [(str(r.id), f"{i18n.country_name(r.country)} · {r.name}") for r in rows]


def obstacle_choices(session: Session, actor: Principal) -> list[tuple[str, str]]:
    """(id, "country · title") of the obstacles the caller may see, for a form's list."""
    rows = session.execute(policy.scoped(actor, Obstacle).with_only_columns(Obstacle.id, Obstacle.country,
                                                                            Obstacle.title)
                           .order_by(Obstacle.country, Obstacle.title).limit(500))
    return [(str(r.id), f"{i18n.country_name(r.country)} · {r.title}") for r in rows]


def linked(session: Session, practice: Practice) -> tuple[Pathway | None, Obstacle | None]:
    """The pathway and the obstacle a note is about (every reader of notes may see both)."""
    pathway = session.get(Pathway, practice.pathway_id) if practice.pathway_id else None
    obstacle = session.get(Obstacle, practice.obstacle_id) if practice.obstacle_id else None
    return pathway, obstacle


# Demo ----------------------------------------------------------------------------------------------------------

DEMO_NOTES: list[dict[str, Any]] = [
    {
        "org": "ca", "persona": "officer_canada", "country": "LB",
        "tags": ["exit-permit", "fees", "waiver", "negotiation"],
        "title": "How we obtained a fee waiver for exit permits and overstay fines",
        "body": """Resettlement departures were held up for weeks because every adult had to pay overstay fines
and an exit permit fee before leaving. Most families could not pay, and paying for them case by case was slow.

## What worked

1. **Counting first.** With the agency we listed every case whose departure was blocked and what each owed: the
   total made the request concrete (and smaller than officials feared).
2. **One request, several governments.** Three resettlement countries sent the same request to the interior
   ministry in the same week, asking for a waiver *for resettlement departures only*.
3. **Offering something back.** We offered to share departure lists in advance, so the border authority could
   check them before the travel date.
4. **Putting it in writing.** The waiver was issued as a circular to the border posts; we keep a copy with every
   travel file.

## What to watch

- The waiver covers the fine, not the exit stamp: book an appointment at the border authority early.
- Renew the request before the circular expires (ours ran for 12 months).

Time from first meeting to circular: about four months.""",
    },
    {
        "org": "secretariat", "persona": "admin_secretariat", "country": "",
        "tags": ["demarche", "template", "joint-action"],
        "title": "A joint démarche template for exit requirements",
        "body": """When one obstacle blocks the cases of several members, a joint démarche carries more weight than
separate ones. The attached template has worked in four host countries.

## How to use it

- Agree on **one lead** (usually the embassy with the most blocked cases) and a list of co-signers.
- Keep to the facts the network records: how many people are blocked, since when, and what each step costs.
- Ask for **one specific change** (a waiver, a fast-track queue, an accepted document), not a general review.
- Record the démarche against the obstacle in RDN, with the follow-up date, so nobody loses track.

| Part | What goes in it |
| --- | --- |
| Opening | Thanks for the host country's hospitality; the shared goal of safe, orderly departures |
| Facts | People blocked, since when, the requirement that blocks them |
| Request | The one change asked for, and from when |
| Offer | What the signatories do in return (lists in advance, funding, technical help) |

Background on resettlement and the host countries: [unhcr.org](https://www.unhcr.org).""",
        "file": ("joint-demarche-template.txt", """JOINT DEMARCHE - TEMPLATE

To: [Ministry], [Host country]
From: The Embassies of [lead] and [co-signers]

1. We thank [host country] for its continued hospitality towards refugees.
2. As of [date], [number] people accepted for resettlement cannot leave because [requirement].
3. We respectfully request [one specific change] for resettlement departures, from [date].
4. In return, we offer [departure lists in advance / funding / technical assistance].
5. We propose to review progress together on [follow-up date].
"""),
    },
    {
        "org": "unhcr-like", "persona": "caseworker_unhcr", "country": "LY",
        "tags": ["travel-documents", "icrc", "missing-documents"],
        "title": "Document substitutes for refugees without passports: ICRC travel documents",
        "body": """Many refugees have no valid passport, and cannot ask the country they fled for one. For resettlement
departures, an **ICRC emergency travel document** is often accepted instead.

## Steps that worked

1. Confirm with the resettlement country that it will put its visa (or a laissez-passer) on an ICRC document.
2. Ask the host country's authorities to accept exit on that document; some also need an exit visa on it.
3. Apply to the ICRC delegation with the resettlement country's confirmation, photos and the identity details
   on file.
4. Check transit countries: each one must accept the document too (or route the travel without transit).

## Pitfalls

- The document is valid for **one journey**: a changed flight after expiry means starting again.
- Names must match the visa exactly, including the order of family names.

More: <https://www.icrc.org> and the resettlement country's own guidance.""",
    },
    {
        "org": "es", "persona": "minister_spain", "country": "CO",
        "tags": ["interviews", "remote", "video", "safeguarding"],
        "title": "Running resettlement interviews remotely",
        "body": """When our officers could not travel, we interviewed families by video from a room the agency
prepared. Results were as reliable as in person, if the set-up is right.

## Set-up

- A **private room** at the agency's office, never the family's home: no one else in the room but the family,
  the interpreter (if in the room) and the agency's facilitator.
- A tested connection and a second line (a phone) if video fails.
- Interpreters joining from a third place are fine; tell the family who is on the call, by name and role.

## During the interview

- Start by checking identities against the file's photos, on camera.
- Take breaks every 45 minutes; children are interviewed with a caregiver present.
- Never record the video; the officer's notes are the record.

*Safeguarding:* the facilitator knows what to do if an interview brings up a risk at home.""",
    },
    {
        "org": "iom-like", "persona": "officer_iom", "country": "JO",
        "tags": ["orientation", "pre-departure", "video"],
        "title": "Pre-departure orientation by video",
        "body": """Families told us they remembered little from a single day of orientation before the flight. We now
run it as **three short video sessions** in the weeks before departure, in the family's language.

1. *The journey*: documents to carry, the airports, what happens on arrival.
2. *The first weeks*: housing, who meets you, money, health cover.
3. *Rights and duties*: school, work, the law, where to ask for help.

Each session ends with questions; a checklist (attached) goes to every family, and the receiving team gets the
questions families asked, so they can answer them again on arrival.

~~One long session~~ Three short ones: families asked more questions and missed fewer documents at the airport.""",
        "file": ("orientation-checklist.csv", """session,topic,done
1,Documents to carry (travel document or ICRC document, medical forms),
1,Airports and transit,
2,Housing and who meets you on arrival,
2,Money and health cover in the first weeks,
3,School and work,
3,Where to ask for help,
"""),
    },
]


def seed(ctx: DemoContext) -> None:
    """Five notes from demo organizations, each by one of its personas (idempotent: a note whose organization
    already has one of the same title is skipped). A note names its author's government's pathway, if the
    catalog has one."""
    session = ctx.session
    created = 0
    for note in DEMO_NOTES:
        org, user = ctx.orgs.get(note["org"]), ctx.people.get(note["persona"])
        if org is None or user is None:
            continue
        if session.scalar(select(Practice.id).where(Practice.org_id == org.id, Practice.title == note["title"])):
            continue
        actor = identity.principal_for(session, user, org_id=org.id, via="session")
        pathway_id = session.scalar(select(Pathway.id).where(Pathway.org_id == org.id)
                                    .order_by(Pathway.name).limit(1))
        data = {k: note[k] for k in ("title", "body", "tags", "country")}
        upload = Upload(note["file"][0], note["file"][1].encode()) if "file" in note else None
        create(session, actor=actor, data={**data, "pathway_id": pathway_id}, upload=upload)
        created += 1
    if created:
        ctx.say(f"Created {created} best-practice notes")
