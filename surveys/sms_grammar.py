"""The short, forgiving grammar of an answer typed with a thumb, by text or in an email reply.

    4821 Y 12 45              yes: 12 officers, can leave in 45 minutes
    4821 N all committed      no, with the reason
    4821 C 12 45 duress only  yes with conditions (the rest of the text)
    4821 Y A 8 30 B 4 45      per team, by the team letters the invitation listed
    Y12 45 · yes 12 45 · no - all committed · we can send 8 in an hour

The reply code may be left out when the sender has one open invitation. `parse` returns a
Parsed answer or a ParseError whose message says exactly what was not understood and how to
write it; it never guesses a number it did not see.
"""

import re
from dataclasses import dataclass, field

YES = {"y", "yes", "yeah", "yep", "ok", "okay", "can", "available", "avail", "affirmative"}
NO = {"n", "no", "nope", "cannot", "cant", "can't", "unable", "unavailable", "decline", "negative"}
CONDITIONAL = {"c", "cond", "conditional", "conditions", "condition", "maybe", "if"}
COMMANDS = {"help": "help", "info": "help", "?": "help", "stop": "stop", "unsubscribe": "stop",
            "cancel": "stop", "end": "stop", "quit": "stop", "start": "start", "unstop": "start",
            "yes-start": "start", "ask": "ask", "members": "ask"}  # fmt: skip
FILLER = {"we", "i", "can", "could", "send", "sending", "will", "would", "officers", "officer",
          "men", "people", "of", "them", "us", "and", "leave", "leaving", "depart", "ready",
          "go", "be", "there", "about", "around", "approx", "approximately", "~"}  # fmt: skip
WORD_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15,
                "twenty": 20, "thirty": 30, "forty": 40, "forty-five": 45, "half": 0.5}  # fmt: skip
CODE = re.compile(r"^\d{4}$")
LEADING_WORD = re.compile(r"^\s*(?:\d{4}[\s,:]*)?[A-Za-z'\u2019]+[\s\-:,.!\u2014]*")
TEAM_LETTER = re.compile(r"^[a-h]$", re.IGNORECASE)
DURATION = re.compile(
    r"\bin\s+(?:(?P<n>\d{1,5}(?:\.\d{1,3})?|an?|one|two|three|half an?)\s*"
    r"(?P<unit>hours?|hrs?|h|minutes?|mins?|m)\b|(?P<half>half an hour))",
    re.IGNORECASE,
)


@dataclass
class TeamLine:
    officers: int
    depart_minutes: int | None
    team: str = ""  # the team's letter, "" for the agency's one team


@dataclass
class Parsed:
    code: str = ""
    command: str = ""  # "help", "stop", "start" or "ask" (a commander asks their members)
    decision: str = ""  # "available", "conditional" or "unavailable"
    lines: list[TeamLine] = field(default_factory=list)
    text: str = ""  # the reason (no) or the conditions (with conditions)


class ParseError(Exception):
    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code


def _tokens(text: str) -> list[str]:
    text = text.replace("\u2019", "'")
    # "Y12" -> "Y 12", "12,45" -> "12 45"; a dash or colon after a word is punctuation.
    text = re.sub(r"(?i)\b([ync])(\d)", r"\1 \2", text)
    text = re.sub(r"[,;:]+", " ", text)
    return [t for t in re.split(r"\s+", text.strip()) if t and t not in {"-", "--", "—"}]


def _minutes_phrase(text: str) -> tuple[int | None, str]:
    """'in an hour' / 'in 45 min' / 'in 1.5 hours' -> minutes, and the text without it."""
    match = DURATION.search(text)
    if not match:
        return None, text
    if match["half"]:
        minutes = 30
    else:
        raw = match["n"].lower()
        amount = WORD_NUMBERS.get(raw.split()[0]) if not raw[0].isdigit() else float(raw)
        if raw.startswith("half"):
            amount = 0.5
        unit = match["unit"].lower()
        minutes = amount * 60 if unit.startswith("h") else amount
    return round(minutes), (text[: match.start()] + text[match.end() :]).strip()


def _number(token: str) -> int | None:
    token = token.lower().strip(".")
    if token.isdigit():
        return int(token)
    value = WORD_NUMBERS.get(token)
    return int(value) if isinstance(value, int) and token not in ("a", "an") else None


def parse(text: str) -> Parsed:
    raw = (text or "").strip()
    if not raw:
        raise ParseError("The text was empty.")
    words = _tokens(raw)
    code = ""
    if words and CODE.match(words[0]):
        code, words = words[0], words[1:]
    if not words:
        raise ParseError("Only a code: say Y, N or C after it.", code)
    first = words[0].lower().strip(".!")
    if first in COMMANDS and len(words) == 1:
        return Parsed(code=code, command=COMMANDS[first])
    if first in NO or (first == "not" and len(words) > 1):
        # The reason is the text after the code and the first word, as it was typed.
        reason = LEADING_WORD.sub("", raw, count=1).strip(" -:,.!\u2014") if len(words) > 1 else ""
        if not reason:
            raise ParseError("Say why after N, e.g. N all officers committed.", code)
        return Parsed(code=code, decision="unavailable", text=reason[:2000])
    if first in CONDITIONAL or (first in YES and len(words) > 1 and words[1].lower() == "but"):
        return _yes(words[1:] if first in CONDITIONAL else words[2:], code, conditional=True)
    if first in YES or first in FILLER or _number(first) is not None:
        rest = words[1:] if first in YES else words
        return _yes(rest, code, conditional=False, sentence=" ".join(rest))
    raise ParseError("Start the answer with Y (yes), N (no) or C (yes, with conditions).", code)


