"""Sign in. Not a page of its own: ``app.py`` shows this form at whatever URL a
signed-out browser asked for (``/jobs?task=…``), and the rerun after signing in opens
that page, query parameters and all. The token stays on the UI server (``session``)."""

from __future__ import annotations

import streamlit as st

from loraforge.settings import get_settings
from loraforge.ui import session
from loraforge.ui.client import ApiClient, ApiError


def show(asked_for: str | None = None) -> None:
    """The form; ``asked_for``: the title of the page that opens after signing in."""
    st.title("loraforge")
    st.caption("LoRA fine-tuning for text classification: data, jobs, experiments, predictions.")
    if notice := st.session_state.pop(session.NOTICE, None):
        st.info(notice, icon=":material/info:")
    elif asked_for:
        st.info(f"Sign in to open **{asked_for}**.", icon=":material/login:")

    with st.form("sign_in", border=True, width=420):
        username = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")

    if submitted:
        url = get_settings().api_url
        try:
            answer = ApiClient(url).login(username, password)
            user = ApiClient(url, answer["access_token"]).me()
        except ApiError as error:
            session.show_error(error)
        else:
            session.sign_in(answer["access_token"], user, answer.get("expires_at"))
            st.rerun()  # the same URL, now signed in: the page that was asked for
