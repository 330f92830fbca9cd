"""The history store: every collected submission in an embedded SQLite database."""
