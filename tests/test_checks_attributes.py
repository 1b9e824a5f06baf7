"""Shared feature attributes: the fast membership tests answer as pandas and numpy do."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gis.checks import attributes as at

COLUMNS = [
    pd.Series(["tree", None, "gate", "", "tree"], dtype="str"),  # arrow-backed strings with a gap
    pd.Series(["tree", None, "gate", "", "tree"], dtype=object),  # plain objects
    pd.Series([], dtype="str"),
    pd.Series(["a", "b", "c"], dtype="str").iloc[1:],  # a slice (an offset into the arrow buffer)
]


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("values", [("tree", "other"), ("gate",), ("",), (), ("other",)])
def test_texts_in_answers_as_numpy_isin_of_the_texts(column: pd.Series, values: tuple[str, ...]) -> None:
    frame = pd.DataFrame({"kind": column})
    for default in ("other", "", None):
        expected = np.isin(at.texts(frame, "kind", default), list(values))
        np.testing.assert_array_equal(at.texts_in(frame, "kind", default, values), expected)
    # an absent column is the default everywhere
    np.testing.assert_array_equal(at.texts_in(frame.drop(columns="kind"), "kind", "other", values),
                                  np.full(len(frame), "other" in values))


@pytest.mark.parametrize("column", COLUMNS)
def test_isin_answers_as_pandas(column: pd.Series) -> None:
    for values in (["tree", "gate"], [], ["b"], ("tree",)):
        np.testing.assert_array_equal(at.isin(column, values), column.isin(list(values)).to_numpy(dtype=bool))


def test_ranks_order_by_ref_then_compound_then_store_id() -> None:
    frame = pd.DataFrame({"ref": ["B", "A", "B", "C", "B"], "compound_ref": ["c2", "c9", "c1", "c1", "c1"]},
                         index=[5, 7, 3, 1, 20])
    # A; then the three B: c1 before c2, and among c1 the store ids as strings ("20" < "3"); then C
    assert at.ranks(frame).tolist() == [3, 0, 2, 4, 1]
    unique = frame.assign(ref=["E", "A", "D", "C", "B"])
    assert at.ranks(unique).tolist() == [4, 0, 3, 2, 1]
