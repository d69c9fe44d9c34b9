"""A rendered page lets go of its variables at once, not at the garbage collector's next pass."""

from __future__ import annotations

import gc
import weakref

import jinja2
import pytest

from rdn.core import i18n
from rdn.core.web import templates

SOURCE = ('{% from "layout/macros.html" import pagination, empty with context %}'
          '{{ empty(_("No pathways match"), "") }}<p>{{ rows[0].name }}</p>')


class Row:
    def __init__(self, name: str) -> None:
        self.name = name


@pytest.fixture
def no_collector():
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _render(template_class: type[jinja2.Template]) -> tuple[str, weakref.ref[Row]]:
    row = Row("Humanitarian admission")
    ref = weakref.ref(row)
    env = templates.env
    with i18n.using("en"):
        html = env.from_string(SOURCE, template_class=template_class).render(rows=[row], csrf_token="t")
    del row
    return html, ref


def test_the_rows_of_a_page_are_freed_as_soon_as_it_is_rendered(no_collector):
    html, ref = _render(templates.env.template_class)
    assert "Humanitarian admission" in html and "No pathways match" in html
    assert ref() is None, "the page's variables wait for the garbage collector"


def test_without_the_release_the_macros_keep_them_in_a_cycle(no_collector):
    # The case the release exists for: Jinja's own template keeps them until a collection.
    _html, ref = _render(jinja2.Template)
    assert ref() is not None
    gc.collect()
    assert ref() is None
