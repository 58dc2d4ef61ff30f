"""Admin: users (create, disable, enable) and the audit log with filters."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pandas as pd
import streamlit as st

from loraforge.ui import session
from loraforge.ui.client import ApiError

st.title("Users and audit log")
api = session.api()
me = session.signed_in_user()

users_tab, audit_tab = st.tabs(["Users", "Audit log"])
with users_tab:
    people = api.users()
    st.dataframe(
        pd.DataFrame(people)[["id", "username", "role", "is_active", "created_at"]],
        hide_index=True,
        width="stretch",
    )
    left, right = st.columns(2)
    with left, st.form("create_user", clear_on_submit=True):
        st.markdown("**New user**")
        username = st.text_input("Username")
        password = st.text_input("Password (8 characters or more)", type="password")
        role = st.selectbox("Role", ["user", "admin"])
        if st.form_submit_button("Create user", icon=":material/person_add:"):
            try:
                created = api.create_user(username, password, role)
            except ApiError as error:
                session.show_error(error)
            else:
                st.success(f"{created['username']} ({created['role']}) created.")
                st.rerun()
    with right:
        st.markdown("**Disable or enable**")
        others = [p for p in people if p["id"] != me["id"]]
        if others:
            target = st.selectbox(
                "User",
                others,
                format_func=lambda p: (
                    f"{p['username']} ({'active' if p['is_active'] else 'disabled'})"
                ),
            )
            label = "Disable" if target["is_active"] else "Enable"
            if st.button(f"{label} {target['username']}", icon=":material/block:"):
                try:
                    api.set_active(target["id"], not target["is_active"])
                except ApiError as error:
                    session.show_error(error)
                else:
                    st.rerun()
            st.caption("A disabled user's tokens stop working at once.")

with audit_tab:
    cols = st.columns(4)
    who = cols[0].text_input("User")
    action = cols[1].text_input("Action", placeholder="e.g. login, train.submit")
    since = cols[2].date_input("Since", value=datetime.now(UTC).date() - timedelta(days=7))
    until = cols[3].date_input("Until", value=datetime.now(UTC).date())
    events = api.audit(
        user=who.strip() or None,
        action=action.strip() or None,
        since=datetime.combine(since, time.min, UTC).isoformat(),
        until=datetime.combine(until, time.max, UTC).isoformat(),
        limit=500,
    )
    if events:
        st.dataframe(
            pd.DataFrame(events)[
                ["at", "username", "action", "target", "outcome", "client", "detail"]
            ],
            hide_index=True,
            width="stretch",
        )
    else:
        st.info("No events match.")
