"""The cells, rows and tables that table builders make and renderers print."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmark.report.layouts import Column


@dataclass(frozen=True)
class Cell:
    """One printed cell; ``value`` is the mean as printed (what marks compare), ``raw`` unrounded."""

    value: float
    mean_text: str
    std_text: str = ""
    n: int | None = None
    raw: float | None = None
    mark: str = ""  # "", "bold" or "underline"

    @property
    def text(self) -> str:
        return f"{self.mean_text} ± {self.std_text}" if self.std_text else self.mean_text


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    params: str  # the "#Params (M) / Ratio (%)" cell, "" when unknown
    cells: dict[Column, Cell] = field(default_factory=dict)
    reference: bool = False


@dataclass(frozen=True)
class Table:
    number: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParamsRow:
    key: str
    label: str
    params_m: str  # as printed; "*" where the paper prints it, "" when unknown
    ratio_pct: str
