"""Adapters at the edges: database, SMTP, crypto, storage. Passed in, never global."""
