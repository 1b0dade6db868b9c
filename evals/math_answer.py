r"""MATH answers: extraction from a response and equivalence with the gold, Minerva / Hendrycks.

The rules are those of the references Tulu 3's MATH number comes from (open-instruct
``open_instruct/math_utils.py`` and ``ground_truth_utils.py::MathVerifier``; OLMES
``minerva_math``, ``exact_match_flex``; lm-eval ``tasks/minerva_math/utils.py``), re-derived here:

* :func:`last_boxed` / :func:`unbox`: the last ``\boxed{...}`` (braces balanced; ``\boxed x``
  up to the next ``$``; ``\fbox{...}`` is found but cannot be unboxed).
* :func:`minerva_final`: the text between "Final Answer: The final answer is" and the first
  following ". I hope it is correct." on one line (the reference's regex; its dots are
  wildcards). None where there is none.
* :func:`normalize_final_answer`: Lewkowycz et al. (2022), appendix D: the part after the last
  ``=``, the substitutions and removed unit words, ``$...$`` / ``\text{}`` / ``\boxed{}``
  unwrapped, ``\fracab`` and ``\sqrta`` shorthands expanded, ``$`` dropped, digit commas dropped.
* :func:`hendrycks_equiv`: Hendrycks et al. (2021) ``strip_string`` on both sides, then string
  equality; where ``strip_string`` fails (a ``/`` between non-integers, a bare trailing
  ``\frac`` or ``\sqrt``, two ``\text{ `` units) the raw strings are compared.
* :func:`sympy_equiv`: ``parse_latex`` both, ``simplify(a - b) == 0``, 5 s limit. It needs
  ``antlr4-python3-runtime`` 4.11; :data:`SYMPY_LATEX` says whether this environment has it
  (the references require it; without it only the Hendrycks rule decides, a recorded deviation).
"""

from __future__ import annotations

import re
import signal
import threading
from functools import cache

INVALID = "[invalidanswer]"  # the references' marker for "no Minerva-format answer"

# Lewkowycz et al. (2022), appendix D: applied in this order.
SUBSTITUTIONS = (
    ("an ", ""), ("a ", ""), (".$", "$"), ("\\$", ""), ("\\ ", ""), (" ", ""),
    ("mbox", "text"), (",\\text{and}", ","), ("\\text{and}", ","), ("\\text{m}", "\\text{}"),
)  # fmt: skip
REMOVED_EXPRESSIONS = (
    "square", "ways", "integers", "dollars", "mph", "inches", "ft", "hours", "km", "units",
    "\\ldots", "sue", "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm",
    "pounds", "meters", "meals", "edges", "students", "childrentickets", "multiples",
    "\\text{s}", "\\text{.}", "\\text{\ns}", "\\text{}^2", "\\text{}^3", "\\text{\n}",
    "\\text{}", "\\mathrm{th}", "^\\circ", "^{\\circ}", "\\;", ",\\!", "{,}", '"', "\\dots",
)  # fmt: skip
_FINAL = re.compile(r"Final Answer: The final answer is(.*?). I hope it is correct.")
_UNWRAP = (
    (re.compile(r"(.*?)(\$)(.*?)(\$)(.*)"), "$\\3$"),
    (re.compile(r"(\\text\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\textbf\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\overline\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\boxed\{)(.*)(\})"), "\\2"),
    (re.compile(r"(frac)([^{])(.)"), "frac{\\2}{\\3}"),
    (re.compile(r"(sqrt)([^{])"), "sqrt{\\2}"),
)


def last_boxed(text: str) -> str | None:
    r"""The last ``\boxed{...}`` (or ``\fbox{...}``) with its braces balanced; None: none."""
    if "\\boxed " in text:
        return "\\boxed " + text.split("\\boxed ")[-1].split("$")[0]
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    depth = 0
    for end in range(start, len(text)):
        if text[end] == "{":
            depth += 1
        elif text[end] == "}":
            depth -= 1
            if depth == 0:
                return text[start : end + 1]
    return None


