"""JSON API of the best-practice library: search the notes (each with its Markdown and the HTML it renders to),
share one, read, change or remove one of your organization's, download an attachment. Attachments are added
through the pages (a form with a file); the API reads them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import Query, Response
from pydantic import Field
from sqlalchemy.orm import Session

from rdn.core.modules import api_router
from rdn.core.schemas import Out, PageMeta, PageOut, StrictIn
from rdn.core.tenancy import Organization
from rdn.core.web import CurrentPrincipal, DbSession
from rdn.pathways import library
from rdn.pathways.models import Practice
from rdn.pathways.pages_library import file_response

router = api_router(prefix="/api/v1", tags=["pathways"])


class AttachmentOut(Out):
    filename: str
    content_type: str
    size: int = Field(description="bytes")
    url: str = Field(description="where to download it (GET, with the same credentials)")


class PracticeOut(Out):
    id: uuid.UUID
    org_id: uuid.UUID
    organization: str
    author_user_id: uuid.UUID | None
    title: str
    body: str = Field(description="Markdown, as written")
    body_html: str = Field(description="the Markdown rendered safely (no raw HTML, http/https/mailto links only, "
                                       "images as links)")
    tags: list[str]
    country: str
    pathway_id: uuid.UUID | None
    obstacle_id: uuid.UUID | None
    attachment: AttachmentOut | None
    created_at: datetime
    updated_at: datetime


class PracticeIn(StrictIn):
    title: str = Field(max_length=400, description="3 to 200 characters")
    body: str = Field(max_length=40_000, description="Markdown, at most 20,000 characters")
    tags: list[str] = Field(default_factory=list, max_length=50, description="at most 10 lower-case words")
    country: str = Field(default="", max_length=2, description="ISO 3166 alpha-2, or empty")
    pathway_id: uuid.UUID | None = None
    obstacle_id: uuid.UUID | None = None


class PracticeUpdate(StrictIn):
    title: str | None = Field(default=None, max_length=400)
    body: str | None = Field(default=None, max_length=40_000)
    tags: list[str] | None = Field(default=None, max_length=50)
    country: str | None = Field(default=None, max_length=2)
    pathway_id: uuid.UUID | None = Field(default=None, description="null: about no pathway")
    obstacle_id: uuid.UUID | None = Field(default=None, description="null: about no obstacle")


def _out(db: Session, practice: Practice, orgs: dict[uuid.UUID, Organization] | None = None,
         sizes: dict[uuid.UUID, int] | None = None) -> PracticeOut:
    orgs = orgs if orgs is not None else library.organizations(db, {practice.org_id})
    sizes = sizes if sizes is not None else library.attachment_sizes(db, [practice])
    org = orgs.get(practice.org_id)
    attachment = None
    if practice.filename:
        attachment = AttachmentOut(filename=practice.filename, content_type=practice.content_type,
                                   size=sizes.get(practice.id, 0),
                                   url=f"/api/v1/practices/{practice.id}/file")
    return PracticeOut(id=practice.id, org_id=practice.org_id, organization=org.name if org else "",
                       author_user_id=practice.author_user_id, title=practice.title, body=practice.body,
                       body_html=str(library.render_markdown(practice.body)), tags=list(practice.tags or []),
                       country=practice.country, pathway_id=practice.pathway_id, obstacle_id=practice.obstacle_id,
                       attachment=attachment, created_at=practice.created_at, updated_at=practice.updated_at)


@router.get("/practices", response_model=PageOut[PracticeOut], summary="Search the best-practice library")
def list_practices(db: DbSession, principal: CurrentPrincipal,
                   q: str = Query("", max_length=200, description="words in the title or the body"),
                   tag: str = Query("", max_length=40), country: str = Query("", max_length=2),
                   pathway_id: uuid.UUID | None = None, obstacle_id: uuid.UUID | None = None,
                   page: int = Query(1, ge=1), per_page: int = Query(20, ge=1, le=100)) -> PageOut[PracticeOut]:
    result = library.search(db, principal, q=q, tag=tag, country=country, pathway_id=pathway_id,
                            obstacle_id=obstacle_id, page=page, per_page=per_page)
    orgs = library.organizations(db, {p.org_id for p in result.items})
    sizes = library.attachment_sizes(db, result.items)
    return PageOut(items=[_out(db, p, orgs, sizes) for p in result.items], meta=PageMeta(**result.meta()))


@router.post("/practices", response_model=PracticeOut, status_code=201,
             summary="Share a note in your organization's name (attachments: through the pages)")
def create_practice(body: PracticeIn, db: DbSession, principal: CurrentPrincipal) -> PracticeOut:
    return _out(db, library.create(db, actor=principal, data=body.model_dump()))


@router.get("/practices/{practice_id}", response_model=PracticeOut, summary="One note")
def get_practice(practice_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> PracticeOut:
    return _out(db, library.access(db, principal, practice_id))


@router.patch("/practices/{practice_id}", response_model=PracticeOut,
              summary="Change one of your organization's notes (the fields sent; the others stay)")
def update_practice(practice_id: uuid.UUID, body: PracticeUpdate, db: DbSession,
                    principal: CurrentPrincipal) -> PracticeOut:
    practice = library.access(db, principal, practice_id, "practice.write")
    data: dict[str, Any] = body.model_dump(exclude_unset=True)
    for key in ("title", "body", "tags", "country"):
        if key in data and data[key] is None:
            del data[key]  # null means "no change" for these; only the links are cleared by null
    return _out(db, library.update(db, actor=principal, practice=practice, data=data))


@router.delete("/practices/{practice_id}", status_code=204, response_class=Response,
               summary="Remove one of your organization's notes")
def delete_practice(practice_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    practice = library.access(db, principal, practice_id, "practice.write")
    library.delete(db, actor=principal, practice=practice)
    return Response(status_code=204)


@router.get("/practices/{practice_id}/file", response_class=Response, summary="A note's attachment",
            responses={200: {"content": {"application/octet-stream": {}}}, 404: {"description": "no attachment"}})
def download(practice_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    return file_response(library.access(db, principal, practice_id))
