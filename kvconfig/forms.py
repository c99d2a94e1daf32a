"""The admin's add/edit form, built from a namespace's declared fields."""

from typing import Any

from django import forms

from .schema import KVValidationError, Namespace


def _form_field(spec) -> forms.Field:
    label = spec.label or spec.name.replace("_", " ").capitalize()
    if spec.kind == "zone_list":
        return forms.CharField(
            label=label,
            widget=forms.Textarea(attrs={"rows": 4, "cols": 40}),
            help_text="One IANA time zone per line, e.g. Africa/Juba.",
        )
    if spec.kind == "zone":
        return forms.CharField(label=label, help_text="An IANA time zone, e.g. Africa/Juba.")
    return forms.CharField(label=label, help_text=f"At most {spec.max_length} characters.")


def initial_from_value(namespace: Namespace, key: str, value: Any) -> dict:
    """Form initial data for an existing entry."""
    initial = {"key": key}
    for spec in namespace.fields:
        raw = value.get(spec.name)
        initial[spec.name] = "\n".join(raw) if spec.kind == "zone_list" else raw
    return initial


class EntryForm(forms.Form):
    """Key plus one field per value field; validation is the namespace's own.

    After ``is_valid()``, ``cleaned_key`` and ``cleaned_value`` hold what to write.
    """

    key = forms.CharField(label="Key", strip=True, required=False)

    def __init__(self, *args, namespace: Namespace, key: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.namespace = namespace
        self.fields["key"].help_text = namespace.key_rule.description
        if key is not None:
            # Editing: the key is fixed by the URL, not by what the browser sends.
            self.fields["key"].disabled = True
            self.initial.setdefault("key", key)
        for spec in namespace.fields:
            self.fields[spec.name] = _form_field(spec)

    def clean(self):
        data = super().clean()
        try:
            self.cleaned_key = self.namespace.validate_key(data.get("key") or "")
        except KVValidationError as error:
            self.add_error("key", error.message)
        names = [spec.name for spec in self.namespace.fields]
        if any(name not in data for name in names):
            return data  # a field already has its own error (e.g. required)
        value = {}
        for spec in self.namespace.fields:
            raw = data[spec.name]
            value[spec.name] = (
                [line.strip() for line in raw.splitlines() if line.strip()]
                if spec.kind == "zone_list"
                else raw
            )
        try:
            self.cleaned_value = self.namespace.validate_value(value)
        except KVValidationError as error:
            self.add_error(error.field if error.field in names else None, error.message)
        return data
