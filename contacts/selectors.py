"""Contacts reads."""

from django.db.models import Q, QuerySet

from .models import Contact


def contacts_of(*, owner_id: int, search: str = "") -> QuerySet[Contact]:
    """The owner's contacts by email, narrowed to those whose fields contain ``search``."""
    contacts = Contact.objects.filter(owner_id=owner_id).order_by("email")
    search = search.strip()
    if search:
        contacts = contacts.filter(
            Q(email__icontains=search)
            | Q(name__icontains=search)
            | Q(company__icontains=search)
            | Q(phone__icontains=search)
        )
    return contacts
