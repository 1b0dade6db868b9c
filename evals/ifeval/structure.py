"""IFEval instructions on form: detectable content and format, combination, start/end,
punctuation (registered on import)."""

from __future__ import annotations

import json
import re

from evals.ifeval.checker import Checker, register

# --- detectable content and format -------------------------------------------------------------


@register
class NumberPlaceholders(Checker):
    """At least ``num_placeholders`` square-bracket placeholders such as ``[address]``."""

    instruction_id = "detectable_content:number_placeholders"

    def __init__(self, num_placeholders: int) -> None:
        self.num = num_placeholders

    def check(self, response: str) -> bool:
        return len(re.findall(r"\[.*?\]", response)) >= self.num


@register
class Postscript(Checker):
    """A line starting with the postscript marker (``P.S.``, ``P.P.S`` or any other text)."""

    instruction_id = "detectable_content:postscript"

    def __init__(self, postscript_marker: str) -> None:
        self.marker = postscript_marker
        marker = postscript_marker.lower()
        if marker == "p.p.s":
            self.pattern = r"\s*p\.\s?p\.\s?s.*$"
        elif marker == "p.s.":
            self.pattern = r"\s*p\.\s?s\..*$"
        else:
            self.pattern = r"\s*" + re.escape(marker) + r".*$"

    def check(self, response: str) -> bool:
        return bool(re.findall(self.pattern, response.lower(), flags=re.MULTILINE))


@register
class NumberBulletLists(Checker):
    """Exactly ``num_bullets`` markdown bullet lines (``* item`` or ``- item``)."""

    instruction_id = "detectable_format:number_bullet_lists"

    def __init__(self, num_bullets: int) -> None:
        self.num = num_bullets

    def check(self, response: str) -> bool:
        stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
        dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
        return len(stars) + len(dashes) == self.num


@register
class ConstrainedResponse(Checker):
    """The response contains one of the fixed answers ("My answer is yes." / no. / maybe.)."""

    instruction_id = "detectable_format:constrained_response"
    OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")

    def check(self, response: str) -> bool:
        stripped = response.strip()
        return any(option in stripped for option in self.OPTIONS)


@register
class NumberHighlightedSections(Checker):
    """At least ``num_highlights`` non-empty ``*highlighted*`` (or ``**bold**``) spans."""

    instruction_id = "detectable_format:number_highlighted_sections"

    def __init__(self, num_highlights: int) -> None:
        self.num = num_highlights

    def check(self, response: str) -> bool:
        single = re.findall(r"\*[^\n\*]*\*", response)
        double = re.findall(r"\*\*[^\n\*]*\*\*", response)
        count = sum(1 for h in single if h.strip("*").strip())
        count += sum(1 for h in double if h.removeprefix("**").removesuffix("**").strip())
        return count >= self.num


@register
class MultipleSections(Checker):
    """At least ``num_sections`` sections, each opened by ``<section_spliter> <number>``."""

    instruction_id = "detectable_format:multiple_sections"

    def __init__(self, section_spliter: str, num_sections: int) -> None:
        self.splitter, self.num = section_spliter.strip(), num_sections

    def check(self, response: str) -> bool:
        pieces = re.split(r"\s?" + re.escape(self.splitter) + r"\s?\d+\s?", response)
        return len(pieces) - 1 >= self.num


@register
class JsonFormat(Checker):
    """The whole response parses as JSON (an enclosing markdown code fence is allowed)."""

    instruction_id = "detectable_format:json_format"

    def check(self, response: str) -> bool:
        body = response.strip()
        for fence in ("```json", "```Json", "```JSON", "```"):
            body = body.removeprefix(fence)
        body = body.removesuffix("```").strip()
        try:
            json.loads(body)
        except ValueError:
            return False
        return True


@register
class Title(Checker):
    """A non-empty title in double angular brackets, ``<<title>>``, on one line."""

    instruction_id = "detectable_format:title"

    def check(self, response: str) -> bool:
        titles = re.findall(r"<<[^\n]+>>", response)
        return any(t.lstrip("<").rstrip(">").strip() for t in titles)


# --- combination, start/end, punctuation ---------------------------------------------------------


@register
class TwoResponses(Checker):
    """Two different non-empty responses separated by ``******``."""

    instruction_id = "combination:two_responses"

    def check(self, response: str) -> bool:
        pieces = response.split("******")
        kept = []
        for index, piece in enumerate(pieces):
            if not piece.strip():
                if index not in (0, len(pieces) - 1):
                    return False
            else:
                kept.append(piece)
        return len(kept) == 2 and kept[0].strip() != kept[1].strip()


@register
class RepeatPrompt(Checker):
    """The response starts with the request, repeated word for word (case-insensitive)."""

    instruction_id = "combination:repeat_prompt"

    def __init__(self, prompt_to_repeat: str) -> None:
        self.prompt = prompt_to_repeat

    def check(self, response: str) -> bool:
        return response.strip().lower().startswith(self.prompt.strip().lower())


@register
class EndChecker(Checker):
    """The response ends with ``end_phrase`` (case-insensitive; enclosing quotes ignored)."""

    instruction_id = "startend:end_checker"

    def __init__(self, end_phrase: str) -> None:
        self.end_phrase = end_phrase

    def check(self, response: str) -> bool:
        return response.strip().strip('"').lower().endswith(self.end_phrase.strip().lower())


@register
class Quotation(Checker):
    """The whole response is wrapped in double quotes."""

    instruction_id = "startend:quotation"

    def check(self, response: str) -> bool:
        stripped = response.strip()
        return len(stripped) > 1 and stripped[0] == '"' and stripped[-1] == '"'


@register
class NoComma(Checker):
    """No comma anywhere in the response."""

    instruction_id = "punctuation:no_comma"

    def check(self, response: str) -> bool:
        return "," not in response
