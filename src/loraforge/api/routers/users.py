"""Users: admins create, list, disable and re-role; anyone signed in sees themselves."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path

from loraforge.api.deps import AdminUser, AuditDep, CurrentUser, SessionDep
from loraforge.api.errors import error_responses
from loraforge.api.schemas import UserCreate, UserPublic, UsersPublic, UserUpdate
from loraforge.audit import log as audit
from loraforge.auth import users

router = APIRouter(prefix="/users", tags=["users"], responses=error_responses(401, 403))

# Bounded: an id beyond a 64-bit integer would otherwise reach the database driver.
UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/me", response_model=UserPublic, summary="Who am I")
def me(user: CurrentUser) -> UserPublic:
    """The signed-in user: id, name, role. Any signed-in user."""
    return UserPublic(**asdict(user))


@router.post(
    "",
    response_model=UserPublic,
    status_code=201,
    summary="Create a user",
    responses=error_responses(400, 409, 422),
)
def create_user(
    body: UserCreate, admin: AdminUser, session: SessionDep, record: AuditDep
) -> UserPublic:
    """A new account with a password of at least 8 characters; 409 if the name is taken.
    Admins only; audited."""
    created = users.create_user(
        session, username=body.username, password=body.password, role=body.role
    )
    record(
        "user.create",
        audit.SUCCESS,
        actor=admin,
        target=f"user:{created.id}",
        detail={"username": created.username, "role": created.role},
    )
    session.commit()
    return UserPublic(**asdict(created))


@router.get("", response_model=UsersPublic, summary="List users")
def list_users(_admin: AdminUser, session: SessionDep) -> UsersPublic:
    """Every account, without password hashes. Admins only."""
    found = users.list_users(session)
    return UsersPublic(data=[UserPublic(**asdict(u)) for u in found], count=len(found))


@router.patch(
    "/{user_id}",
    response_model=UserPublic,
    summary="Change a user's role or enable/disable them",
    responses=error_responses(404, 422),
)
def update_user(
    user_id: UserId, body: UserUpdate, admin: AdminUser, session: SessionDep, record: AuditDep
) -> UserPublic:
    """Set `role` and/or `is_active`; it takes effect on the user's next request, whatever
    their token says. Admins only; audited."""
    updated = users.get_user(session, user_id)
    if body.role is not None:
        updated = users.set_role(session, user_id=user_id, role=body.role)
    if body.is_active is not None:
        updated = users.set_active(session, user_id=user_id, active=body.is_active)
    record(
        "user.update",
        audit.SUCCESS,
        actor=admin,
        target=f"user:{user_id}",
        detail=body.model_dump(exclude_none=True),
    )
    session.commit()
    return UserPublic(**asdict(updated))


@router.post(
    "/{user_id}/disable",
    response_model=UserPublic,
    summary="Disable a user",
    responses=error_responses(404, 422),
)
def disable_user(
    user_id: UserId, admin: AdminUser, session: SessionDep, record: AuditDep
) -> UserPublic:
    """The same as `PATCH {"is_active": false}`: the user can no longer sign in, and their
    tokens stop working at once. Admins only; audited."""
    return update_user(user_id, UserUpdate(is_active=False), admin, session, record)
