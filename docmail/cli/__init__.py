"""The ``docmail`` command line: init, serve, worker, import, send, messages, secrets."""
