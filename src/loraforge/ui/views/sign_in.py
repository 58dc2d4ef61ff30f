"""Sign in: the token is kept in this browser session only."""

from __future__ import annotations

import streamlit as st

from loraforge.settings import get_settings
from loraforge.ui import session
from loraforge.ui.client import ApiClient, ApiError

st.title("loraforge")
st.caption("LoRA fine-tuning for text classification: data, jobs, experiments, predictions.")
if notice := st.session_state.pop(session.NOTICE, None):
    st.info(notice, icon=":material/info:")

with st.form("sign_in", border=True, width=420):
    username = st.text_input("Username", autocomplete="username")
    password = st.text_input("Password", type="password", autocomplete="current-password")
    submitted = st.form_submit_button("Sign in", type="primary")

if submitted:
    url = get_settings().api_url
    try:
        token = ApiClient(url).login(username, password)["access_token"]
        user = ApiClient(url, token).me()
    except ApiError as error:
        session.show_error(error)
    else:
        session.sign_in(token, user)
        st.rerun()
