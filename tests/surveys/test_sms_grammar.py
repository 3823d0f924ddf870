"""The answer grammar, table-driven: what people type with a thumb, and the errors they get."""

import pytest

from surveys.sms_grammar import ParseError, TeamLine, parse

OK = [
    # (text, code, decision, [(team, officers, minutes)], text)
    ("4821 Y 12 45", "4821", "available", [("", 12, 45)], ""),
    ("4821 y 12 45", "4821", "available", [("", 12, 45)], ""),
    ("Y12 45", "", "available", [("", 12, 45)], ""),
    ("yes 12 45", "", "available", [("", 12, 45)], ""),
    ("4821, Y, 12, 45", "4821", "available", [("", 12, 45)], ""),
    ("we can send 8 in an hour", "", "available", [("", 8, 60)], ""),
    ("We could send 8 officers in 45 min", "", "available", [("", 8, 45)], ""),
    ("yes 6 in 1.5 hours", "", "available", [("", 6, 90)], ""),
    ("yes 10 in half an hour", "", "available", [("", 10, 30)], ""),
    ("4821 N all officers committed", "4821", "unavailable", [], "all officers committed"),
    ("no - all committed", "", "unavailable", [], "all committed"),
    ("4821 n: parade duty", "4821", "unavailable", [], "parade duty"),
    ("Can't, short staffed tonight", "", "unavailable", [], "short staffed tonight"),
    ("4821 C 12 45 duress only", "4821", "conditional", [("", 12, 45)], "duress only"),
    ("c 4 20 only under our own command", "", "conditional", [("", 4, 20)],
     "only under our own command"),
    ("4821 Y A 8 30 B 4 45", "4821", "available", [("A", 8, 30), ("B", 4, 45)], ""),
    ("4821 C a 8 30 b 4 45 vaccinated only", "4821", "conditional",
     [("A", 8, 30), ("B", 4, 45)], "vaccinated only"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "code", "decision", "lines", "rest"), OK)
def test_answers_people_send(text, code, decision, lines, rest):
    parsed = parse(text)
    assert (parsed.code, parsed.decision, parsed.text) == (code, decision, rest)
    assert parsed.lines == [TeamLine(o, m, t) for t, o, m in lines]


@pytest.mark.parametrize(
    ("text", "command"),
    [("HELP", "help"), ("help", "help"), ("STOP", "stop"), ("Unsubscribe", "stop"),
     ("START", "start"), ("4821 help", "help")],
)  # fmt: skip
def test_carrier_commands(text, command):
    assert parse(text).command == command


ERRORS = [
    ("", "The text was empty"),
    ("   ", "The text was empty"),
    ("4821", "Only a code"),
    ("hello there", "Start the answer with Y (yes), N (no) or C"),
    ("yes 12", "How soon can the 12 officers leave? Add the minutes, e.g. Y 12 45"),
    ("4821 Y", "Give the number of officers"),
    ("4821 N", "Say why after N"),
    ("4821 C 12 45", "Say the conditions"),
    ("4821 Y 12 45 thanks chief", "Not understood: “thanks chief”"),
    ("4821 Y A 8 30 B 4", "How soon can the 4 officers leave?"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_what_is_not_understood_is_said(text, message):
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert message in str(caught.value)


def test_the_code_is_kept_on_errors_to_answer_the_right_invitation():
    with pytest.raises(ParseError) as caught:
        parse("4821 Y 12")
    assert caught.value.code == "4821"


@pytest.mark.parametrize("text", [
    "4821 Y in " + "9" * 310 + " hours", "Y 12 in " + "9" * 320 + " minutes", "4821 Y " + "9" * 400,
])  # fmt: skip
def test_absurd_numbers_are_not_understood_rather_than_a_crash(text):
    import contextlib

    from surveys.sms_grammar import parse_member

    for parser in (parse, parse_member):  # an OverflowError here was a 500 to the provider
        with contextlib.suppress(ParseError):  # a clear "not understood" is the answer
            parser(text)
