"""Constraint families of a SelectionProblem, stored vectorized; each owns its behaviour (``base``)."""

from gdo_opt.selection.families.base import CoreContext, CountTerm, Family, RowBlock, RowTerm, table_row
from gdo_opt.selection.families.group import GroupFamily
from gdo_opt.selection.families.linear import LinearFamily
from gdo_opt.selection.families.parsing import (
    as_mask,
    bounds_per_group,
    encode_labels,
    group_rows,
    parse_budget,
    row_bounds,
    with_dict_labels,
)
from gdo_opt.selection.families.share import ShareFamily
from gdo_opt.selection.result import fmt_number

__all__ = [
    "CoreContext", "CountTerm", "Family", "GroupFamily", "LinearFamily", "RowBlock", "RowTerm", "ShareFamily",
    "as_mask", "bounds_per_group", "encode_labels", "fmt_number", "group_rows", "parse_budget", "row_bounds",
    "table_row", "with_dict_labels",
]
