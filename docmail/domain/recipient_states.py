"""Per-recipient delivery: who got a message, who is still waiting, who was refused.

An SMTP server may accept a message for some recipients and refuse others at
``RCPT TO``: ``4xx`` means "try later" (greylisting, a full mailbox), ``5xx``
"never". The message then went out once, to the accepted ones; only the deferred
ones may be tried again — with the same Message-ID and bytes, and an envelope
that holds only them, so nobody gets a second copy.

Where it is stored: each attempt that the server accepted while refusing some
recipients keeps one line per recipient of its envelope after the server's reply,
in the attempt's ``detail`` (``"<state> <address> <code> <reply>"``; addresses are
bare and replies one line, so the split is exact). The state of every recipient
is the last line that names it, over the message's attempts in order. An attempt
without lines that ended ``sent`` with a 2xx reply accepted everyone it went to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ACCEPTED = "accepted"
DEFERRED = "deferred"  # 4xx at RCPT: tried again later, alone
REFUSED = "refused"  # 5xx at RCPT: never delivered
FAILED = "failed"  # deferred until the retry policy gave up, or the message failed
PENDING = "pending"  # not tried yet, or being tried
LINE_STATES = frozenset({ACCEPTED, DEFERRED, REFUSED, FAILED})


@dataclass(frozen=True)
class RecipientState:
    address: str
    state: str
    code: int | None = None
    reply: str = ""

    def line(self) -> str:
        return " ".join(
            p for p in (self.state, self.address, str(self.code or ""), self.reply) if p
        )

    def summary(self) -> str:
        return f"{self.address}: {self.code} {self.reply}".strip()


def answered(
    envelope: Iterable[str], refused: Mapping[str, tuple[int, str]]
) -> list[RecipientState]:
    """Each envelope recipient's answer in one attempt the server accepted for some of them."""
    states = []
    for address in envelope:
        if address in refused:
            code, reply = refused[address]
            state = REFUSED if code >= 500 else DEFERRED
            states.append(RecipientState(address, state, code, " ".join(reply.split())))
        else:
            states.append(RecipientState(address, ACCEPTED))
    return states


def attempt_detail(reply: str, states: Iterable[RecipientState]) -> str:
    """An attempt's ``detail``: the server's reply, then one line per recipient."""
    return "\n".join([reply, *(s.line() for s in states)])


def parse_detail(detail: str | None) -> list[RecipientState]:
    """The recipient lines of an attempt's ``detail`` (none for an ordinary attempt)."""
    states = []
    for line in (detail or "").splitlines()[1:]:
        parts = line.split(" ", 3)
        if len(parts) < 2 or parts[0] not in LINE_STATES:
            continue
        code = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
        states.append(RecipientState(parts[1], parts[0], code, parts[3] if len(parts) > 3 else ""))
    return states


Attempt = tuple[str | None, int | None, str | None]  # outcome, SMTP code, detail


def fold(recipients: Iterable[str], attempts: Iterable[Attempt]) -> dict[str, RecipientState]:
    """Every recipient's state after ``attempts`` (oldest first).

    An attempt the server accepted (``sent``, a 2xx code) without recipient lines
    went to everyone still waiting; a failed attempt changes no recipient's state.
    """
    states = {address: RecipientState(address, PENDING) for address in recipients}
    for outcome, code, detail in attempts:
        lines = parse_detail(detail)
        for state in lines:
            states[state.address] = state
        if outcome == "sent" and code is not None and 200 <= code < 300 and not lines:
            for address, state in states.items():
                if state.state in (PENDING, DEFERRED):
                    states[address] = RecipientState(address, ACCEPTED)
    return states


def envelope_for_retry(recipients: list[str], earlier: Mapping[str, RecipientState]) -> list[str]:
    """Who the next attempt goes to: everyone not yet answered or deferred.

    A message requeued after every recipient was refused goes to all who never
    accepted it (someone decided to try again); an accepted recipient never twice.
    """
    waiting = [r for r in recipients if earlier.get(r, _NONE).state in (PENDING, DEFERRED)]
    if waiting:
        return waiting
    return [r for r in recipients if earlier.get(r, _NONE).state != ACCEPTED]


_NONE = RecipientState("", PENDING)
