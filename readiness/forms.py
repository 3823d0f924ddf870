"""Forms shared across the apps: the audit trail's filter, and quick_copy for the forms of the
answer paths."""

import copy

from django import forms
from django.forms.widgets import ChoiceWidget
from django.utils.functional import Promise


def quick_copy(form_class=None, *, own: tuple[str, ...] | None = None):
    """Class decorator: each form of `form_class` gets its fields copied as Django copies them
    (Field.__deepcopy__: the field, its widget and the widget's attrs and choices, its
    error messages, validators and choices, each a copy that the form may change), without
    going through copy.deepcopy's general machinery: 58 µs -> 28 µs for a member's form of six
    fields, on every answer a member or commander sends. A field or widget of a class that
    copies itself otherwise (its own __deepcopy__) is deep-copied as before. A subclass of
    the form gets Django's copy again unless decorated too.

    With `own`, only the fields named there are copied (those the form's __init__ changes, a
    team's limit on its officers, say); every other field is shared by all the form's
    instances, in every thread, as the class holds it: neither Django (cleaning, rendering,
    errors) nor these forms change a field they did not copy, which
    tests/test_quick_copy.py checks field by field. A commander's answer builds a form and a
    form per team, 17 fields: copying them was 5% of the answer's CPU."""

    def decorate(form_class):
        form_class.base_fields = _QuickCopy(form_class.base_fields, own)
        return form_class

    return decorate(form_class) if form_class is not None else decorate


class _QuickCopy(dict):
    def __init__(self, fields, own):
        super().__init__(fields)
        unknown = set(own or ()) - set(fields)
        if unknown:
            raise ValueError(f"no such fields to copy: {sorted(unknown)}")
        self.own = None if own is None else frozenset(own)

    def __deepcopy__(self, memo):
        own = self.own
        return {
            name: field if own is not None and name not in own else _field_copy(field, memo)
            for name, field in self.items()
        }


_FIELD_COPIES = (forms.Field.__deepcopy__, forms.ChoiceField.__deepcopy__)
_WIDGET_COPIES = (forms.Widget.__deepcopy__, ChoiceWidget.__deepcopy__)


def _field_copy(field, memo):
    kind, widget = type(field), field.widget
    own = kind.__deepcopy__
    if own not in _FIELD_COPIES or type(widget).__deepcopy__ not in _WIDGET_COPIES:
        return copy.deepcopy(field, memo)
    new = _shallow(field)
    new.widget = _shallow(widget)
    new.widget.attrs = widget.attrs.copy()
    if type(widget).__deepcopy__ is ChoiceWidget.__deepcopy__:
        new.widget.choices = copy.copy(widget.choices)
    new.error_messages = field.error_messages.copy()
    new.validators = field.validators[:]
    if own is forms.ChoiceField.__deepcopy__:
        new._choices = _choices_copy(field._choices, memo)
    memo[id(field)] = new
    return new


def _choices_copy(choices, memo):
    """copy.deepcopy(choices): a new list of the same (value, label) pairs when every pair
    holds only values that deepcopy gives back as they are (strings, numbers, lazy labels);
    deepcopy itself for anything else (groups of choices, say)."""
    if type(choices) is list and all(
        type(choice) is tuple and all(isinstance(part, _KEPT) for part in choice)
        for choice in choices
    ):
        return list(choices)
    return copy.deepcopy(choices, memo)


_KEPT = (str, int, float, type(None), Promise)  # bool is an int


def _shallow(obj):
    """copy.copy(obj) for an object that keeps its state in its __dict__."""
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


class AuditFilterForm(forms.Form):
    action = forms.CharField(
        required=False, max_length=64, help_text="e.g. auth, agency.update, user"
    )
    actor = forms.CharField(required=False, max_length=254, label="Who (email)")
    target = forms.CharField(required=False, max_length=100, label="Object")
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
