"""The Streamlit entry point (`loraforge ui`): sign-in gate, navigation, session expiry.

Every page is a script under ``views/``; this file runs around each of them on every rerun.
Every page's URL exists whoever asks: signed out, any URL shows the sign-in form and the
page opens after signing in (a deep link such as ``/jobs?task=…`` survives); signed in,
a page the role may not see says so instead of "Page not found".
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from loraforge.monitoring import logs
from loraforge.ui import session
from loraforge.ui.client import ApiError, SignedOut
from loraforge.ui.views import sign_in

VIEWS = Path(__file__).parent / "views"
# Shipped with the package and served by Streamlit itself: a ":material/…:" or emoji page
# icon is fetched by the browser from fonts.gstatic.com or a CDN, which fails offline.
FAVICON = Path(__file__).parent / "static" / "favicon.png"
ADMIN_PAGE = "admin"


@st.cache_resource
def _json_logs() -> bool:
    # Once per process, not per rerun: the UI's lines carry task ids like the API's.
    logs.configure("ui")
    return True


def view(name: str, title: str, icon: str, *, shown: bool = True):
    return st.Page(
        VIEWS / f"{name}.py",
        title=title,
        icon=icon,
        url_path=name,
        visibility="visible" if shown else "hidden",
    )


def _home() -> None:
    # Streamlit serves its default page at "/" only; New job is an ordinary page so that
    # /new_job exists too, and "/" forwards to it.
    st.switch_page(VIEWS / "new_job.py")


def pages(user: dict | None) -> dict[str, list[st.Page]]:
    """The same URLs for everyone; only what the menu shows depends on who asks."""
    shown = user is not None
    is_admin = shown and user["role"] == "admin"
    home = st.Page(_home, title="loraforge", url_path="home", default=True, visibility="hidden")
    fine_tuning = [
        home,
        view("new_job", "New job", ":material/add_circle:", shown=shown),
        view("jobs", "Jobs", ":material/work_history:", shown=shown),
        view("experiments", "Experiments", ":material/science:", shown=shown),
        view("models", "Models", ":material/inventory_2:", shown=shown),
        view("try_it", "Try it", ":material/chat:", shown=shown),
    ]
    admin = view(
        ADMIN_PAGE, "Users and audit log", ":material/admin_panel_settings:", shown=is_admin
    )
    if is_admin:
        return {"Fine-tuning": fine_tuning, "Admin": [admin]}
    return {"Fine-tuning": [*fine_tuning, admin]}  # hidden: no empty "Admin" heading


st.set_page_config(page_title="loraforge", page_icon=FAVICON, layout="wide")
_json_logs()

user = session.signed_in_user() or session.restore()
page = st.navigation(pages(user), position="sidebar" if user else "hidden")
# Sets the browser's cookie to this session's key (or clears it after signing out).
if script := session.cookie_script():
    (st.sidebar if user else st).html(script, unsafe_allow_javascript=True)

if user is None:
    sign_in.show(asked_for=None if page.url_path == "" else page.title)
    st.stop()

with st.sidebar:
    st.caption(f"Signed in as **{user['username']}** ({user['role']})")
    if st.button("Sign out", icon=":material/logout:"):
        session.sign_out("You are signed out.")
        st.rerun()

if page.url_path == ADMIN_PAGE and user["role"] != "admin":
    st.title(page.title)
    st.warning(
        f"This page is for administrators. You are signed in as **{user['username']}**, "
        "who is not one: ask an administrator if you need it.",
        icon=":material/lock:",
    )
    st.stop()

try:
    page.run()
except SignedOut:
    session.sign_out(session.EXPIRED)
    st.rerun()
except ApiError as error:
    session.show_error(error)
