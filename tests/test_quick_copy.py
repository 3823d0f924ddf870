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
        if name not in base.own:
            assert field is original, name  # shared
            continue
        assert field is not original and field.widget is not original.widget
        for part in ("error_messages", "validators"):
            assert getattr(field, part) is not getattr(original, part)
        assert field.widget.attrs is not original.widget.attrs
        if isinstance(field, forms.ChoiceField):
            assert field._choices is not original._choices
            assert field.widget.choices is not original.widget.choices


def test_only_the_fields_a_form_changes_are_its_own():
    assert ReplyLineForm.base_fields.own == {"officers"}
    assert ReplyForm.base_fields.own == MemberAnswerForm.base_fields.own == frozenset()
    with pytest.raises(ValueError, match="officer"):
        quick_copy(own=("officer",))(
            type("Typo", (forms.Form,), {"officers": forms.IntegerField()})
        )


def snapshot(fields) -> dict:
    """Everything of each field that a form could change, copied to compare later."""
    return {name: copy.deepcopy(comparable(field)) for name, field in fields.items()}


class Team:
    def __init__(self, members):
        self.members, self.pk = members, members


def use(form) -> None:
    """What a request does with a form: clean it, render it whole and field by field, list
    its errors."""
    form.is_valid()
    str(form)
    for bound in form:
        str(bound), bound.errors, bound.label_tag(), bound.value(), bound.help_text
        for widget in getattr(bound, "subwidgets", []):
            str(widget)
    form.errors.as_data(), form.non_field_errors()


def test_shared_fields_stay_as_the_class_built_them_whatever_the_forms_do():
    """The fields the forms share are never changed, by Django or by the forms: cleaned with
    good and bad data, rendered, with errors shown (a change here would leak from one
    agency's or member's form into every other's)."""
    before = {cls: snapshot(cls.base_fields) for cls in (ReplyForm, ReplyLineForm,
                                                         MemberAnswerForm, AwayForm)}  # fmt: skip
    bad = {"version": "-1", "decision": "nonsense", "authorised_by_name": "x" * 500,
           "conditions": ["nope"], "note": "y" * 3000}  # fmt: skip
    good = {"version": "0", "decision": "available", "authorised_by_name": "A",
            "authorised_by_rank": "Chief"}  # fmt: skip
    for data in (None, bad, good):
        use(ReplyForm(data, initial={"version": 0}))
    for data in (None, {"officers": "99", "vehicles": "-1", "deploy_hours": "0"},
                 {"officers": "3", "depart_minutes": "5", "travel_minutes": "20"}):  # fmt: skip
        use(ReplyLineForm(data, team=Team(4), estimate=30, requirements=True))
        use(ReplyLineForm(data, team=Team(12), estimate=30, requirements=False))
    for data in (None, {"answer": "bogus", "depart_other": "-5", "start": "x"},
                 {"answer": "willing", "depart": "15"}):  # fmt: skip
        use(MemberAnswerForm(data))
    for data in (None, {"away_until": "1999-01-01", "away_reason": "bogus"}, {}):
        use(AwayForm(data))
    after = {cls: snapshot(cls.base_fields) for cls in before}
    assert after == before


def test_a_form_changing_its_fields_changes_no_other_form():
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
