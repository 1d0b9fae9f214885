"""OneID tables: persons, the identifiers that point at them, and the evidence that linked them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class Person(Base):
    __tablename__ = "persons"

    # Deterministic: derived from the first identifier seen (identity.keys.person_id_for), so
    # that a re-run import or two processes seeing the same new identifier agree on the id.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Set when this person was merged into another one; the row stays as a tombstone.
    merged_into: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)


class Identifier(Base):
    __tablename__ = "identifiers"
    __table_args__ = (UniqueConstraint("id_type", "id_value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_type: Mapped[str] = mapped_column(String(32))
    # Phones are stored as an HMAC here; other identifiers as given by the channel.
    id_value: Mapped[str] = mapped_column(String(128))
    person_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("persons.id"), index=True)
    # AES-GCM ciphertext of a direct identifier, for an authorised and audited reveal.
    encrypted_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    display: Mapped[str] = mapped_column(String(64), index=True)  # the console's search by masked value
    source: Mapped[str] = mapped_column(String(64), default="")
    first_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class IdentityLink(Base):
    """One piece of evidence that two identifiers belong to the same human, and what it did."""

    __tablename__ = "identity_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_type_a: Mapped[str] = mapped_column(String(32))
    id_value_a: Mapped[str] = mapped_column(String(128))
    id_type_b: Mapped[str] = mapped_column(String(32))
    id_value_b: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(64), default="")
    observed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # merged | already_same | conflict
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")


class PersonMerge(Base):
    """The merge log; the warehouse replays entries above its watermark to stay consistent."""

    __tablename__ = "person_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survivor_id: Mapped[int] = mapped_column(BigInteger, index=True)
    merged_id: Mapped[int] = mapped_column(BigInteger, index=True)
    link_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("identity_links.id"), nullable=True)
    merged_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
