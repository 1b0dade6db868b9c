"""Quality filters: datatrove's Gopher quality and repetition, C4 and FineWeb blocks, as-is.

A recipe names the filters and their constructor options (``build_filters``); each document
goes through them in the order given (``apply_filters``) and is kept, or dropped with the
first failing filter's name and datatrove's reason. C4 also removes lines, so the text that
comes out may differ from the text that went in. The rules are datatrove's; only the English
word tokenizer is replaced by an offline one (``stages.curate.wordtok``). Nothing is random
(C4's only random block, the bad-words sampler, is not used). datatrove is imported lazily.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FILTERS = ("gopher_quality", "gopher_repetition", "c4", "fineweb")  # recipe names

_CLASSES = {
    "gopher_quality": ("gopher_quality_filter", "GopherQualityFilter"),
    "gopher_repetition": ("gopher_repetition_filter", "GopherRepetitionFilter"),
    "c4": ("c4_filters", "C4QualityFilter"),
    "fineweb": ("fineweb_quality_filter", "FineWebQualityFilter"),
}
_NOT_OPTIONS = ("self", "exclusion_writer", "language")  # set here, not by the recipe


@dataclass(frozen=True)
class DocFilter:
    """One configured filter: its recipe name and the datatrove block."""

    name: str
    block: Any  # datatrove.pipeline.filters.base_filter.BaseFilter


def _filter_class(name: str) -> type:
    import importlib

    module, cls = _CLASSES[name]
    return getattr(importlib.import_module(f"datatrove.pipeline.filters.{module}"), cls)


def filter_options(name: str) -> tuple[str, ...]:
    """The constructor options a recipe may set for filter ``name``."""
    params = inspect.signature(_filter_class(name).__init__).parameters
    return tuple(p for p in params if p not in _NOT_OPTIONS)


def _tuples(value: Any) -> Any:
    """YAML lists -> tuples (datatrove uses ``str.endswith(stop_chars)``, tuples of pairs)."""
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


def build_filters(
    spec: Mapping[str, Mapping | bool], where: str = "curate.filters"
) -> list[DocFilter]:
    """``{name: constructor kwargs | True | False}`` -> the enabled filters, in ``spec`` order.

    ``True`` (or ``{}``) uses datatrove's defaults, ``False`` leaves the filter out. An unknown
    filter or option raises ValueError naming ``where.name[.option]`` and what is allowed.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: expected a mapping of filter names, got {type(spec).__name__}")
    from stages.curate.wordtok import english

    built = []
    for name, kwargs in spec.items():
        if name not in FILTERS:
            raise ValueError(f"{where}.{name}: unknown filter; allowed: {', '.join(FILTERS)}")
        if kwargs is False:
            continue
        if kwargs is True or kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, Mapping):
            raise ValueError(f"{where}.{name}: expected true, false or a mapping of options")
        allowed = filter_options(name)
        for key in kwargs:
            if key not in allowed:
                raise ValueError(
                    f"{where}.{name}.{key}: unknown option; allowed: {', '.join(allowed)}"
                )
        options = {key: _tuples(value) for key, value in kwargs.items()}
        try:
            block = _filter_class(name)(language=english(), **options)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}.{name}: {error}") from error
        built.append(DocFilter(name, block))
    return built


def apply_filters(filters: list[DocFilter], text: str) -> tuple[str, str | None]:
    """Run ``text`` through ``filters`` in order -> (text, None) if kept (C4 may have removed
    lines) or (text, "<filter name>:<datatrove reason>") from the first filter that drops it."""
    from datatrove.data import Document
    from datatrove.pipeline.filters.base_filter import get_filter_result

    doc = Document(text=text, id="")
    for f in filters:
        try:
            keep, reason = get_filter_result(f.block.filter(doc))
        except ZeroDivisionError:  # datatrove divides by the word count: a text with no words
            keep, reason = False, "no_words"
        if not keep:
            return doc.text, f"{f.name}:{reason or 'dropped'}"
    return doc.text, None