def _yes(words: list[str], code: str, *, conditional: bool, sentence: str = "") -> Parsed:
    minutes, sentence = _minutes_phrase(sentence) if sentence else (None, "")
    if sentence:
        words = [w for w in sentence.split() if w.lower() not in FILLER]
    lines, i = [], 0
    while i < len(words):
        team = ""
        if TEAM_LETTER.match(words[i]) and i + 1 < len(words) and _number(words[i + 1]) is not None:
            team, i = words[i].upper(), i + 1
        officers = _number(words[i])
        if officers is None:
            break
        i += 1
        depart = None
        if i < len(words) and _number(words[i]) is not None:
            depart, i = _number(words[i]), i + 1
        lines.append(TeamLine(officers, depart if depart is not None else minutes, team))
        if not team:
            break  # one line for the agency's team: what follows is conditions text
    rest = " ".join(words[i:]).strip()
    example = "C 12 45 duress only" if conditional else "Y 12 45"
    if not lines:
        raise ParseError(f"Give the number of officers, then minutes until they can leave, e.g. "
                         f"{example}.", code)  # fmt: skip
    missing = [line for line in lines if line.depart_minutes is None]
    if missing:
        raise ParseError(
            f"How soon can the {missing[0].officers} officers leave? Add the minutes, e.g. "
            f"{'C' if conditional else 'Y'} {missing[0].officers} 45.",
            code,
        )
    if conditional and not rest:
        raise ParseError("Say the conditions after the numbers, e.g. C 12 45 duress only.", code)
    if rest and not conditional:
        raise ParseError(
            f"Not understood: “{rest[:40]}”. Yes is Y <officers> <minutes>; for conditions "
            "use C <officers> <minutes> <conditions>.",
            code,
        )
    return Parsed(
        code=code,
        decision="conditional" if conditional else "available",
        lines=lines,
        text=rest[:2000],
    )


@dataclass
class MemberParsed:
    """A team member's own answer: `answer` is "willing", "conditional" or "not_willing"."""

    code: str = ""
    answer: str = ""
    depart_minutes: int | None = None
    note: str = ""


MINUTES_SUFFIX = re.compile(r"^(\d{1,5})\s*(m|min|mins|minutes?|h|hr|hrs|hours?)?$", re.IGNORECASE)


def leading_code(text: str) -> str:
    """The reply code a text starts with, or ""."""
    words = _tokens(text or "")
    return words[0] if words and CODE.match(words[0]) else ""


def parse_command_free(text: str) -> list[str] | None:
    """The words of a text, or None when it is only a command (HELP, STOP, START)."""
    words = _tokens(text or "")
    rest = words[1:] if words and CODE.match(words[0]) else words
    if len(rest) == 1 and rest[0].lower().strip(".!") in COMMANDS:
        return None
    return words


def parse_member(text: str) -> MemberParsed:
    """A member's answer by text, as short as the agency's:

    4821 Y 30                 yes, I can leave in 30 minutes
    4821 Y in an hour         the same words as the agency's answers
    4821 C 45 not overnight   yes with conditions (the rest of the text)
    4821 N                    no (a reason is welcome, not required)
    """
    raw = (text or "").strip()
    words = _tokens(raw)
    code = words.pop(0) if words and CODE.match(words[0]) else ""
    if not words:
        raise ParseError("Say Y (yes), N (no) or C (yes, with conditions) after the code.", code)
    first = words[0].lower().strip(".!")
    if first in NO or first == "not":
        note = LEADING_WORD.sub("", raw, count=1).strip(" -:,.!\u2014") if len(words) > 1 else ""
        return MemberParsed(code=code, answer="not_willing", note=note[:500])
    conditional = first in CONDITIONAL
    if not conditional and first not in YES:
        raise ParseError("Start with Y (yes), N (no) or C (yes, with conditions).", code)
    rest = " ".join(words[1:])
    minutes, rest = _minutes_phrase(rest)
    rest_words = rest.split()
    if minutes is None and rest_words and (match := MINUTES_SUFFIX.match(rest_words[0])):
        amount = int(match[1])
        hours = (match[2] or "").lower().startswith("h")
        minutes, rest_words = amount * 60 if hours else amount, rest_words[1:]
        if rest_words and rest_words[0].lower() in {"min", "mins", "minutes", "m"}:
            rest_words = rest_words[1:]
    letter = "C" if conditional else "Y"
    if minutes is None:
        raise ParseError(f"How soon could you leave? Add the minutes, e.g. {letter} 30.", code)
    note = " ".join(rest_words).strip(" -:,.!\u2014")
    if conditional and not note:
        raise ParseError("Say your conditions after the minutes, e.g. C 45 not overnight.", code)
    return MemberParsed(
        code=code, answer="conditional" if conditional else "willing", depart_minutes=minutes,
        note=note[:500],
    )  # fmt: skip
