"""readiness.forms.quick_copy: the answer paths' forms copy their fields as Django's deepcopy
does (same classes and settings, every part a form may change its own), only faster."""

import copy

import pytest
from django import forms

from readiness.forms import quick_copy
from surveys.forms.members import AwayForm, MemberAnswerForm
from surveys.forms.reply import ReplyForm, ReplyLineForm

MUTABLE = ("widget", "error_messages", "validators", "_choices")


def comparable(field) -> dict:
    state = {k: v for k, v in vars(field).items() if k not in MUTABLE}
    widget = {k: v for k, v in vars(field.widget).items()}
    return {
        "type": type(field),
        "state": state,
        "widget": (type(field.widget), widget),
        "error_messages": field.error_messages,
        "validators": field.validators,
        "choices": getattr(field, "_choices", None),
    }


@pytest.mark.parametrize("form_class", [ReplyForm, ReplyLineForm, MemberAnswerForm, AwayForm])
def test_the_copy_is_what_djangos_deepcopy_gives(form_class):
    base = form_class.base_fields
    assert type(base).__name__ == "_QuickCopy"  # the form is decorated
    quick, django = copy.deepcopy(base), copy.deepcopy(dict(base))
    assert type(quick) is dict and list(quick) == list(base)
    for name, field in quick.items():
        assert comparable(field) == comparable(django[name]), name
        original = base[name]
        assert field is not original and field.widget is not original.widget
        for part in ("error_messages", "validators"):
            assert getattr(field, part) is not getattr(original, part)
        assert field.widget.attrs is not original.widget.attrs
        if isinstance(field, forms.ChoiceField):
            assert field._choices is not original._choices
            assert field.widget.choices is not original.widget.choices


def test_a_form_changing_its_fields_changes_no_other_form():
    class Team:
        def __init__(self, members):
            self.members, self.pk = members, members

    small = ReplyLineForm(team=Team(4), estimate=30, requirements=False)
    large = ReplyLineForm(
        {"officers": "9", "depart_minutes": "5", "travel_minutes": "5"},
        team=Team(12),
        estimate=30,
        requirements=True,
    )
    assert small.fields["officers"].widget.attrs["max"] == 4
    assert large.fields["officers"].widget.attrs["max"] == 12
    assert "officers_qualified" not in small.fields and "officers_qualified" in large.fields
    assert large.is_valid(), large.errors  # 9 of 12: the small team's limit is not its own
    assert "max" not in ReplyLineForm.base_fields["officers"].widget.attrs
    assert len(ReplyLineForm.base_fields["officers"].validators) == 1  # min_value only
    small.fields["officers"].error_messages["invalid"] = "changed"
    assert ReplyLineForm.base_fields["officers"].error_messages["invalid"] != "changed"


def test_fields_that_copy_themselves_otherwise_are_deep_copied_as_before():
    grouped = [("Near", [("a", "A"), ("b", "B")]), ("Far", [("c", "C")])]

    @quick_copy
    class Odd(forms.Form):
        when = forms.SplitDateTimeField()  # a MultiValueField (its own __deepcopy__)
        where = forms.ChoiceField(choices=grouped)

    first, second = Odd(), Odd()
    assert first.fields["when"].fields[0] is not second.fields["when"].fields[0]
    first.fields["where"].choices[0][1].append(("z", "Z"))
    assert second.fields["where"].choices[0][1] == [("a", "A"), ("b", "B")]
