"""The web UI (Streamlit). It talks to the API over HTTP and to nothing else, so it works
the same against a remote deployment."""
