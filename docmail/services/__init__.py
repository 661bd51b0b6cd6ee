"""Use cases: each takes the :class:`~docmail.services.runtime.Runtime` and an :class:`Actor`."""
