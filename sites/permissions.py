"""Who may do what to a site: its owner, or a user holding Django's model permission.

Creating a site is open to every authenticated user (they become its owner); naming
someone else as the owner needs ``metasite.change_site``. The API and the admin ask these same
functions, and the services check them again for the caller they are given.
"""

from django.contrib.auth.models import AbstractBaseUser

from .models import Site


def _owns(user: AbstractBaseUser, site: Site) -> bool:
    return site.owner_id is not None and site.owner_id == user.pk


def can_change(user: AbstractBaseUser, site: Site) -> bool:
    """Rename, re-own, install or uninstall apps: the owner or ``metasite.change_site``."""
    return user.is_active and (_owns(user, site) or user.has_perm("metasite.change_site"))


def can_delete(user: AbstractBaseUser, site: Site) -> bool:
    """Delete: the owner or ``metasite.delete_site``."""
    return user.is_active and (_owns(user, site) or user.has_perm("metasite.delete_site"))


def can_name_as_owner(user: AbstractBaseUser, username: str) -> bool:
    """Name the user called ``username`` as the owner of a new site: oneself, or anyone with
    ``metasite.change_site``. Asked by name, so it can be asked before the name is looked up."""
    return username == user.get_username() or user.has_perm("metasite.change_site")


def can_see_settings(user: AbstractBaseUser, site: Site) -> bool:
    """App settings may hold secrets (API keys): only the owner and staff see them."""
    return _owns(user, site) or user.is_staff or user.has_perm("metasite.change_site")
