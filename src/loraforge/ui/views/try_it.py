"""Try it: texts in, label and probability out, from a chosen experiment's model."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from loraforge.ui import charts, session
from loraforge.ui.client import ApiError

st.title("Try a model")
api = session.api()
ready = [e for e in api.experiments() if e["status"] == "succeeded"]
if not ready:
    st.info("No finished experiment yet: a succeeded job's model appears here.")
    st.stop()

ids = [e["id"] for e in ready]
asked = st.query_params.get("experiment")
described = {
    e["id"]: f"{e['id']} · {e['base_model']} ({e['language']}) · accuracy "
    f"{((e['metrics'] or {}).get('final') or {}).get('accuracy', 0):.1%}"
    for e in ready
}
experiment_id = st.selectbox(
    "Model", ids, index=ids.index(asked) if asked in ids else 0, format_func=described.__getitem__
)
with st.form("predict"):
    text = st.text_area(
        "Texts, one per line",
        height=160,
        placeholder="What a wonderful flight!\nThey lost my bag again.",
    )
    asked_for = st.form_submit_button("Predict", type="primary", icon=":material/bolt:")

if asked_for:
    texts = [line.strip() for line in text.splitlines() if line.strip()]
    if not texts:
        st.error("Type at least one text.")
        st.stop()
    try:
        answers = api.predict(experiment_id, texts)
    except ApiError as error:
        session.show_error(error)
        st.stop()
    shown = [{"text": t, **a} for t, a in zip(texts, answers, strict=True)]
    st.dataframe(
        pd.DataFrame(shown)[
            ["text", "label", "probability", "latency_ms", "base_model", "language"]
        ],
        hide_index=True,
        width="stretch",
        column_config={
            "probability": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.3f")
        },
    )
    st.altair_chart(charts.probabilities(shown), width="stretch")
