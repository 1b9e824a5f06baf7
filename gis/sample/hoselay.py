"""Hose-lay distances by the data-model convention, to plant and verify HYD-COVERAGE in a sample.

Distance from a hydrant to a building = straight hop from the hydrant to the nearest point of a connected piece of
the road network (city roads, internal roads and walkways, noded into a graph) + the shortest way along that
piece + straight hop from the piece to the building's nearest wall point. Hops are at most the hose length.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from shapely import STRtree

#: Noding grid (metres).
GRID = 0.01


def _network(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
    parts = shapely.get_parts(np.asarray(lines, dtype=object))
    parts = parts[np.isin(shapely.get_type_id(parts), (1, 2))]
    noded = shapely.get_parts(shapely.union_all(parts, grid_size=GRID))
    edges = noded[(shapely.get_type_id(noded) == 1) & (shapely.length(noded) > 0)]
    ends = np.vstack([shapely.get_coordinates(shapely.get_point(edges, 0)),
                      shapely.get_coordinates(shapely.get_point(edges, -1))])
    _, inv = np.unique(np.round(ends / GRID).astype(np.int64), axis=0, return_inverse=True)
    inv = inv.ravel()
    n = len(edges)
    u, v = inv[:n], inv[n:]
    n_nodes = int(inv.max()) + 1 if n else 0
    _, piece = connected_components(coo_matrix((np.ones(n), (u, v)), shape=(n_nodes, n_nodes)), directed=False)
    return edges, u, v, shapely.length(edges), n_nodes, piece


def _attach(edges: np.ndarray, piece_of_edge: np.ndarray, tree: STRtree, geoms: np.ndarray,
            max_hop: float) -> pd.DataFrame:
    """Nearest landing of every geometry on every network piece within `max_hop`: item, edge, hop, along."""
    item, edge = tree.query(geoms, predicate="dwithin", distance=max_hop)
    line = shapely.shortest_line(geoms[item], edges[edge])
    hop = shapely.length(line)
    frame = pd.DataFrame({"item": item, "edge": edge, "piece": piece_of_edge[edge], "hop": hop})
    best = frame.groupby(["item", "piece"])["hop"].transform("min").to_numpy()
    keep = hop <= best + GRID
    frame = frame[keep].copy()
    frame["along"] = shapely.line_locate_point(edges[frame["edge"].to_numpy()],
                                               shapely.get_point(line[keep], 1))
    return frame


class HoseNetwork:
    """A noded road network with its graph, for repeated hose-lay queries (hydrant sets vary, roads do not).

    Parameters
    ----------
    roads : array of LineString / MultiLineString
        Every road centre line of the area (city, internal, walkway), in a metric CRS.
    max_hop : float
        Longest straight hop onto or off the network (the hose length).
    """

    def __init__(self, roads: np.ndarray, *, max_hop: float = 150.0) -> None:
        self.max_hop = max_hop
        self.edges, self.u, self.v, self.length, self.n_nodes, piece = _network(roads)
        self.piece = piece[self.u]
        self.tree = STRtree(self.edges)

    def attach(self, geoms: np.ndarray) -> pd.DataFrame:
        """Landings (item, edge, piece, hop, along) of geometries on every piece within the hose length."""
        if not len(geoms) or not len(self.edges):
            return pd.DataFrame({"item": [], "edge": [], "piece": [], "hop": [], "along": []})
        return _attach(self.edges, self.piece, self.tree, np.asarray(geoms, dtype=object), self.max_hop)

    def distances(self, src: pd.DataFrame, dst: pd.DataFrame, n_targets: int) -> np.ndarray:
        """Hose lay from the nearest source landing to each target (inf where none within the hose length)."""
        out = np.full(n_targets, np.inf)
        if not len(src) or not len(dst):
            return out
        u, v, length, n = self.u, self.v, self.length, self.n_nodes
        e = src["edge"].to_numpy().astype(int)
        rows = np.concatenate([u, v, np.full(2 * len(e), n)])
        cols = np.concatenate([v, u, u[e], v[e]])
        w = np.concatenate([length, length, src["hop"] + src["along"], src["hop"] + length[e] - src["along"]])
        frame = pd.DataFrame({"r": rows, "c": cols, "w": w}).groupby(["r", "c"])["w"].min().reset_index()
        graph = coo_matrix((frame["w"].to_numpy() + 1e-12, (frame["r"].to_numpy(), frame["c"].to_numpy())),
                           shape=(n + 1, n + 1)).tocsr()
        dist = dijkstra(graph, directed=True, indices=n, limit=self.max_hop + 50.0)[:n]
        de = dst["edge"].to_numpy().astype(int)
        via = dst["hop"].to_numpy() + np.minimum(dist[u[de]] + dst["along"].to_numpy(),
                                                 dist[v[de]] + length[de] - dst["along"].to_numpy())
        np.minimum.at(out, dst["item"].to_numpy().astype(int), via)
        same = src.merge(dst, on="edge", suffixes=("_h", "_b"))
        if len(same):
            direct = (same["hop_h"] + same["hop_b"] + (same["along_h"] - same["along_b"]).abs()).to_numpy()
            np.minimum.at(out, same["item_b"].to_numpy().astype(int), direct)
        return out


def hose_lay(roads: np.ndarray, hydrants: np.ndarray, buildings: np.ndarray, *, max_hop: float = 150.0) -> np.ndarray:
    """Hose-lay distance (metres) from the nearest hydrant to each building; inf where none reaches.

    Parameters
    ----------
    roads : array of LineString / MultiLineString
        Every road centre line of the area (city, internal, walkway), in a metric CRS.
    hydrants : array of Point
        In-service hydrants.
    buildings : array of Polygon / MultiPolygon
    max_hop : float
        Longest straight hop onto or off the network.
    """
    if not len(roads) or not len(hydrants) or not len(buildings):
        return np.full(len(buildings), np.inf)
    net = HoseNetwork(roads, max_hop=max_hop)
    return net.distances(net.attach(hydrants), net.attach(buildings), len(buildings))


def hydrant_matrix(net: HoseNetwork, src: pd.DataFrame, hydrants: np.ndarray, dst: pd.DataFrame,
                   targets: np.ndarray) -> np.ndarray:
    """Hose lay from each of `hydrants` (items of `src`) to each of `targets` (items of `dst`): (n_h, n_t)."""
    out = np.full((len(hydrants), len(targets)), np.inf)
    src = src[np.isin(src["item"].to_numpy(), hydrants)]
    dst = dst[np.isin(dst["item"].to_numpy(), targets)]
    if not len(src) or not len(dst):
        return out
    u, v, length, n = net.u, net.v, net.length, net.n_nodes
    hpos = {int(h): k for k, h in enumerate(hydrants)}
    tpos = {int(t): k for k, t in enumerate(targets)}
    hk = np.array([hpos[int(i)] for i in src["item"]])
    e = src["edge"].to_numpy().astype(int)
    rows = np.concatenate([u, v, n + hk, n + hk])
    cols = np.concatenate([v, u, u[e], v[e]])
    w = np.concatenate([length, length, src["hop"] + src["along"], src["hop"] + length[e] - src["along"]])
    frame = pd.DataFrame({"r": rows, "c": cols, "w": w}).groupby(["r", "c"])["w"].min().reset_index()
    size = n + len(hydrants)
    graph = coo_matrix((frame["w"].to_numpy() + 1e-12, (frame["r"].to_numpy(), frame["c"].to_numpy())),
                       shape=(size, size)).tocsr()
    dist = dijkstra(graph, directed=True, indices=n + np.arange(len(hydrants)), limit=net.max_hop + 50.0)[:, :n]
    de = dst["edge"].to_numpy().astype(int)
    tk = np.array([tpos[int(i)] for i in dst["item"]])
    via = dst["hop"].to_numpy()[None, :] + np.minimum(dist[:, u[de]] + dst["along"].to_numpy()[None, :],
                                                      dist[:, v[de]] + (length[de] - dst["along"].to_numpy())[None, :])
    for k in range(len(hydrants)):
        np.minimum.at(out[k], tk, via[k])
    same = src.assign(hk=hk).merge(dst.assign(tk=tk), on="edge", suffixes=("_h", "_b"))
    if len(same):
        direct = (same["hop_h"] + same["hop_b"] + (same["along_h"] - same["along_b"]).abs()).to_numpy()
        np.minimum.at(out, (same["hk"].to_numpy(), same["tk"].to_numpy()), direct)
    return out
