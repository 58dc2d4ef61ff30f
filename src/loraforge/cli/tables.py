"""Tables that fit the terminal: every value shown whole, columns left out (and named)
when the terminal is too narrow. Light on purpose (rich only): every command's module
imports it, and `loraforge --help` must not pay for pandas or the database layer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    """One column of a fitted table: its header, its value (rich markup) for a row, and
    whether it is prose that may wrap (a reason, a list of why) rather than a value that
    must stay whole (an id, a score, a stage)."""

    header: str
    value: Callable[[Any], str]
    wrap: bool = False


WRAPPED_MIN = 24  # the width a wrapping column is given at least when space is short


def _cell_width(column: Column, rows: list[Any]) -> int:
    widest = max([len(column.header)] + [Text.from_markup(column.value(r)).cell_len for r in rows])
    return min(widest, WRAPPED_MIN) if column.wrap else widest


def _width(columns: list[Column], rows: list[Any]) -> int:
    """The table's width with every whole value whole: widest cell per column, plus the
    borders and padding rich adds (3 per column, 1 closing border)."""
    return sum(_cell_width(c, rows) for c in columns) + 3 * len(columns) + 1


def _rows_table(columns: list[Column], rows: list[Any], title: str | None) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        # Whole values are never wrapped, folded or cut: an id is copied into the next
        # command, a score read at a glance. Columns that do not fit are left out instead.
        table.add_column(
            column.header,
            no_wrap=not column.wrap,
            min_width=min(_cell_width(column, rows), WRAPPED_MIN) if column.wrap else None,
            overflow="fold",
        )
    for r in rows:
        table.add_row(*(column.value(r) for column in columns))
    return table


def fitted_table(
    console: Console,
    columns: list[Column],
    rows: list[Any],
    *,
    drop_first: tuple[str, ...] = (),
    fit_width: bool = True,
    title: str | None = None,
    fallback: Callable[[Any], str] | None = None,
) -> None:
    """Rows as a table in which every value shown is whole: in a narrow terminal the
    columns named in ``drop_first`` are left out, in that order (and named below), rather
    than shown cut. Without ``fit_width`` (output piped to a file or grep: no width to
    fit) every column is kept. If not even the rest fits, ``fallback`` prints one line
    per row."""
    if not fit_width:
        # console.print(width=…) cannot exceed the console's width: a console as wide as
        # the table, writing to the same output, can.
        wide = Console(
            file=console.file,
            width=max(console.width, _width(columns, rows)),
            color_system=console.color_system,
            soft_wrap=True,
        )
        wide.print(_rows_table(columns, rows, title))
        return
    shown, dropped = list(columns), []
    for header in drop_first:
        if _width(shown, rows) <= console.width:
            break
        shown = [c for c in shown if c.header != header]
        dropped.append(header)
    if _width(shown, rows) <= console.width or fallback is None:
        console.print(_rows_table(shown, rows, title))
    else:
        for r in rows:
            console.print(fallback(r), soft_wrap=True, highlight=False)
    if dropped:
        console.print(
            f"[dim](terminal too narrow: {', '.join(dropped)} not shown; --json shows all)[/dim]"
        )
