"""The Streamlit entry point (`loraforge ui`): sign-in gate, navigation, session expiry.

Every page is a script under ``views/``; this file runs around each of them on every rerun.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from loraforge.monitoring import logs
from loraforge.ui import session
from loraforge.ui.client import ApiError, SignedOut

VIEWS = Path(__file__).parent / "views"


@st.cache_resource
def _json_logs() -> bool:
    # Once per process, not per rerun: the UI's lines carry task ids like the API's.
    logs.configure("ui")
    return True


def view(name: str, title: str, icon: str, *, default: bool = False) -> st.Page:
    return st.Page(VIEWS / f"{name}.py", title=title, icon=icon, url_path=name, default=default)


st.set_page_config(page_title="loraforge", page_icon=":material/tune:", layout="wide")
_json_logs()

user = session.signed_in_user()
if user is None:
    navigation = st.navigation([view("sign_in", "Sign in", ":material/login:", default=True)])
else:
    pages = {
        "Fine-tuning": [
            view("new_job", "New job", ":material/add_circle:", default=True),
            view("jobs", "Jobs", ":material/work_history:"),
            view("experiments", "Experiments", ":material/science:"),
            view("try_it", "Try it", ":material/chat:"),
        ]
    }
    if user["role"] == "admin":
        pages["Admin"] = [view("admin", "Users and audit log", ":material/admin_panel_settings:")]
    navigation = st.navigation(pages)
    with st.sidebar:
        st.caption(f"Signed in as **{user['username']}** ({user['role']})")
        if st.button("Sign out", icon=":material/logout:"):
            session.sign_out("You are signed out.")
            st.rerun()

try:
    navigation.run()
except SignedOut:
    session.sign_out(session.EXPIRED)
    st.rerun()
except ApiError as error:
    session.show_error(error)
