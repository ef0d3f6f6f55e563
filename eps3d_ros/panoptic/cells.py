"""Exact neighbour searches over a partition of the points into balls ("cells"), in torch.

The points are split into ``count`` cells by a few seeded Lloyd (k-means) iterations; each cell is a ball
(centre, radius), so ``|x_p - c_b| - r_b`` is a lower bound on the distance from ``p`` to any point of
cell ``b``. Searches then compute exact distance blocks ``[rows of one cell, points of the cells that
may matter]`` and skip every cell whose lower bound already rules it out. Instance features form tight,
well separated groups, where this skips most of the N^2 pairs; with ``count = 1`` the searches are plain
blocked all-pairs passes (what a GPU prefers). Memory: ``[N, count]`` bounds plus one block of at most
``block_elems`` values.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

__all__ = ["BallCells"]

# index_reduce_ (per-group minima of a block, the fastest such reduction on the CPU) is marked beta.
warnings.filterwarnings("ignore", message=r"index_reduce\(\) is in beta", category=UserWarning)

_INF = float("inf")
_U32 = 2.0**-24  # float32 unit roundoff


class BallCells:
    """``x [N, D]`` float64 (centred) split into at most ``count`` balls."""

    def __init__(self, x: Tensor, count: int, block_elems: int = 1 << 22, iters: int = 3, seed: int = 0) -> None:
        n = x.shape[0]
        dev = x.device
        c = max(1, min(int(count), n))
        self.x = x
        self.block_elems = max(1, int(block_elems))
        if c == 1:
            assign = torch.zeros(n, dtype=torch.int64, device=dev)
            centers = x.mean(0, keepdim=True)
        else:
            g = torch.Generator().manual_seed(seed)
            centers = x[torch.randperm(n, generator=g)[:c].to(dev)]
            for _ in range(iters):
                assign = torch.cdist(x, centers).argmin(1)
                sums = torch.zeros_like(centers).index_add_(0, assign, x)
                size = torch.bincount(assign, minlength=c)
                centers = torch.where(size[:, None] > 0, sums / size.clamp(min=1)[:, None], centers)
        dist = torch.cdist(x, centers)  # [N, c]
        assign = dist.argmin(1)
        # Margins: cdist's rounding (|x|^2-scale, float64) must never make a bound too large.
        slack = 1e-9 * (1.0 + float(x.abs().max()))
        self.radius = torch.zeros(c, dtype=x.dtype, device=dev).scatter_reduce_(
            0, assign, dist.gather(1, assign[:, None])[:, 0], "amax") + slack
        self.lower = (dist - self.radius[None, :] - slack).clamp_min_(0)  # [N, c] lower bounds per point
        self.center_dist = torch.cdist(centers, centers)
        self.assign = assign
        self.order = torch.argsort(assign, stable=True)
        self.size = torch.bincount(assign, minlength=c)
        self.start = torch.cumsum(self.size, 0) - self.size
        self.count = c
        self.sq = (x * x).sum(1)

    def members(self, cells: Tensor) -> Tensor:
        """Point indices of ``cells`` (``[C']`` cell ids or a ``[count]`` mask), cell by cell."""
        if cells.dtype == torch.bool:
            cells = torch.nonzero(cells)[:, 0]
        length = self.size[cells]
        base = torch.repeat_interleave(self.start[cells], length)
        offset = torch.arange(base.numel(), device=base.device) - torch.repeat_interleave(
            torch.cumsum(length, 0) - length, length)
        return self.order[base + offset]

    def row_blocks(self, rows: Tensor | None = None):
        """``(cell, rows of that cell)`` for ``rows`` (default: all points), at most ``block_elems / N``
        rows at a time (so that even an all-points block stays within the budget)."""
        n = self.x.shape[0]
        if rows is None:
            rows = self.order
        else:
            rows = rows[torch.argsort(self.assign[rows], stable=True)]
        cells = self.assign[rows]
        step = max(1, self.block_elems // n)
        bounds = torch.nonzero(torch.diff(cells, prepend=cells[:1] - 1))[:, 0].tolist() + [rows.numel()]
        for s, e in zip(bounds[:-1], bounds[1:]):
            for i in range(s, e, step):
                yield int(cells[s]), rows[i:min(e, i + step)]

    def knn(self, k: int) -> tuple[Tensor, Tensor, Tensor]:
        """Each point's k nearest other points: ``(indices [N, k], distances [N, k], radius [N])``.

        Candidates come from float32 blocks ``|b|^2 - 2 a.b`` and a top-k, first over the cells nearest to
        the rows' cell, then over every cell whose bound is below a row's k-th candidate. The listed
        distances are recomputed in float64 from differences and sorted by ``(distance, index)``.
        ``radius`` bounds from below the distance to every point *not* listed: the k-th float32 value
        less a bound on float32's rounding, or the bound of a skipped cell, whichever is smaller.
        """
        x, n, dev = self.x, self.x.shape[0], self.x.device
        xf = x.float()
        sqf = (xf * xf).sum(1)
        norm = self.sq.sqrt()
        # Rounding of |b|^2 - 2 a.b (a D-term dot product, the bias, the coordinates' rounding to float32):
        # at most (D + 3) u (|a| + |b|)^2 to first order; (D + 8) u leaves a margin.
        err = (x.shape[1] + 8) * _U32 * (norm + norm.max()).pow(2)
        idx = torch.empty(n, k, dtype=torch.int64, device=dev)
        radius = torch.empty(n, dtype=x.dtype, device=dev)
        by_centre = torch.argsort(self.center_dist, dim=1, stable=True)  # [c, c] nearest cells first
        near_count = torch.cumsum(self.size[by_centre], dim=1)
        for cell, rows in self.row_blocks():
            # first the nearest cells holding about 2k points, which gives each row a k-th candidate
            first = by_centre[cell, : int((near_count[cell] < 2 * (k + 1)).sum()) + 1]
            done = torch.zeros(self.count, dtype=torch.bool, device=dev)
            done[first] = True
            val, ind = self._top(xf, sqf, rows, self.members(first), k)
            ub = (val[:, -1].double() + self.sq[rows] + err[rows]).clamp_min(0).sqrt()  # >= true k-th
            more = (self.lower[rows] < ub[:, None]).any(0) & ~done
            if bool(more.any()):
                v2, i2 = self._top(xf, sqf, rows, self.members(more), k)
                val, pos = torch.cat([val, v2], 1).topk(k, dim=1, largest=False)
                ind = torch.cat([ind, i2], 1).gather(1, pos)
                val, ord2 = val.sort(1)
                ind = ind.gather(1, ord2)
                done |= more
            idx[rows] = ind
            skipped = torch.where(done[None, :], torch.full_like(self.lower[rows], _INF), self.lower[rows]).amin(1)
            listed = (val[:, -1].double() + self.sq[rows] - err[rows]).clamp_min(0).sqrt()
            radius[rows] = torch.minimum(listed, skipped)
        dist = (x[:, None, :] - x[idx]).pow(2).sum(-1).sqrt()  # [N, k] exact
        order = torch.argsort(idx, dim=1)
        idx, dist = idx.gather(1, order), dist.gather(1, order)
        order = torch.argsort(dist, dim=1, stable=True)
        return idx.gather(1, order), dist.gather(1, order), radius

    def _top(self, xf: Tensor, sqf: Tensor, rows: Tensor, cols: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """The k smallest ``|b|^2 - 2 a.b`` (float32, ascending) of each row over ``cols`` (self excluded;
        padded with +inf when fewer than k)."""
        d2 = torch.addmm(sqf[cols][None, :], xf[rows], xf[cols].T, alpha=-2)  # [r, cols]
        d2.masked_fill_(rows[:, None] == cols[None, :], _INF)
        kk = min(k, cols.numel())
        val, pos = d2.topk(kk, dim=1, largest=False)
        ind = cols[pos]
        if kk < k:
            pad = k - kk
            val = torch.cat([val, val.new_full((rows.numel(), pad), _INF)], 1)
            ind = torch.cat([ind, ind.new_zeros(rows.numel(), pad)], 1)
        return val, ind

    def min_per_group(self, rows: Tensor, group: Tensor, groups: int,
                      core: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """For each of ``rows``, its lightest edge to every group of points (``group [N]`` in
        ``0..groups-1``; mutual reachability weights when ``core`` is given), from float32 blocks over all
        points: ``(lower [R, groups], upper [R, groups])`` float64 bounds on the exact weight (+inf for
        empty groups). The bounds are a few float32 roundings apart (see :meth:`knn`)."""
        x, dev = self.x, self.x.device
        xf = x.float()
        sqf = (xf * xf).sum(1)
        norm = self.sq.sqrt()
        err = (x.shape[1] + 8) * _U32 * (norm + norm.max()).pow(2)
        core_sq = (core * core).float() if core is not None else None
        lo = torch.empty(rows.numel(), groups, dtype=x.dtype, device=dev)
        hi = torch.empty_like(lo)
        step = max(1, self.block_elems // x.shape[0])
        for i in range(0, rows.numel(), step):
            r = rows[i:i + step]
            d2 = torch.addmm(sqf[None, :], xf[r], xf.T, alpha=-2)  # [r, N] squared distance less |a|^2
            if core_sq is not None:
                d2 = torch.maximum(d2, core_sq[None, :] - sqf[r][:, None])
            red = torch.full((groups, r.numel()), _INF, dtype=torch.float32, device=dev)
            red.index_reduce_(0, group, d2.T, "amin")
            t = red.T.double() + self.sq[r][:, None]
            lo[i:i + step] = (t - err[r][:, None]).clamp_min(0).sqrt()
            hi[i:i + step] = (t + err[r][:, None]).clamp_min(0).sqrt()
        if core is not None:
            lo, hi = torch.maximum(lo, core[rows][:, None]), torch.maximum(hi, core[rows][:, None])
        return lo, hi
