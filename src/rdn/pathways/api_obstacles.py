"""JSON API of obstacles: report and update them, their status, what they block (counts for everyone, the
cases for those who may see them), diplomatic actions, and blocking a case's checklist item."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import Query
from pydantic import Field

from rdn.core import policy
from rdn.core.modules import api_router
from rdn.core.schemas import Out, PageMeta, PageOut, StrictIn
from rdn.core.web import CurrentPrincipal, DbSession
from rdn.pathways import obstacles as service
from rdn.pathways.models import (
    ActionType,
    DiplomaticAction,
    Obstacle,
    ObstacleStatus,
    ObstacleType,
    Severity,
)

router = api_router(prefix="/api/v1", tags=["pathways"])


class ObstacleOut(Out):
    id: uuid.UUID
    country: str
    type: ObstacleType
    title: str
    description: str
    amount: float | None
    currency: str
    nationalities: list[str]
    since: date | None
    severity: Severity
    status: ObstacleStatus
    history: list[dict[str, Any]]
    links: list[str]
    resolved_at: datetime | None
    reported_by_org_id: uuid.UUID
    created_at: datetime


class ObstacleIn(StrictIn):
    country: str = Field(min_length=2, max_length=2)
    type: ObstacleType
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=5000)
    amount: float | None = Field(default=None, ge=0)
    currency: str = Field(default="", max_length=3)
    nationalities: list[str] = Field(default_factory=list, max_length=50)
    since: date | None = None
    severity: Severity = Severity.medium
    links: list[str] = Field(default_factory=list, max_length=20)


class ObstacleUpdate(StrictIn):
    title: str | None = Field(default=None, min_length=3, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    amount: float | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, max_length=3)
    nationalities: list[str] | None = Field(default=None, max_length=50)
    since: date | None = None
    severity: Severity | None = None
    links: list[str] | None = Field(default=None, max_length=20)


class StatusIn(StrictIn):
    status: ObstacleStatus
    note: str = Field(default="", max_length=1000)


class StatusOut(Out):
    status: ObstacleStatus
    released: int = Field(description="cases released (when resolved)")


class BlockedCase(Out):
    case_id: uuid.UUID
    number: str
    item: str
    people: int
    blocked_since: datetime


class BlocksOut(Out):
    cases: int
    people: int
    longest_days: int
    median_days: int
    by_stage: list[dict[str, Any]]
    released: int
    visible: list[BlockedCase] = Field(description="the blocked cases you may see")
    others: int = Field(description="blocked cases you may not see")
    weekly: list[dict[str, Any]]


class ActionIn(StrictIn):
    type: ActionType
    on: date | None = None
    cosigners: list[uuid.UUID] = Field(default_factory=list, max_length=30)
    description: str = Field(default="", max_length=5000)
    outcome: str = Field(default="", max_length=5000)
    follow_up_on: date | None = None


class ActionUpdate(StrictIn):
    outcome: str | None = Field(default=None, max_length=5000)
    follow_up_on: date | None = None


class ActionOut(Out):
    id: uuid.UUID
    obstacle_id: uuid.UUID
    type: ActionType
    lead_org_id: uuid.UUID
    cosigners: list[str]
    on: date
    description: str
    outcome: str
    follow_up_on: date | None
    reminded_at: datetime | None


class BlockIn(StrictIn):
    obstacle_id: uuid.UUID
    note: str = Field(default="", max_length=500)


class BlockOut(Out):
    id: uuid.UUID
    obstacle_id: uuid.UUID
    case_id: uuid.UUID
    item: str
    people: int
    blocked_at: datetime


def _obstacle(db: Any, principal: Any, obstacle_id: uuid.UUID, action: str = "obstacle.read") -> Obstacle:
    return policy.access(db, principal, Obstacle, obstacle_id, action)


@router.get("/obstacles", response_model=PageOut[ObstacleOut], summary="Obstacles (status: open for unresolved)")
def list_obstacles(db: DbSession, principal: CurrentPrincipal, country: str = Query("", max_length=2),
                   status: str = Query("", max_length=20), type: str = Query("", max_length=30),
                   severity: str = Query("", max_length=20), q: str = Query("", max_length=100),
                   page: int = Query(1, ge=1), per_page: int = Query(25, ge=1, le=100)) -> PageOut[ObstacleOut]:
    result = service.list_obstacles(db, principal, country=country, status=status, type=type, severity=severity,
                                    q=q, page=page, per_page=per_page)
    return PageOut(items=[ObstacleOut.model_validate(o) for o in result.items], meta=PageMeta(**result.meta()))


@router.post("/obstacles", response_model=ObstacleOut, status_code=201, summary="Report an obstacle")
def create_obstacle(body: ObstacleIn, db: DbSession, principal: CurrentPrincipal) -> Obstacle:
    return service.create_obstacle(db, actor=principal, data=body.model_dump())


@router.get("/obstacles/{obstacle_id}", response_model=ObstacleOut, summary="One obstacle")
def get_obstacle(obstacle_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Obstacle:
    return _obstacle(db, principal, obstacle_id)


@router.patch("/obstacles/{obstacle_id}", response_model=ObstacleOut, summary="Change an obstacle")
def update_obstacle(obstacle_id: uuid.UUID, body: ObstacleUpdate, db: DbSession,
                    principal: CurrentPrincipal) -> Obstacle:
    obstacle = _obstacle(db, principal, obstacle_id, "obstacle.update")
    return service.update_obstacle(db, actor=principal, obstacle=obstacle, data=body.model_dump(exclude_unset=True))


@router.post("/obstacles/{obstacle_id}/status", response_model=StatusOut,
             summary="Move the status; resolving releases every case it blocks and tells their owners")
def change_status(obstacle_id: uuid.UUID, body: StatusIn, db: DbSession, principal: CurrentPrincipal) -> StatusOut:
    obstacle = _obstacle(db, principal, obstacle_id, "obstacle.update")
    released = service.set_status(db, actor=principal, obstacle=obstacle, status=body.status, note=body.note)
    return StatusOut(status=obstacle.status, released=released)


@router.get("/obstacles/{obstacle_id}/blocks", response_model=BlocksOut,
            summary="What the obstacle blocks: counts for every member, the cases you may see")
def blocks(obstacle_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> BlocksOut:
    obstacle = _obstacle(db, principal, obstacle_id)
    counts = service.counts(db, obstacle)
    shown, hidden = service.blocked_cases(db, principal, obstacle)
    return BlocksOut(cases=counts.cases, people=counts.people, longest_days=counts.longest_days,
                     median_days=counts.median_days, released=counts.released,
                     by_stage=[{"stage": s, "cases": n, "people": p} for s, n, p in counts.by_stage],
                     visible=[BlockedCase(case_id=c.id, number=c.number, item=b.item, people=b.people,
                                          blocked_since=b.blocked_at) for b, c in shown],
                     others=hidden, weekly=[{**p, "week": p["week"].isoformat()}
                                            for p in service.timeline(db, [obstacle.id])])


@router.get("/obstacles/{obstacle_id}/actions", response_model=list[ActionOut], summary="Diplomatic actions")
def list_actions(obstacle_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> list[DiplomaticAction]:
    return service.actions_of(db, _obstacle(db, principal, obstacle_id))


@router.post("/obstacles/{obstacle_id}/actions", response_model=ActionOut, status_code=201,
             summary="Record a diplomatic action (your organization leads it)")
def add_action(obstacle_id: uuid.UUID, body: ActionIn, db: DbSession, principal: CurrentPrincipal
               ) -> DiplomaticAction:
    obstacle = _obstacle(db, principal, obstacle_id, "obstacle.action")
    data = body.model_dump()
    data["cosigners"] = [str(c) for c in body.cosigners]
    return service.add_action(db, actor=principal, obstacle=obstacle, data=data)


@router.patch("/obstacles/{obstacle_id}/actions/{diplomatic_action_id}", response_model=ActionOut,
              summary="The lead records the outcome or the next follow-up")
def update_action(obstacle_id: uuid.UUID, diplomatic_action_id: uuid.UUID, body: ActionUpdate, db: DbSession,
                  principal: CurrentPrincipal) -> DiplomaticAction:
    obstacle = _obstacle(db, principal, obstacle_id)
    action = db.get(DiplomaticAction, diplomatic_action_id)
    if action is None or action.obstacle_id != obstacle.id:
        raise policy.NotFound()
    given = body.model_dump(exclude_unset=True)
    return service.update_action(db, actor=principal, action=action, outcome=given.get("outcome"),
                                 follow_up_on=given.get("follow_up_on", action.follow_up_on))


@router.put("/cases/{case_id}/checklist/{item}/obstacle", response_model=BlockOut,
            summary="Mark a checklist item of a case blocked by an obstacle")
def block_case(case_id: uuid.UUID, item: str, body: BlockIn, db: DbSession, principal: CurrentPrincipal) -> Any:
    return service.block_case(db, actor=principal, case_id=case_id, item=item, obstacle_id=body.obstacle_id,
                              note=body.note)


@router.delete("/cases/{case_id}/checklist/{item}/obstacle", status_code=204,
               summary="The item is no longer blocked: back to pending (its block is released)")
def unblock_case(case_id: uuid.UUID, item: str, db: DbSession, principal: CurrentPrincipal) -> None:
    service.unblock_case(db, actor=principal, case_id=case_id, item=item)
