"""The conversation files (``tests/conversations/*.yaml``) as pydantic models: customer turns with
what each must answer, and the database effects the whole conversation must have. Loading
refuses a malformed file with its name (:class:`ConversationFormatError`). Run and scored by
evals/conversations.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

TABLES = ("transfers", "payment_details", "top_ups", "payees", "disputes", "handoff_tickets", "cards", "accounts",
          "card_transactions", "direct_debits")
"""The tables whose row counts a conversation checks (whole database: each conversation runs on
a freshly seeded bank)."""

CUSTOMERS = ("alice", "bob", "carol", "dave")


class ConversationFormatError(ValueError):
    """A conversation file that cannot be read or does not follow the format (the message names the file)."""


class Expect(BaseModel):
    """What one reply must show; every field optional (None / empty: not checked)."""

    model_config = ConfigDict(extra="forbid")
    status: str | None = None
    intent: str | None = None
    slots: dict[str, str] = Field(default_factory=dict)
    answer_contains: list[str] = Field(default_factory=list)
    answer_not_contains: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _text_slots(cls, v: Any) -> Any:
        if isinstance(v, dict) and isinstance(v.get("slots"), dict):
            v = {**v, "slots": {str(k): str(x) for k, x in v["slots"].items()}}
        return v


class Turn(BaseModel):
    """One customer turn: ``say`` (a message) or ``button`` (yes | no on the pending confirmation)."""

    model_config = ConfigDict(extra="forbid")
    say: str | None = None
    button: Literal["yes", "no"] | None = None
    expect: Expect = Field(default_factory=Expect)

    @model_validator(mode="before")
    @classmethod
    def _yaml_booleans(cls, v: Any) -> Any:  # YAML 1.1 reads a bare yes/no as a boolean
        if isinstance(v, dict) and isinstance(v.get("button"), bool):
            v = {**v, "button": "yes" if v["button"] else "no"}
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> Turn:
        if (self.say is None) == (self.button is None):
            raise ValueError("a turn has exactly one of 'say' and 'button'")
        return self


class TableEffect(BaseModel):
    """Rows added to one table: ``added`` (count) and ``rows`` (expected column values of some of them)."""

    model_config = ConfigDict(extra="forbid")
    added: int = 0
    rows: list[dict[str, str]] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _count_only(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return {"added": v}
        if isinstance(v, dict) and isinstance(v.get("rows"), list):
            v = {**v, "rows": [{str(k): str(x) for k, x in r.items()} for r in v["rows"] if isinstance(r, dict)]}
        return v


class Conversation(BaseModel):
    """One conversation file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    customer: Literal["alice", "bob", "carol", "dave"]
    description: str = ""
    turns: list[Turn] = Field(min_length=1)
    effects: dict[str, Any] = Field(default_factory=dict)
    file: str = ""

    @model_validator(mode="after")
    def _known_effects(self) -> Conversation:
        for key, value in self.effects.items():
            if key in TABLES:
                self.effects[key] = TableEffect.model_validate(value)
            elif key in ("balances", "card_statuses", "transfer_statuses"):
                if not isinstance(value, dict):
                    raise ValueError(f"effect {key!r} must be a mapping")
                self.effects[key] = {str(k): str(v) for k, v in value.items()}
            else:
                raise ValueError(f"unknown effect {key!r} (known: {', '.join([*TABLES, 'balances', 'card_statuses', 'transfer_statuses'])})")
        return self


def load_conversation(path: Path) -> Conversation:
    """Read one YAML file. Raises :class:`ConversationFormatError` (naming the file) when it
    cannot be read or does not follow the format."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ConversationFormatError(f"{path.name}: not a YAML mapping")
        return Conversation.model_validate({**raw, "file": path.name})
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConversationFormatError(f"{path.name}: cannot read: {e}") from e
    except ValidationError as e:
        raise ConversationFormatError(f"{path.name}: {e}") from e


def load_conversations(folder: Path) -> list[Conversation]:
    """Every ``*.yaml`` / ``*.yml`` file of ``folder``, sorted by file name. Raises
    :class:`ConversationFormatError` for a missing or empty folder or a bad file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConversationFormatError(f"{folder} is not a folder")
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        raise ConversationFormatError(f"{folder} has no .yaml conversation files")
    return [load_conversation(p) for p in files]


# ----------------------------------------------------------------------------- the database
