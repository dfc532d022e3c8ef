"""Whether a run record is comparable with the published numbers: the one rule table, compare and report ask.

A record is comparable when both hold:

- its data kind is ``official`` (the official layout, not written by ``data synth``; what that can
  and cannot prove: ``benchmark/data/provenance.py``), and
- its weights are what the paper's row started from: a checkpoint for every method registered
  ``pretrained`` (the record's ``method_pretrained``), none needed for one trained from scratch.

Records written before runs recorded provenance (no ``data`` field) are *unknown*: they are
counted and said to be unknown, not refused, so that an older folder of real runs still compares.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

NOT_COMPARABLE = "not comparable with the published numbers"
NOT_COMPARABLE_TITLE = "NOT COMPARABLE WITH THE PUBLISHED NUMBERS"
ALLOW_FLAG = "--allow-nonofficial"


def has_provenance(record: dict) -> bool:
    return isinstance(record.get("data"), dict)


def data_kind(record: dict) -> str:
    """official, synthetic, custom, or unknown (no provenance)."""
    return str(record["data"].get("kind", "unknown")) if has_provenance(record) else "unknown"


def random_weights(record: dict) -> bool:
    """The run started from random weights where its method's published row started from a checkpoint."""
    # A record without method_pretrained (none we write) counts as needing one: the cautious reading.
    return record.get("checkpoint") is None and bool(record.get("method_pretrained", True))


def weights_kind(record: dict) -> str:
    """checkpoint, random, random by design (a method trained from scratch), or unknown."""
    if not has_provenance(record):
        return "unknown"
    if record.get("checkpoint") is not None:
        return "checkpoint"
    return "random" if random_weights(record) else "random by design"


def shortfall(record: dict) -> str | None:
    """Why ``record`` is not comparable ("synthetic data and random weights"); None when it is, or
    when it has no provenance (:func:`unknown_summary` speaks for those)."""
    if not has_provenance(record):
        return None
    kind = data_kind(record)
    parts = [f"{kind} data"] if kind != "official" else []
    if random_weights(record):
        parts.append("random weights")
    return " and ".join(parts) or None


def nonofficial_summary(records: Sequence[dict]) -> str | None:
    """"12 of 12 records use synthetic data and random weights" when the records that fall short
    share one reason, else "5 of 12 records use synthetic data (3), custom data (1) or random weights
    (2)"; None when every record with provenance is comparable."""
    short = [s for s in map(shortfall, records) if s]
    if not short:
        return None
    head = f"{len(short)} of {len(records)} records use"
    if len(set(short)) == 1:
        return f"{head} {short[0]}"
    counts = Counter(part for s in short for part in s.split(" and "))
    data = [f"{what} ({n})" for what, n in sorted(counts.items()) if what != "random weights"]
    weights = [f"random weights ({counts['random weights']})"] if counts["random weights"] else []
    *rest, last = data + weights
    return f"{head} {', '.join(rest)} or {last}"


def unknown_summary(records: Sequence[dict]) -> str | None:
    """A sentence on the records without provenance, or None when every record has it."""
    n = sum(not has_provenance(r) for r in records)
    if not n:
        return None
    return (f"{n} of {len(records)} records carry no provenance (written before runs recorded their data "
            f"and weights): whether they are comparable with the published numbers is unknown")


def provenance_notes(records: Sequence[dict]) -> list[str]:
    """The lines a table or a verdict list carries about ``records`` (none when all are comparable)."""
    notes = []
    if summary := nonofficial_summary(records):
        notes.append(f"{NOT_COMPARABLE_TITLE}: {summary}.")
    if summary := unknown_summary(records):
        notes.append(f"Provenance unknown: {summary}.")
    return notes
