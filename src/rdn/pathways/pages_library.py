"""Pages of the best-practice library: search the notes, read one (its Markdown rendered safely, its
attachment to download), share a note with an attachment, change or remove one of your organization's."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile

from rdn.core import i18n, policy
from rdn.core.errors import ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.modules import page_router
from rdn.core.web import CurrentPrincipal, DbSession, get_db, redirect, render
from rdn.pathways import library
from rdn.pathways.models import Practice

router = page_router()

NOTICES = {
    "created": i18n.N_("Your note is shared with the network."),
    "saved": i18n.N_("Your changes were saved."),
    "deleted": i18n.N_("The note was removed."),
}


def _notice(key: str | None) -> str | None:
    return i18n.gettext(NOTICES[key]) if key in NOTICES else None


def _errors(db: Session, exc: ValidationFailed) -> dict[str, str]:
    db.rollback()
    return {e.field: e.message for e in exc.errors} or {"form": exc.detail}


@router.get("/practices")
def practices(request: Request, db: DbSession, principal: CurrentPrincipal,
              q: Annotated[str, Query(max_length=200)] = "", tag: Annotated[str, Query(max_length=40)] = "",
              country: Annotated[str, Query(max_length=2)] = "", page: Annotated[int, Query(ge=1)] = 1,
              notice: str | None = None) -> Response:
    result = library.search(db, principal, q=q, tag=tag, country=country, page=page)
    return render(request, "pathways/practices.html", {
        "page": result, "q": q, "tag": tag, "country": country, "notice": _notice(notice),
        "orgs": library.organizations(db, {p.org_id for p in result.items}),
        "countries": i18n.countries(i18n.locale_var.get()), "tags": library.popular_tags(db, principal),
        "filtered": bool(q.strip() or tag.strip() or country.strip()),
        "can_write": policy.can(principal, "practice.write")})


def _form(request: Request, db: Session, principal: Principal, practice: Practice | None, values: dict[str, Any],
          errors: dict[str, str], *, file_lost: bool = False, status: int = 200) -> Response:
    return render(request, "pathways/practice_form.html", {
        "practice": practice, "values": values, "errors": errors, "file_lost": file_lost,
        "countries": i18n.countries(i18n.locale_var.get()),
        "pathways": library.pathway_choices(db, principal), "obstacles": library.obstacle_choices(db, principal),
        "tags": library.popular_tags(db, principal), "accept": library.ACCEPT,
        "max_mb": library.MAX_FILE // 1024 // 1024, "max_body": library.MAX_BODY}, status=status)


def _form_values(practice: Practice) -> dict[str, Any]:
    values = library.values_of(practice)
    values["tags"] = ", ".join(values["tags"])
    values["pathway_id"] = str(values["pathway_id"] or "")
    values["obstacle_id"] = str(values["obstacle_id"] or "")
    return values


async def _posted(request: Request) -> tuple[dict[str, str], library.Upload | None, bool]:
    """The form's fields, its file (read up to one byte past the limit, so a larger one is refused as such)
    and whether the attachment is to be removed."""
    form = await request.form()  # files spool to disk
    data = {k: str(form.get(k) or "") for k in library.FIELDS}
    upload = form.get("file")
    file = None
    if isinstance(upload, StarletteUploadFile):
        content = await upload.read(library.MAX_FILE + 1)
        if content or upload.filename:
            file = library.Upload(upload.filename or "", content)
    return data, file, bool(form.get("remove_file"))


@router.get("/practices/new")
def new_practice(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "practice.write")
    return _form(request, db, principal, None, {}, {})


@router.post("/practices/new")
async def create_practice(request: Request, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "practice.write")  # before reading any file
    data, file, _remove = await _posted(request)

    def run() -> Response:
        db = get_db(request)  # the request's unit of work (committed at its end)
        try:
            practice = library.create(db, actor=principal, data=data, upload=file)
        except ValidationFailed as exc:
            errors = _errors(db, exc)
            return _form(request, db, principal, None, data, errors, file_lost=file is not None, status=422)
        return redirect(f"/practices/{practice.id}?notice=created")

    return await run_in_threadpool(run)


@router.get("/practices/{practice_id}")
def practice_page(request: Request, practice_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                  notice: str | None = None) -> Response:
    practice = library.access(db, principal, practice_id)
    pathway, obstacle = library.linked(db, practice)
    return render(request, "pathways/practice.html", {
        "practice": practice, "body_html": library.render_markdown(practice.body), "notice": _notice(notice),
        "org": library.organizations(db, {practice.org_id}).get(practice.org_id),
        "author": library.author_name(db, practice), "pathway": pathway, "obstacle": obstacle,
        "size": library.attachment_size(db, practice),
        "can_write": policy.can(principal, "practice.write", practice)})


@router.get("/practices/{practice_id}/edit")
def edit_practice(request: Request, practice_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    practice = library.access(db, principal, practice_id, "practice.write")
    return _form(request, db, principal, practice, _form_values(practice), {})


@router.post("/practices/{practice_id}/edit")
async def update_practice(request: Request, practice_id: uuid.UUID, principal: CurrentPrincipal) -> Response:
    data, file, remove = await _posted(request)

    def run() -> Response:
        db = get_db(request)
        practice = library.access(db, principal, practice_id, "practice.write")
        try:
            library.update(db, actor=principal, practice=practice, data=data, upload=file, remove_attachment=remove)
        except ValidationFailed as exc:
            errors = _errors(db, exc)
            practice = library.access(db, principal, practice_id, "practice.write")
            return _form(request, db, principal, practice, data, errors, file_lost=file is not None, status=422)
        return redirect(f"/practices/{practice_id}?notice=saved")

    return await run_in_threadpool(run)


@router.post("/practices/{practice_id}/delete")
def delete_practice(request: Request, practice_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                    confirm: Annotated[str, Form(max_length=10)] = "") -> Response:
    practice = library.access(db, principal, practice_id, "practice.write")
    if not confirm:
        return _form(request, db, principal, practice, _form_values(practice),
                     {"confirm": _("Tick the box to confirm that the note is to be removed")}, status=422)
    library.delete(db, actor=principal, practice=practice)
    return redirect("/practices?notice=deleted")


@router.get("/practices/{practice_id}/file")
def download(practice_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    """The attachment, as a download in its stored type (never shown inline, never sniffed)."""
    practice = library.access(db, principal, practice_id)
    return file_response(practice)


def file_response(practice: Practice) -> Response:
    if not practice.filename or practice.data is None:
        raise policy.NotFound()
    return Response(practice.data, media_type=practice.content_type, headers={
        "Content-Disposition": library.content_disposition(practice.filename),
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "no-store"})
