"""Exact minimum spanning tree of HDBSCAN's mutual reachability graph, in torch (CPU or CUDA).

Mutual reachability (hdbscan's definition, ``alpha = 1``)::

    w(p, q) = max(core(p), core(q), |x_p - x_q|)

with ``core(p)`` the distance from ``p`` to its ``min_samples``-th nearest other point. (With
``min_samples = 1`` every distance is at least both core distances: ``w`` is the Euclidean distance.)

Three steps, each exact (searches go through :class:`~.cells.BallCells`, which skips pairs of points
that provably cannot matter):

1. **k nearest neighbours** of every point. Besides the candidate edges this gives every point ``p`` a
   *radius* ``rho(p)``: every edge from ``p`` to a point outside its list weighs at least ``rho(p)``.
2. **Certified Borůvka on the k-NN graph**: in rounds, every component takes its lightest listed edge to
   another component, but only when that edge weighs at most ``min rho`` over the component — then no
   unlisted edge can be lighter, so it is the component's lightest edge in the complete graph (the cut
   property). Components whose edge cannot be certified wait; others may still join them.
3. **Completion**: Borůvka over the ``M`` components left (typically 10-30: groups whose k-NN graphs do
   not touch). A component's lightest edge is the lightest of its points' listed edges and of exact
   searches from those of its points whose radius is below that (the others cannot win).

Ties are broken by the edge's point indices (``(w, min(p, q), max(p, q))`` is a strict total order), so the
tree is deterministic and Borůvka never closes a cycle. Memory: O(N (k + cells + M)) plus one block of at
most ``block_elems`` values. Searches use float32 candidates with rounding bounds (k-NN) and float64
(completion); the returned weights and core distances are recomputed from coordinate differences in
float64, as hdbscan's trees compute them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .cells import BallCells

__all__ = ["mutual_reachability_mst"]

_INF = float("inf")
_BIG = torch.iinfo(torch.int64).max


def mutual_reachability_mst(
    x: Tensor,  # [N, D]
    min_samples: int = 1,
    neighbors: int = 8,
    cells: int | None = None,
    block_elems: int = 1 << 22,
) -> Tensor:
    """Edges ``[N-1, 3]`` float64 ``(p, q, weight)`` with ``p < q`` of an exact minimum spanning tree of
    the mutual reachability graph of the rows of ``x``, in ascending ``(weight, p, q)`` order — the input
    of hdbscan's ``label``. Runs on ``x.device``; the result is on the CPU.

    ``cells``: balls of the search partition (default: ``N / 150`` up to 64 on the CPU; 1 on a GPU, where
    all-pairs blocks are cheaper than skipping); ``neighbors``: k of the k-NN graph (plus spares)."""
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"mutual_reachability_mst needs [N, D] points with N >= 2, got {tuple(x.shape)}")
    n = x.shape[0]
    if not 1 <= min_samples < n:
        raise ValueError(f"min_samples must be in [1, N-1] = [1, {n - 1}], got {min_samples}")
    if neighbors < 1 or block_elems < 1:
        raise ValueError("neighbors and block_elems must be positive")
    x = x.detach().to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("mutual_reachability_mst: points contain NaN or infinite values")
    with torch.autocast(device_type=x.device.type, enabled=False):  # the bounds assume float32/64 products
        # centred: distances do not change, the Gram-matrix form loses fewer bits near the origin
        return _tree(x - x.mean(0), min_samples, neighbors, cells, block_elems)


def _tree(x: Tensor, min_samples: int, neighbors: int, cells: int | None, block_elems: int) -> Tensor:
    n = x.shape[0]  # distances do not change; the Gram-matrix form loses fewer bits near the origin
    if cells is None:
        cells = 1 if x.device.type == "cuda" else min(64, max(1, n // 150))
    space = BallCells(x, cells, block_elems)
    k = max(int(neighbors), int(min_samples))
    k = min(n - 1, k + max(4, k // 2))  # spare candidates: the radius is the last one's
    nbr, dist, rho = space.knn(k)
    core = None
    if min_samples > 1:
        core = dist[:, min_samples - 1]
        unsure = core > rho  # rounding: the min_samples-th neighbour might be unlisted, compute it exactly
        if bool(unsure.any()):
            core = core.clone()
            core[unsure] = _kth_exact(x, torch.nonzero(unsure)[:, 0], min_samples)
    w = dist if core is None else torch.maximum(dist, torch.maximum(core[:, None], core[nbr]))
    order = torch.argsort(nbr, dim=1)  # lists by (w, neighbour index): a row's first outside entry is its choice
    nbr, w = nbr.gather(1, order), w.gather(1, order)
    order = torch.argsort(w, dim=1, stable=True)
    nbr, w = nbr.gather(1, order), w.gather(1, order)
    edges, comp = _certified_boruvka(nbr, w, rho)
    if bool((comp != comp[0]).any()):
        edges = torch.cat([edges, _complete(space, core, comp, nbr, w, rho)])
    if edges.shape[0] != n - 1:
        raise RuntimeError(f"mutual_reachability_mst: {edges.shape[0]} edges for {n} points")
    p, q = edges[:, 0], edges[:, 1]
    ew = (x[p] - x[q]).pow(2).sum(-1).sqrt()
    if core is not None:
        ew = torch.maximum(ew, torch.maximum(core[p], core[q]))
    order = torch.argsort(p * n + q)
    order = order[torch.argsort(ew[order], stable=True)]
    return torch.stack([p[order].double(), q[order].double(), ew[order]], 1).cpu()


def _kth_exact(x: Tensor, rows: Tensor, k: int) -> Tensor:
    """``[R]`` exact distance from each of ``rows`` to its k-th nearest other point."""
    out = torch.empty(rows.numel(), dtype=x.dtype, device=x.device)
    step = max(1, (1 << 22) // x.shape[0])
    for i in range(0, rows.numel(), step):
        r = rows[i:i + step]
        d = (x[r][:, None, :] - x[None, :, :]).pow(2).sum(-1)  # [r, N] from differences
        d[torch.arange(r.numel(), device=x.device), r] = _INF
        out[i:i + step] = d.kthvalue(k, dim=1).values.sqrt()
    return out


def _choose(group: Tensor, weight: Tensor, key: Tensor, groups: int) -> tuple[Tensor, Tensor]:
    """Per group, the smallest ``(weight, key)`` among its members: ``(weight [G], key [G])``."""
    gw = torch.full((groups,), _INF, dtype=weight.dtype, device=weight.device).scatter_reduce_(0, group, weight, "amin")
    key = torch.where(torch.isfinite(weight) & (weight == gw[group]), key, torch.full_like(key, _BIG))
    return gw, torch.full((groups,), _BIG, dtype=torch.int64, device=key.device).scatter_reduce_(0, group, key, "amin")


def _edge_key(p: Tensor, q: Tensor, n: int) -> Tensor:
    return torch.minimum(p, q) * n + torch.maximum(p, q)


def _first_outside(nbr: Tensor, w: Tensor, label: Tensor, owner: Tensor) -> tuple[Tensor, Tensor]:
    """Each row's lightest listed edge to a point whose ``label`` differs from ``owner``: (weight, partner)."""
    outside = label[nbr] != owner[:, None]  # [N, k]
    j = outside.to(torch.int8).argmax(1)
    rows = torch.arange(nbr.shape[0], device=nbr.device)
    pw = torch.where(outside.any(1), w[rows, j], torch.full_like(w[:, 0], _INF))
    return pw, nbr[rows, j]


