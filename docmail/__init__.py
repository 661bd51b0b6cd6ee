"""docmail: email business documents to the people they concern."""

__version__ = "0.1.0"
