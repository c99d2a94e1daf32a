"""Row validation and normalisation: trim every value, lower-case the email, check lengths."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from .models import COMPANY_MAX_LENGTH, EMAIL_MAX_LENGTH, NAME_MAX_LENGTH, PHONE_MAX_LENGTH

LIMITS = {"name": NAME_MAX_LENGTH, "phone": PHONE_MAX_LENGTH, "company": COMPANY_MAX_LENGTH}


@dataclass(frozen=True)
class CleanRow:
    line: int
    email: str
    name: str
    phone: str
    company: str


class InvalidRow(Exception):
    """``str()`` is the reason shown next to the row's line number."""


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def clean_row(*, line: int, email: str, name: str, phone: str, company: str) -> CleanRow:
    """The normalised row, or :class:`InvalidRow` saying what is wrong with it."""
    email = email.strip().lower()
    if not email:
        raise InvalidRow("email is missing")
    if len(email) > EMAIL_MAX_LENGTH:
        raise InvalidRow(f"email is longer than {EMAIL_MAX_LENGTH} characters")
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidRow(f"invalid email {_shown(email)}") from None
    values = {"name": name.strip(), "phone": phone.strip(), "company": company.strip()}
    for field, limit in LIMITS.items():
        if len(values[field]) > limit:
            raise InvalidRow(f"{field} is longer than {limit} characters")
    return CleanRow(line=line, email=email, **values)