def _certified_boruvka(nbr: Tensor, w: Tensor, rho: Tensor) -> tuple[Tensor, Tensor]:
    """Tree edges ``[E, 2]`` (p < q) provably in the minimum spanning tree and the component label of every
    point (its smallest point index) once no component can certify its lightest listed edge."""
    n = nbr.shape[0]
    pts = torch.arange(n, device=nbr.device)
    comp = pts.clone()
    edges = [torch.empty(0, 2, dtype=torch.int64, device=nbr.device)]
    while True:
        pw, pq = _first_outside(nbr, w, comp, comp)
        comp_w, comp_key = _choose(comp, pw, _edge_key(pts, pq, n), n)
        radius = torch.full((n,), _INF, dtype=w.dtype, device=w.device).scatter_reduce_(0, comp, rho, "amin")
        # strict: an unlisted edge may weigh exactly the radius (ties must be broken by key, see _complete)
        roots = torch.nonzero((comp == pts) & (comp_key < _BIG) & (comp_w < radius))[:, 0]
        if roots.numel() == 0:
            return torch.cat(edges), comp
        edges.append(_join(comp_key[roots], n))
        comp = _merge(comp, roots, _other_end(comp, roots, comp_key[roots], n))


def _join(keys: Tensor, n: int) -> Tensor:
    keys = torch.unique(keys)  # a mutual choice is one edge chosen by both ends
    return torch.stack([keys // n, keys % n], 1)


def _other_end(label: Tensor, roots: Tensor, keys: Tensor, n: int) -> Tensor:
    p, q = keys // n, keys % n
    return torch.where(label[p] == roots, label[q], label[p])


def _merge(label: Tensor, roots: Tensor, other: Tensor) -> Tensor:
    """Join each group ``roots[i]`` with group ``other[i]``; the new label is the union's smallest label.
    ``label [L]`` maps items to groups named by their smallest item."""
    n = label.shape[0]
    pts = torch.arange(n, device=label.device)
    parent = pts.clone()
    parent[roots] = other
    mutual = parent[other] == roots
    fix = roots[mutual & (roots < other)]
    parent[fix] = fix  # a mutual pair: the smaller root stays a root
    while True:
        nxt = parent[parent]
        if bool((nxt == parent).all()):
            break
        parent = nxt
    root_of = parent[label]
    smallest = torch.full((n,), n, dtype=torch.int64, device=label.device).scatter_reduce_(0, root_of, pts, "amin")
    return smallest[root_of]


def _complete(space: BallCells, core: Tensor | None, comp: Tensor, nbr: Tensor, w: Tensor, rho: Tensor) -> Tensor:
    """Edges ``[M-1, 2]`` joining the ``M`` components of ``comp`` into a minimum spanning tree.

    Borůvka over groups of components, with bounds on each point's lightest edge out of its group:
    ``[w, w]`` for a listed edge lighter than the point's radius, ``[rho, listed]`` for an unsearched point,
    float32 bounds from a search (``lo/hi [N, M]``: its lightest edge to each component, searched at most
    once per point). A group's best upper bound decides which of its points are searched (those whose
    lower bound does not exceed it); the points that may still hold the lightest edge get it exactly, by
    differences in float64, so ties are broken by point indices as everywhere else.
    """
    n = comp.shape[0]
    dev = comp.device
    _, cid = torch.unique(comp, return_inverse=True)  # initial components 0..M-1
    m = int(cid.max()) + 1
    lo = torch.full((n, m), _INF, dtype=torch.float64, device=dev)
    hi = torch.full((n, m), _INF, dtype=torch.float64, device=dev)
    searched = torch.zeros(n, dtype=torch.bool, device=dev)
    group = torch.arange(m, device=dev)  # merged group of each component (its smallest component id)
    ids = torch.arange(m, device=dev)
    edges = []

    def bounds() -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per point: group, lower and upper bound on its lightest edge out of the group; per group: best."""
        g = group[cid]
        lw, _ = _first_outside(nbr, w, g, g)
        inside = group[None, :] == g[:, None]  # [N, M]
        slo = torch.where(inside, torch.full_like(lo, _INF), lo).amin(1)
        shi = torch.where(inside, torch.full_like(hi, _INF), hi).amin(1)
        lower = torch.where(searched, slo, torch.where(lw < rho, lw, rho))
        upper = torch.where(searched, torch.minimum(shi, lw), lw)
        best = torch.full((m,), _INF, dtype=torch.float64, device=dev).scatter_reduce_(0, g, upper, "amin")
        return g, lower, upper, best

    def search(rows: Tensor) -> None:
        lo[rows], hi[rows] = space.min_per_group(rows, cid, m, core)
        searched[rows] = True

    while bool((group != group[0]).any()):
        g, lower, upper, best = bounds()
        if bool(torch.isinf(best[group == ids]).any()):
            # A group with no known edge: search its point nearest to a cell of other groups first.
            search(_representatives(space, g, m))
            g, lower, upper, best = bounds()
        need = ~searched & (lower <= best[g])
        if bool(need.any()):
            search(torch.nonzero(need)[:, 0])
            g, lower, upper, best = bounds()
        # The points that may hold their group's lightest edge: exact weight and partner, by differences.
        chosen: dict[int, tuple[float, int]] = {}
        for u in torch.nonzero(lower <= best[g])[:, 0].tolist():
            gu = int(g[u])
            wu, v = _partner(space.x, core, u, torch.nonzero(g != gu)[:, 0])
            key = min(u, v) * n + max(u, v)
            if gu not in chosen or (wu, key) < chosen[gu]:
                chosen[gu] = (wu, key)
        roots = torch.tensor(sorted(chosen), dtype=torch.int64, device=dev)
        keys = torch.tensor([chosen[r][1] for r in sorted(chosen)], dtype=torch.int64, device=dev)
        edges.append(_join(keys, n))
        other = group[cid[torch.where(g[keys // n] == roots, keys % n, keys // n)]]
        group = _merge(group, roots, other)
    return torch.cat(edges)


def _representatives(space: BallCells, g: Tensor, groups: int) -> Tensor:
    """One point per group: the one whose nearest cell holding points of other groups is nearest."""
    c = space.count
    first = torch.full((c,), groups, dtype=torch.int64, device=g.device).scatter_reduce_(0, space.assign, g, "amin")
    last = torch.full((c,), -1, dtype=torch.int64, device=g.device).scatter_reduce_(0, space.assign, g, "amax")
    own = ((first == last)[None, :] & (first[None, :] == g[:, None]))  # [N, c] cells of the point's group only
    reach = torch.where(own, torch.full_like(space.lower, _INF), space.lower).amin(1)
    _, pick = _choose(g, reach, torch.arange(g.numel(), device=g.device), groups)
    return pick[pick < _BIG]


def _partner(x: Tensor, core: Tensor | None, u: int, others: Tensor) -> tuple[float, int]:
    """The lightest edge from ``u`` to ``others`` by coordinate differences: ``(weight, smallest partner)``."""
    d = (x[others] - x[u]).pow(2).sum(-1).sqrt()
    if core is not None:
        d = torch.maximum(d, torch.maximum(core[others], core[u]))
    best = d.min()
    return float(best), int(others[d == best].min())
