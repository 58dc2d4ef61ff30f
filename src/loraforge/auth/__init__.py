"""People: password hashing, access tokens, users and roles."""
