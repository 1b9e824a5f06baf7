"""Hose-lay networks: road centre lines noded into a graph, multi-source shortest distances, straight hops."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from shapely import STRtree

#: Snap-rounding grid for noding (metres). A numerical tolerance, not a rule value: line ends that meet within
#: this grid become one node, so walkways drawn "to" a road join it even with floating-point noise.
NODING_GRID_M = 0.01


@dataclass(frozen=True)
class Network:
    """A noded line network: `edges` (LineStrings), their end nodes `u`/`v` and `length`, `n_nodes` nodes and
    the connected `piece` each node belongs to."""

    edges: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length: np.ndarray
    n_nodes: int
    piece: np.ndarray
    tree: STRtree

    @property
    def empty(self) -> bool:
        return len(self.edges) == 0


@dataclass(frozen=True)
class Attachment:
    """Straight hops from geometries onto network edges: `item` (input index), `edge`, `hop` length and `along`
    (distance of the landing point from the edge's start), one row per landing point."""

    item: np.ndarray
    edge: np.ndarray
    hop: np.ndarray
    along: np.ndarray

    @classmethod
    def empty(cls) -> Attachment:
        z = np.empty(0)
        return cls(z.astype(int), z.astype(int), z, z)


def build_network(lines: object, *, grid_size: float = NODING_GRID_M) -> Network:
    """Node line geometries into a graph.

    Parameters
    ----------
    lines : array_like of shapely geometries
        Centre lines (LineString / MultiLineString; others are ignored) in a metric CRS.
    grid_size : float
        Snap-rounding grid used while noding (see `NODING_GRID_M`).

    Returns
    -------
    Network
        Edges split at every crossing and shared end point, with integer end nodes and lengths.
    """
    geoms = np.asarray(lines, dtype=object).ravel()
    geoms = geoms[~shapely.is_missing(geoms)]
    parts = shapely.get_parts(geoms) if len(geoms) else np.empty(0, dtype=object)
    parts = parts[np.isin(shapely.get_type_id(parts), (1, 2)) & ~shapely.is_empty(parts)]
    if len(parts) == 0:
        z = np.empty(0, dtype=int)
        return Network(np.empty(0, dtype=object), z, z, np.empty(0), 0, z, STRtree([]))
    noded = shapely.union_all(parts, grid_size=grid_size)
    edges = shapely.get_parts(noded)
    edges = edges[(shapely.get_type_id(edges) == 1) & (shapely.length(edges) > 0)]
    coords, owner = shapely.get_coordinates(edges, return_index=True)
    count = np.bincount(owner, minlength=len(edges))
    last = np.cumsum(count) - 1
    ends = np.vstack([coords[last - count + 1], coords[last]])
    n_nodes, inverse = _grid_nodes(np.round(ends / grid_size).astype(np.int64))
    n = len(edges)
    u, v = inverse[:n], inverse[n:]
    links = coo_matrix((np.ones(n), (u, v)), shape=(n_nodes, n_nodes))
    _, piece = connected_components(links, directed=False)
    return Network(edges=edges, u=u, v=v, length=shapely.length(edges), n_nodes=n_nodes, piece=piece,
                   tree=STRtree(edges))


def _grid_nodes(cells: np.ndarray) -> tuple[int, np.ndarray]:
    """Number the distinct grid cells of an (n, 2) integer array in (x, y) order: (count, number of each row).

    One integer key per cell (x-major, so the same order as a row-wise unique) sorts several times faster than
    `np.unique(axis=0)`; a span too wide for 64 bits falls back to it."""
    if not len(cells):
        return 0, np.empty(0, dtype=np.int64)
    lo = cells.min(axis=0)
    span = cells.max(axis=0) - lo + 1
    if float(span[0]) * float(span[1]) < 2.0 ** 62:
        key = (cells[:, 0] - lo[0]) * span[1] + (cells[:, 1] - lo[1])
        nodes, inverse = np.unique(key, return_inverse=True)
    else:
        nodes, inverse = np.unique(cells, axis=0, return_inverse=True)
    return len(nodes), inverse.ravel()


def attach(network: Network, geoms: object, *, max_hop: float, grid_size: float = NODING_GRID_M) -> Attachment:
    """Straight hops from each geometry to its nearest network point(s), one per connected piece of the network
    within `max_hop` (a walkway cut off from the roads does not trap a building next to it).

    Parameters
    ----------
    network : Network
    geoms : array_like of shapely geometries
        Points (hydrants) or polygons (buildings: the hop starts at the nearest wall point).
    max_hop : float
        Longest straight hop considered (metres).
    grid_size : float
        Tolerance under which two landing points count as equally near (see `NODING_GRID_M`).

    Returns
    -------
    Attachment
        Ties (a wall parallel to a road is nearest along a whole stretch) give one row per end of the stretch.
    """
    geoms = np.asarray(geoms, dtype=object).ravel()
    if network.empty or len(geoms) == 0:
        return Attachment.empty()
    item, edge = _candidates(network, geoms, max_hop=max_hop, grid_size=grid_size)
    line = shapely.shortest_line(geoms[item], network.edges[edge])
    hop = shapely.length(line)
    # the hose leaves (joins) the network at the nearest point of each connected piece of it
    piece = pd.DataFrame({"item": item, "piece": network.piece[network.u[edge]], "hop": hop})
    nearest = hop <= piece.groupby(["item", "piece"])["hop"].transform("min").to_numpy() + grid_size
    item, edge, hop, line = item[nearest], edge[nearest], hop[nearest], line[nearest]
    along = shapely.line_locate_point(network.edges[edge], shapely.get_point(line, 1))
    # A wall parallel to an edge is nearest along a whole stretch, and GEOS returns any one point of it; the
    # stretch's ends are projections of the geometry's vertices, so those that are as near are landings too (a
    # point has no stretch: its one vertex is the landing already found).
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    first = np.searchsorted(owner, np.arange(len(geoms)))
    count = np.bincount(owner, minlength=len(geoms))
    count[shapely.get_type_id(geoms) == 0] = 0
    pair = np.repeat(np.arange(len(item)), count[item])
    offset = np.arange(len(pair)) - np.repeat(np.cumsum(count[item]) - count[item], count[item])
    vertex = shapely.points(coords[first[item[pair]] + offset])
    t = shapely.line_locate_point(network.edges[edge[pair]], vertex)
    h = shapely.distance(shapely.line_interpolate_point(network.edges[edge[pair]], t), geoms[item[pair]])
    tie = h <= hop[pair] + grid_size
    return Attachment(item=np.concatenate([item, item[pair[tie]]]), edge=np.concatenate([edge, edge[pair[tie]]]),
                      hop=np.concatenate([hop, h[tie]]), along=np.concatenate([along, t[tie]]))


def touch_bound(network: Network, geoms: object, nodes: np.ndarray, *,
                grid_size: float = NODING_GRID_M) -> np.ndarray:
    """Per geometry a sure upper bound of its hose lay (`target_distances` through `attach`'s landings) from an
    edge within half the noding grid of it (a walkway drawn to the wall), without measuring the landing.

    `attach` keeps such an edge (its piece's nearest hop is at most that, and every edge within the grid of the
    nearest is kept), and the lay through it is at most the hop (half the grid) + the nearer end node's distance
    + the edge's length; a little is added for rounding, so the bound holds for the floating-point distances too.

    Parameters
    ----------
    network : Network
    geoms : array_like of shapely geometries
    nodes : numpy.ndarray
        `node_distances(network, sources)`.
    grid_size : float
        The noding grid (see `NODING_GRID_M`).

    Returns
    -------
    numpy.ndarray
        The bound per geometry, ``inf`` where no edge is that near (or its ends are unreachable).
    """
    geoms = np.asarray(geoms, dtype=object).ravel()
    out = np.full(len(geoms), np.inf)
    if network.empty or len(geoms) == 0:
        return out
    item, edge = _touching(network, geoms, grid_size / 2.0)
    via = grid_size / 2.0 + np.minimum(nodes[network.u[edge]], nodes[network.v[edge]]) + network.length[edge]
    np.minimum.at(out, item, via * (1.0 + 1e-12) + 1e-9)
    return out


def _touching(network: Network, geoms: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """(item, edge) pairs within `reach` of each other: by envelope, then the exact distance pair by pair (cheaper
    than the tree's own predicate for thousands of walls with a walkway drawn to them)."""
    box = shapely.bounds(geoms)
    item, edge = network.tree.query(shapely.box(box[:, 0] - reach, box[:, 1] - reach, box[:, 2] + reach,
                                                box[:, 3] + reach))
    close = shapely.dwithin(geoms[item], network.edges[edge], reach)
    return item[close], edge[close]


def nearest_landing(network: Network, geoms: object, *, max_hop: float,
                    grid_size: float = NODING_GRID_M) -> Attachment:
    """One straight hop per geometry onto the network (within `max_hop`) that `attach` also offers, computed
    exactly as `attach` computes that landing, so that a distance through it is one of the distances `attach`
    offers: an upper bound of the hose lay that is cheap to get.

    The landing is on an edge within half the noding grid of the geometry where there is one (a walkway drawn to
    the wall: its piece's nearest hop is at most that, and `attach` keeps every edge within the grid of the
    nearest), else on the nearest edge (one nearest query, for the few geometries no edge touches).

    Parameters
    ----------
    network : Network
    geoms : array_like of shapely geometries
    max_hop : float
        Longest straight hop considered (metres); geometries farther from every edge get no row.
    grid_size : float
        The noding grid (see `NODING_GRID_M`).

    Returns
    -------
    Attachment
        At most one row per geometry.
    """
    geoms = np.asarray(geoms, dtype=object).ravel()
    if network.empty or len(geoms) == 0:
        return Attachment.empty()
    touch, touch_edge = _touching(network, geoms, grid_size / 2.0)
    touch, first = np.unique(touch, return_index=True)
    rest = np.ones(len(geoms), dtype=bool)
    rest[touch] = False
    rest = np.flatnonzero(rest)
    return _landings(network, geoms, touch, touch_edge[first], rest, max_hop=max_hop)


def _landings(network: Network, geoms: np.ndarray, item: np.ndarray, edge: np.ndarray, rest: np.ndarray, *,
              max_hop: float) -> Attachment:
    """The hops of `geoms[item]` onto their chosen `edge`, and of `geoms[rest]` (no edge chosen) onto their nearest
    edge, where within `max_hop`."""
    far, far_edge = network.tree.query_nearest(geoms[rest], max_distance=max_hop, all_matches=False)
    item, edge = np.concatenate([item, rest[far]]), np.concatenate([edge, far_edge])
    keep = shapely.dwithin(geoms[item], network.edges[edge], max_hop)
    item, edge = item[keep], edge[keep]
    line = shapely.shortest_line(geoms[item], network.edges[edge])
    along = shapely.line_locate_point(network.edges[edge], shapely.get_point(line, 1))
    return Attachment(item=item, edge=edge, hop=shapely.length(line), along=along)


def _candidates(network: Network, geoms: np.ndarray, *, max_hop: float,
                grid_size: float) -> tuple[np.ndarray, np.ndarray]:
    """(item, edge) pairs that may hold an item's nearest landing on a connected piece: per piece, the edges
    within `max_hop` of the item and no farther than the piece's nearest edge plus the tie tolerance.

    Points (hydrants) are measured to every edge within reach in numpy (`_point_candidates`); other geometries
    get one nearest query per piece (over the items near the piece's extent) instead of pairing every item with
    every edge within `max_hop`. The exact hops and ties are decided by the caller."""
    if len(geoms) and (shapely.get_type_id(geoms) == 0).all() and not shapely.is_empty(geoms).any():
        item, edge = _point_candidates(network, geoms, max_hop=max_hop, grid_size=grid_size)
        keep = shapely.dwithin(geoms[item], network.edges[edge], max_hop)
        return item[keep], edge[keep]
    edge_piece = network.piece[network.u]
    order = np.argsort(edge_piece, kind="stable")
    pieces, start = np.unique(edge_piece[order], return_index=True)
    bounds = shapely.bounds(network.edges[order])
    boxes = shapely.box(np.minimum.reduceat(bounds[:, 0], start), np.minimum.reduceat(bounds[:, 1], start),
                        np.maximum.reduceat(bounds[:, 2], start), np.maximum.reduceat(bounds[:, 3], start))
    near_piece, near_item = STRtree(geoms).query(boxes, predicate="dwithin", distance=max_hop)
    by_piece = np.argsort(near_piece, kind="stable")
    near_piece, near_item = near_piece[by_piece], near_item[by_piece]
    stop = np.append(start[1:], len(order))
    first = np.searchsorted(near_piece, np.arange(len(pieces)))
    last = np.searchsorted(near_piece, np.arange(len(pieces)), side="right")
    items, edges = [], []
    # a handful of pieces per compound; their nearest-edge queries have no joint array form
    for k in np.flatnonzero(last > first):
        idx = order[start[k]:stop[k]]
        sub = near_item[first[k]:last[k]]
        tree = STRtree(network.edges[idx])
        (i, _), d = tree.query_nearest(geoms[sub], max_distance=max_hop + grid_size, return_distance=True,
                                       all_matches=False)
        # every edge of the piece as near as its nearest one (within the tolerance, with room for rounding)
        i2, j = tree.query(geoms[sub[i]], predicate="dwithin", distance=d + 2 * grid_size)
        items.append(sub[i[i2]])
        edges.append(idx[j])
    if not items:
        return np.empty(0, dtype=int), np.empty(0, dtype=int)
    item, edge = np.concatenate(items), np.concatenate(edges)
    keep = shapely.dwithin(geoms[item], network.edges[edge], max_hop)
    return item[keep], edge[keep]


def _point_candidates(network: Network, points: np.ndarray, *, max_hop: float,
                      grid_size: float) -> tuple[np.ndarray, np.ndarray]:
    """`_candidates` of points, in numpy: every edge whose envelope comes within reach, its distance from the
    point (the least over its straight segments), and per (point, piece) the edges within twice the tie tolerance
    of the piece's nearest (a superset of what the caller keeps, which includes the nearest; the caller measures
    the hops exactly)."""
    xy = shapely.get_coordinates(points)
    reach = max_hop + grid_size
    item, edge = network.tree.query(shapely.box(xy[:, 0] - reach, xy[:, 1] - reach, xy[:, 0] + reach,
                                                xy[:, 1] + reach))
    dist = _point_edge_distances(network, xy, item, edge)
    near = dist <= reach
    item, edge, dist = item[near], edge[near], dist[near]
    n_pieces = int(network.piece.max(initial=0)) + 1
    key = item.astype(np.int64) * n_pieces + network.piece[network.u[edge]]
    if len(points) * n_pieces <= 4 * len(key) + 1_000_000:  # a dense table of (point, piece) minima is small
        least = np.full(len(points) * n_pieces, np.inf)
        np.minimum.at(least, key, dist)
        nearest = least[key]
    else:
        nearest = pd.Series(dist).groupby(key).transform("min").to_numpy()
    keep = dist <= nearest + 2 * grid_size
    return item[keep], edge[keep]


def _point_edge_distances(network: Network, xy: np.ndarray, item: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """Distance of point `xy[item[k]]` from edge `edge[k]`, in numpy (the least over the edge's straight segments;
    to rounding, for choosing candidates that GEOS then measures)."""
    coords, owner = shapely.get_coordinates(network.edges, return_index=True)
    n_seg = np.bincount(owner, minlength=len(network.edges)) - 1
    first_seg = np.cumsum(n_seg + 1) - (n_seg + 1)  # the first vertex of each edge in coords
    if (n_seg == 1).all():  # straight edges: one segment per (point, edge) pair
        seg, pair = first_seg[edge], np.arange(len(item))
    else:
        per = n_seg[edge]
        pair = np.repeat(np.arange(len(item)), per)
        seg = first_seg[edge][pair] + np.arange(len(pair)) - np.repeat(np.cumsum(per) - per, per)
    x0, y0 = coords[seg, 0], coords[seg, 1]
    ex, ey = coords[seg + 1, 0] - x0, coords[seg + 1, 1] - y0
    px, py = xy[item[pair], 0] - x0, xy[item[pair], 1] - y0
    length2 = ex * ex + ey * ey
    t = np.clip(np.divide(px * ex + py * ey, length2, out=np.zeros(len(length2)), where=length2 > 0), 0.0, 1.0)
    gx, gy = px - t * ex, py - t * ey
    dist = np.sqrt(gx * gx + gy * gy)
    if len(pair) != len(item) and len(dist):  # the least over each edge's segments (every pair has one or more)
        dist = np.minimum.reduceat(dist, np.cumsum(n_seg[edge]) - n_seg[edge])
    return dist


def point_landing(network: Network, points: object, *, max_hop: float, grid_size: float = NODING_GRID_M,
                  near: float = 20.0) -> Attachment:
    """One straight hop per point onto its nearest network edge (within `max_hop`), computed as `attach` computes
    that landing: the nearest edge of all is the nearest of its piece, which `attach` keeps.

    The edges within `near` of a point are measured in numpy first and those within twice the noding grid of the
    least are measured by GEOS, the nearest of them taken; a point with no edge that near gets one nearest query.

    Parameters
    ----------
    network : Network
    points : array_like of shapely Points (other geometries go to `nearest_landing`)
    max_hop : float
        Longest straight hop considered (metres); points farther from every edge get no row.
    grid_size : float
        The noding grid (see `NODING_GRID_M`).
    near : float
        Radius of the numpy search (metres); a matter of speed only.

    Returns
    -------
    Attachment
        At most one row per point.
    """
    points = np.asarray(points, dtype=object).ravel()
    if network.empty or len(points) == 0:
        return Attachment.empty()
    if (shapely.get_type_id(points) != 0).any() or shapely.is_empty(points).any():
        return nearest_landing(network, points, max_hop=max_hop, grid_size=grid_size)  # not single points
    xy = shapely.get_coordinates(points)
    reach = min(near, max_hop) + 3 * grid_size
    item, edge = network.tree.query(shapely.box(xy[:, 0] - reach, xy[:, 1] - reach, xy[:, 0] + reach,
                                                xy[:, 1] + reach))
    dist = _point_edge_distances(network, xy, item, edge)
    least = np.full(len(points), np.inf)
    np.minimum.at(least, item, dist)
    # every edge outside a point's box is farther than `reach`: where the least is within `near`, the nearest edge
    # of all is among those within twice the grid of it (numpy's distances are GEOS's to rounding)
    found = least <= min(near, max_hop)
    keep = found[item] & (dist <= least[item] + 2 * grid_size)
    item, edge = item[keep], edge[keep]
    exact = shapely.distance(points[item], network.edges[edge])
    order = np.lexsort((exact, item))  # per point its candidates, the nearest first
    item, edge = item[order], edge[order]
    first = np.r_[True, item[1:] != item[:-1]] if len(item) else np.zeros(0, dtype=bool)
    item, edge = item[first], edge[first]
    return _landings(network, points, item, edge, np.flatnonzero(~found), max_hop=max_hop)


def node_distances(network: Network, sources: Attachment) -> np.ndarray:
    """Shortest distance from the nearest source to every node (multi-source Dijkstra through a super source).

    Parameters
    ----------
    network : Network
    sources : Attachment
        The sources' hops onto the network; a source enters an edge at `along` and may walk either way.

    Returns
    -------
    numpy.ndarray
        Distance per node (hop + along the network), ``inf`` where unreachable.
    """
    n = network.n_nodes
    if n == 0 or len(sources.item) == 0:
        return np.full(n, np.inf)
    e = sources.edge
    rows = np.concatenate([network.u, network.v, np.full(2 * len(e), n)])
    cols = np.concatenate([network.v, network.u, network.u[e], network.v[e]])
    weights = np.concatenate([network.length, network.length,
                              sources.hop + sources.along, sources.hop + network.length[e] - sources.along])
    # parallel edges: keep the shortest (a sparse matrix would sum duplicates)
    frame = pd.DataFrame({"r": rows, "c": cols, "w": weights}).groupby(["r", "c"], sort=False)["w"].min().reset_index()
    graph = coo_matrix((frame["w"].to_numpy() + 0.0, (frame["r"].to_numpy(), frame["c"].to_numpy())),
                       shape=(n + 1, n + 1)).tocsr()
    return dijkstra(graph, directed=True, indices=n)[:n]


def target_distances(network: Network, sources: Attachment, targets: Attachment, n_targets: int, *,
                     nodes: np.ndarray | None = None) -> np.ndarray:
    """Hose-lay distance from the nearest source to each target: hop + along the network + hop.

    Parameters
    ----------
    network : Network
    sources, targets : Attachment
        Hops of the sources (hydrants) and the targets (buildings) onto the network.
    n_targets : int
        Number of target geometries (the length of the result).
    nodes : numpy.ndarray, optional
        `node_distances(network, sources)` when already computed (several target sets, one set of sources).

    Returns
    -------
    numpy.ndarray
        Distance per target, ``inf`` where no source reaches it along the network.
    """
    out = np.full(n_targets, np.inf)
    if len(targets.item) == 0 or len(sources.item) == 0:
        return out
    dist = node_distances(network, sources) if nodes is None else nodes
    e = targets.edge
    via_nodes = targets.hop + np.minimum(dist[network.u[e]] + targets.along,
                                         dist[network.v[e]] + network.length[e] - targets.along)
    np.minimum.at(out, targets.item, via_nodes)
    # source and target on the same edge: straight along it, no node in between
    same = pd.merge(pd.DataFrame({"edge": sources.edge, "h_hop": sources.hop, "h_along": sources.along}),
                    pd.DataFrame({"edge": targets.edge, "item": targets.item, "t_hop": targets.hop,
                                  "t_along": targets.along}), on="edge")
    if len(same):
        direct = (same["h_hop"] + same["t_hop"] + (same["h_along"] - same["t_along"]).abs()).to_numpy()
        np.minimum.at(out, same["item"].to_numpy(), direct)
    return out
