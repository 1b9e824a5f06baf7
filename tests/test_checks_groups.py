"""How a district is cut into groups of neighbouring compounds for partitions and streamed runs."""

import numpy as np
import pytest

from gis.checks.context import compact_groups
from gis.checks.runner import MAX_GROUP, group_size


def grid(nx: int, ny: int) -> np.ndarray:
    x, y = np.meshgrid(np.arange(nx, dtype=float), np.arange(ny, dtype=float))
    return np.column_stack([x.ravel(), y.ravel()])


def boxes(xy: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    return np.array([[*xy[g].min(axis=0), *xy[g].max(axis=0)] for g in groups])


def test_every_point_is_in_exactly_one_group_of_nearly_equal_size():
    xy = np.random.default_rng(7).uniform(0, 1000, (2503, 2))
    groups = compact_groups(xy, 400)
    assert len(groups) == 7
    assert np.array_equal(np.sort(np.concatenate(groups)), np.arange(len(xy)))
    sizes = [len(g) for g in groups]
    assert max(sizes) <= 400 and max(sizes) - min(sizes) <= 1
    assert all(np.array_equal(g, np.sort(g)) for g in groups)  # each in the caller's order


def test_a_grid_is_cut_into_rectangles_that_fill_their_boxes():
    """A 20 x 10 block of compounds in four groups: four 5 x 10 blocks, side by side (runs along a space-filling
    curve would bend into L shapes, whose surroundings are larger)."""
    xy = grid(20, 10)
    groups = compact_groups(xy, 50)
    b = boxes(xy, groups)
    assert sorted(map(tuple, b[:, [0, 2]])) == [(0, 4), (5, 9), (10, 14), (15, 19)]
    assert (b[:, 1] == 0).all() and (b[:, 3] == 9).all()


def test_a_long_strip_is_cut_across_its_length():
    xy = grid(100, 2)
    b = boxes(xy, compact_groups(xy, 20))
    assert len(b) == 10 and ((b[:, 2] - b[:, 0]) == 9).all() and ((b[:, 3] - b[:, 1]) == 1).all()


@pytest.mark.parametrize("n, size, sizes", [(0, 5, []), (3, 5, [3]), (25, 10, [8, 9, 8]), (10, 1, [1] * 10)])
def test_group_sizes_follow_an_even_cut(n, size, sizes):
    groups = compact_groups(np.random.default_rng(1).uniform(0, 10, (n, 2)), size)
    assert sorted(len(g) for g in groups) == sorted(sizes)


@pytest.mark.parametrize("n, workers, size, groups", [
    (800, 2, 400, 2),      # m-scale: one group per worker
    (8000, 2, 800, 10),    # l-scale: groups as large as MAX_GROUP allows
    (2400, 2, 600, 4),     # never a lone last group: 3 of 800 would leave a worker idle at the end
    (8000, 1, 800, 10),
    (100, 4, 25, 4),
    (3, 8, 1, 3),
])
def test_groups_are_as_large_as_allowed_in_a_multiple_of_the_workers(n, workers, size, groups):
    assert MAX_GROUP == 800
    assert group_size(n, workers=workers) == size
    assert len(compact_groups(np.zeros((n, 2)), size)) == groups