def unbox(boxed: str) -> str | None:
    r"""The content of ``\boxed{...}`` / ``\boxed x``; None for anything else (``\fbox``)."""
    if "\\boxed " in boxed:
        return boxed[len("\\boxed ") :] if boxed.startswith("\\boxed ") else None
    if boxed.startswith("\\boxed{") and boxed.endswith("}"):
        return boxed[len("\\boxed{") : -1]
    return None


def boxed_answer(text: str) -> str | None:
    """The content of the last box of ``text`` (None: no box that can be unboxed)."""
    boxed = last_boxed(text)
    return None if boxed is None else unbox(boxed)


def minerva_final(text: str) -> str | None:
    """The answer of a "Final Answer: The final answer is X. I hope it is correct." line."""
    match = _FINAL.search(text + "I hope it is correct.")
    return match.group(1).strip() if match else None


def normalize_final_answer(answer: str) -> str:
    """Minerva's normalization of a final answer (appendix D of Lewkowycz et al., 2022)."""
    answer = answer.split("=")[-1]
    for before, after in SUBSTITUTIONS:
        answer = answer.replace(before, after)
    for expression in REMOVED_EXPRESSIONS:
        answer = answer.replace(expression, "")
    for pattern, replacement in _UNWRAP:
        answer = pattern.sub(replacement, answer)
    answer = answer.replace("$", "")
    if answer.replace(",", "").isdigit():
        answer = answer.replace(",", "")
    return answer


class _NotStrippable(ValueError):
    """``strip_string`` cannot normalize this string (the reference then compares raw text)."""


def _fix_fracs(text: str) -> str:
    r"""``\frac12`` -> ``\frac{1}{2}``, ``\frac1{72}`` -> ``\frac{1}{72}``; a ``\frac`` followed
    by one character only leaves the whole string as it was."""
    head, *tails = text.split("\\frac")
    out = [head]
    for tail in tails:
        out.append("\\frac")
        if not tail:
            raise _NotStrippable("\\frac at the end")
        if tail[0] == "{":
            out.append(tail)
        elif len(tail) < 2:
            return text
        elif tail[1] != "{":
            out.append("{" + tail[0] + "}{" + tail[1] + "}" + tail[2:])
        else:
            out.append("{" + tail[0] + "}" + tail[1:])
    return "".join(out)


def _fix_a_slash_b(text: str) -> str:
    """``a/b`` of two integers -> ``\\frac{a}{b}``; any other single ``/`` is not strippable."""
    parts = text.split("/")
    if len(parts) != 2:
        return text
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        raise _NotStrippable("a '/' between non-integers") from None
    return "\\frac{" + str(a) + "}{" + str(b) + "}" if text == f"{a}/{b}" else text


def _remove_right_units(text: str) -> str:
    if "\\text{ " not in text:
        return text
    parts = text.split("\\text{ ")
    if len(parts) != 2:
        raise _NotStrippable("more than one '\\text{ ' unit")
    return parts[0]


def _fix_sqrt(text: str) -> str:
    if "\\sqrt" not in text:
        return text
    head, *tails = text.split("\\sqrt")
    out = [head]
    for tail in tails:
        if not tail:
            raise _NotStrippable("\\sqrt at the end")
        out.append("\\sqrt" + tail if tail[0] == "{" else "\\sqrt{" + tail[0] + "}" + tail[1:])
    return "".join(out)


