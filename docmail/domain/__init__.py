"""Pure domain logic: no I/O, no database, no network. Everything here is unit-testable."""
