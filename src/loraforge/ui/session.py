"""What the UI keeps per browser session: the token and who is signed in, and how a
browser finds its sign-in again after a reload. Nothing else is kept: every page asks
the API afresh, so what it shows is what the API says now.

A reload (or a link opened in a new tab) starts a new Streamlit session with an empty
``st.session_state``. So at sign-in the UI server keeps the token and the user in a
process-wide store under a random key, and gives the browser only that key, in a cookie
(``SameSite=Strict``, ``Secure`` over https, expiring with the token). A new session
reads the cookie (``st.context.cookies``), finds the token by its key and asks the API
who it belongs to (``GET /users/me``); a 401 forgets it. The JWT itself never reaches
the browser, a URL or a log line; signing out (or the token expiring) deletes the key,
after which a copied cookie opens nothing.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import streamlit as st

from loraforge.settings import get_settings
from loraforge.ui.client import ApiClient, ApiError, SignedOut

TOKEN, USER, NOTICE = "token", "user", "notice"
KEY = "session_key"  # this session's key in the store (and in the browser's cookie)
FORGET = "forget_cookie"  # the browser's cookie is to be cleared on the next run
TRIED = "cookie_tried"  # the cookie's key was looked up once in this session
RUN_AGAIN = "run_again"  # a job's config for New job to start from ("run again")
COOKIE = "loraforge_session"
EXPIRED = "Your session has expired or was revoked: sign in again."
ENDED_ELSEWHERE = "You signed out in another tab, or your session expired: sign in again."
T = TypeVar("T")


@dataclass(frozen=True)
class Remembered:
    token: str
    user: dict[str, Any]
    expires_at: float  # seconds since the epoch: when the token expires


class SessionStore:
    """Key → token and user, for this UI process. Entries end with their token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # every browser session runs in its own thread
        self._entries: dict[str, Remembered] = {}

    def add(self, token: str, user: dict[str, Any], expires_at: float) -> str:
        key = secrets.token_urlsafe(32)
        with self._lock:
            self._prune()
            self._entries[key] = Remembered(token, user, expires_at)
        return key

    def get(self, key: str) -> Remembered | None:
        with self._lock:
            self._prune()
            return self._entries.get(key)

    def drop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def _prune(self) -> None:
        now = time.time()
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[key]


@st.cache_resource
def sessions() -> SessionStore:
    """One store per UI process, shared by its browser sessions. Several UI replicas
    need sticky sessions anyway: a Streamlit session lives in one process."""
    return SessionStore()


def api() -> ApiClient:
    return ApiClient(get_settings().api_url, st.session_state.get(TOKEN))


def signed_in_user() -> dict[str, Any] | None:
    user = st.session_state.get(USER)
    key = st.session_state.get(KEY)
    if user is not None and key is not None and sessions().get(key) is None:
        # Signed out in another tab (which cleared the cookie, and may have set a new
        # one since: leave it alone), or the token's time is up (so is the cookie's).
        sign_out(ENDED_ELSEWHERE, forget_cookie=False)
        return None
    return user


def _expiry(expires_at: str | None) -> float:
    """The token's expiry from the login answer (ISO 8601), as epoch seconds."""
    try:
        moment = datetime.fromisoformat(str(expires_at))
    except ValueError:
        return time.time() + 60 * get_settings().jwt_expire_minutes
    if moment.tzinfo is None:  # the API speaks UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def sign_in(token: str, user: dict[str, Any], expires_at: str | None = None) -> None:
    st.session_state[TOKEN] = token
    st.session_state[USER] = user
    st.session_state[KEY] = sessions().add(token, user, _expiry(expires_at))
    st.session_state.pop(FORGET, None)


def _browser_key() -> str | None:
    """The key in the cookie the browser sent when this session opened."""
    return st.context.cookies.get(COOKIE)


def restore() -> dict[str, Any] | None:
    """After a reload: the user of the browser's cookie, if its sign-in is still valid."""
    key = _browser_key()
    if not key or st.session_state.get(TRIED) == key:
        return None
    st.session_state[TRIED] = key  # once per session: a stale cookie costs one look-up
    remembered = sessions().get(key)
    if remembered is None:  # signed out, expired, or the UI restarted
        st.session_state[FORGET] = True
        return None
    try:
        user = ApiClient(get_settings().api_url, remembered.token).me()
    except SignedOut:  # revoked, disabled, or the API's secret changed
        sessions().drop(key)
        st.session_state[FORGET] = True
        return None
    except ApiError:  # the API is away: keep the key, sign in by hand for now
        return None
    st.session_state[TOKEN] = remembered.token
    st.session_state[USER] = user
    st.session_state[KEY] = key
    return user


def sign_out(notice: str | None = None, *, forget_cookie: bool = True) -> None:
    if key := st.session_state.pop(KEY, None):
        sessions().drop(key)
    for name in (TOKEN, USER):
        st.session_state.pop(name, None)
    if forget_cookie:
        st.session_state[FORGET] = True
    if notice:
        st.session_state[NOTICE] = notice


def cookie_script() -> str | None:
    """A script that sets (signed in) or clears (just signed out) the browser's cookie,
    or None when there is nothing to change. It carries the key, never the token."""
    key = st.session_state.get(KEY)
    remembered = sessions().get(key) if key else None
    if remembered is not None:
        value, max_age = key, max(0, int(remembered.expires_at - time.time()))
    elif st.session_state.pop(FORGET, False):
        value, max_age = "", 0
    else:
        return None
    # The key is URL-safe base64 (letters, digits, '-', '_'): nothing to escape.
    return (
        "<script>document.cookie = "
        f'"{COOKIE}={value}; Path=/; Max-Age={max_age}; SameSite=Strict"'
        ' + (location.protocol === "https:" ? "; Secure" : "");</script>'
    )


def run_again(config: dict[str, Any]) -> None:
    """Open New job with a job's settings filled in. They travel in the session, not the
    URL: a config is long, and a URL is shared, logged and kept in the history."""
    st.session_state[RUN_AGAIN] = config
    st.switch_page("views/new_job.py")


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
