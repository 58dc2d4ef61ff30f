"""What the UI keeps per browser session: the token and who is signed in. Nothing else
is kept: every page asks the API afresh, so what it shows is what the API says now."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from loraforge.settings import get_settings
from loraforge.ui.client import ApiClient, ApiError, SignedOut

TOKEN, USER, NOTICE = "token", "user", "notice"
EXPIRED = "Your session has expired or was revoked: sign in again."
T = TypeVar("T")


def api() -> ApiClient:
    return ApiClient(get_settings().api_url, st.session_state.get(TOKEN))


def signed_in_user() -> dict[str, Any] | None:
    return st.session_state.get(USER)


def sign_in(token: str, user: dict[str, Any]) -> None:
    st.session_state[TOKEN] = token
    st.session_state[USER] = user


def sign_out(notice: str | None = None) -> None:
    for key in (TOKEN, USER):
        st.session_state.pop(key, None)
    if notice:
        st.session_state[NOTICE] = notice


def show_error(error: ApiError) -> None:
    st.error(error.message + (f"  \n{error.hint}" if error.hint else ""), icon=":material/error:")


def in_fragment(fetch: Callable[[], T]) -> T:
    """A fragment's own reruns bypass the app's handler: a 401 there signs out here."""
    try:
        return fetch()
    except SignedOut:
        sign_out(EXPIRED)
        st.rerun(scope="app")
        raise  # not reached: st.rerun raises
