"""Admin: users (create, disable, enable) and the audit log with filters."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from loraforge.ui import session, tables
from loraforge.ui.client import ApiError

st.title("Users and audit log")
api = session.api()
me = session.signed_in_user()

DONE = "admin_done"

users_tab, audit_tab = st.tabs(["Users", "Audit log"])
with users_tab:
    if done := st.session_state.pop(DONE, None):  # said after the rerun that shows it
        st.success(done, icon=":material/check_circle:")
    people = api.users()
    accounts = tables.user_rows(people)
    tables.show(accounts, pinned="User")
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
                st.session_state[DONE] = f"{created['username']} ({created['role']}) created."
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
                    st.session_state[DONE] = (
                        f"{target['username']} {'disabled' if target['is_active'] else 'enabled'}."
                    )
                    st.rerun()
            st.caption("A disabled user's tokens stop working at once.")
        else:
            st.caption("No other users yet: create one on the left.")

with audit_tab:
    cols = st.columns(4)
    who = cols[0].text_input("User")
    action = cols[1].text_input("Action", placeholder="e.g. login, train.submit")
    since = cols[2].date_input("Since (UTC)", value=datetime.now(UTC).date() - timedelta(days=7))
    until = cols[3].date_input("Until (UTC)", value=datetime.now(UTC).date())
    events = api.audit(
        user=who.strip() or None,
        action=action.strip() or None,
        since=datetime.combine(since, time.min, UTC).isoformat(),
        until=datetime.combine(until, time.max, UTC).isoformat(),
        limit=500,
    )
    if events:
        table = tables.audit_rows(events)
        tables.show(table, pinned="When")
    else:
        st.info("No events match.")
