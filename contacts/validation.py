"""Row validation and normalisation: refuse NUL characters, trim every value, lower-case the
email, check lengths."""

import functools
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, validate_email

from .models import COMPANY_MAX_LENGTH, EMAIL_MAX_LENGTH, NAME_MAX_LENGTH, PHONE_MAX_LENGTH

LIMITS = {"name": NAME_MAX_LENGTH, "phone": PHONE_MAX_LENGTH, "company": COMPANY_MAX_LENGTH}


@dataclass(frozen=True)
class CleanRow:
    line: int
    email: str
    name: str
    phone: str
    company: str


class _FileEmailValidator(EmailValidator):
    """Django's email validator, made for thousands of addresses in a row: its user pattern
    is compiled once instead of being reached through a lazy proxy on every use, and each
    domain's verdict is remembered (a file holds many addresses on few domains)."""

    user_regex = re.compile(EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags)

    def validate_domain_part(self, domain_part: str) -> bool:
        return _valid_domain(domain_part)


@functools.lru_cache(maxsize=10_000)
def _valid_domain(domain_part: str) -> bool:
    return validate_email.validate_domain_part(domain_part)


_validate_email = _FileEmailValidator()


class InvalidRow(Exception):
    """``str()`` is the reason shown next to the row's line number."""


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _refuse_nul(**values: str) -> None:
    # PostgreSQL text cannot hold NUL: one such value would fail its whole batch.
    for field, value in values.items():
        if "\x00" in value:
            raise InvalidRow(f"{field} contains a NUL character")


def clean_row(*, line: int, email: str, name: str, phone: str, company: str) -> CleanRow:
    """The normalised row, or :class:`InvalidRow` saying what is wrong with it."""
    _refuse_nul(email=email, name=name, phone=phone, company=company)
    email = email.strip().lower()
    if not email:
        raise InvalidRow("email is missing")
    if len(email) > EMAIL_MAX_LENGTH:
        raise InvalidRow(f"email is longer than {EMAIL_MAX_LENGTH} characters")
    try:
        _validate_email(email)
    except ValidationError:
        raise InvalidRow(f"invalid email {_shown(email)}") from None
    values = {"name": name.strip(), "phone": phone.strip(), "company": company.strip()}
    for field, limit in LIMITS.items():
        if len(values[field]) > limit:
            raise InvalidRow(f"{field} is longer than {limit} characters")
    return CleanRow(line=line, email=email, **values)