def strip_string(text: str) -> str:
    """Hendrycks et al.'s normalization (raises :class:`_NotStrippable` where the reference's
    ``strip_string`` raises)."""
    text = text.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    text = text.replace("tfrac", "frac").replace("dfrac", "frac")
    text = text.replace("\\left", "").replace("\\right", "")
    text = text.replace("^{\\circ}", "").replace("^\\circ", "")
    text = text.replace("\\$", "")
    text = _remove_right_units(text)
    text = text.replace("\\%", "")
    text = text.replace(" .", " 0.").replace("{.", "{0.")
    if not text:
        return text
    if text[0] == ".":
        text = "0" + text
    sides = text.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        text = sides[1]
    text = _fix_sqrt(text)
    text = text.replace(" ", "")
    text = _fix_fracs(text)
    if text == "0.5":
        text = "\\frac{1}{2}"
    return _fix_a_slash_b(text)


def hendrycks_equiv(a: str | None, b: str | None) -> bool:
    """Both strings equal after :func:`strip_string` (raw equality where it fails)."""
    if a is None or b is None:
        return a is None and b is None
    try:
        return strip_string(a) == strip_string(b)
    except _NotStrippable:
        return a == b


@cache
def _parse_latex():
    """sympy's ``parse_latex`` when it works here (antlr4 4.11), else None."""
    try:
        from sympy.parsing.latex import parse_latex

        parse_latex("1")
    except Exception:  # ImportError, or an antlr4 runtime of another version
        return None
    return parse_latex


def sympy_available() -> bool:
    """Whether sympy's LaTeX parser runs in this environment (the references require it)."""
    return _parse_latex() is not None


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def sympy_equiv(a: str, b: str, seconds: int = 5) -> bool:
    """``simplify(parse_latex(a) - parse_latex(b)) == 0`` within ``seconds`` (main thread);
    False on any parse / arithmetic failure, a timeout, or no LaTeX parser here."""
    parse = _parse_latex()
    if parse is None:
        return False
    import sympy

    timed = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, _alarm) if timed else None
    if timed:
        signal.alarm(seconds)
    try:
        return bool(sympy.simplify(parse(a) - parse(b)) == 0)
    except Exception:
        return False
    finally:
        if timed:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)


def equivalent(answer: str, gold: str) -> bool:
    """The references' test: sympy equivalence, else Hendrycks string equivalence."""
    return sympy_equiv(answer, gold) or hendrycks_equiv(answer, gold)


def flex_candidates(response: str) -> list[str]:
    """Candidate answers of a response, in the references' order: the last box's content; the
    normalized Minerva "Final Answer"; if neither, the normalized text between the last two
    ``$``; if none of these, the normalized response and the response itself."""
    found = []
    boxed = boxed_answer(response)
    if boxed is not None:
        found.append(boxed)
    final = minerva_final(response)
    if final is not None:
        normalized = normalize_final_answer(final)
        if normalized != INVALID:
            found.append(normalized)
    if not found:
        dollars = [m.start() for m in re.finditer(r"\$", response)]
        if len(dollars) > 1:
            found.append(normalize_final_answer(response[dollars[-2] + 1 : dollars[-1]]))
    if not found:
        found += [normalize_final_answer(response), response]
    return found


def flex_match(response: str, gold: str) -> bool:
    """``exact_match_flex``: any candidate of :func:`flex_candidates` is equivalent to ``gold``."""
    return any(equivalent(candidate, gold) for candidate in flex_candidates(response))


def strict_match(response: str, gold: str) -> bool:
    """``exact_match``: the normalized Minerva "Final Answer" only, equivalent to ``gold``."""
    final = minerva_final(response)
    return final is not None and equivalent(normalize_final_answer(final), gold)


def gold_of_solution(solution: str) -> str:
    """The gold answer of a MATH solution: its last box's content, normalized (lm-eval's
    ``process_docs``). A solution without a box is an error naming the fix."""
    boxed = boxed_answer(solution)
    if boxed is None:
        raise ValueError(
            f"MATH solution has no \\boxed{{...}} answer: ...{solution[-80:]!r}; give the "
            "dataset's 'solution' field (every MATH solution boxes its answer)"
        )
    return normalize_final_answer(boxed)
