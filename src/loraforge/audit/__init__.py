"""The audit log: every mutating action and every sign-in, append-only."""
