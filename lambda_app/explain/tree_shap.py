"""Exact path-dependent Tree SHAP in numpy, vectorised over rows and root-to-leaf paths.

Why by hand: the shap library is large (numba, llvmlite, scikit-learn), and the serving image carries
neither; ONNX Runtime has no attribution operators. The arithmetic is small once a tree is seen as its
paths (the decomposition GPUTreeShap uses, Mitchell et al. 2022): on one path with ``m`` distinct
columns, each column ``j`` has a zero fraction ``z_j`` (the share of training cover that follows the
path there) and a one fraction ``o_j`` (1 when the row's value lies in the path's interval, else 0).
Path-dependent Tree SHAP (Lundberg et al. 2020) gives column ``j`` the share

    phi_j = v (o_j - z_j) sum_k  k! (m - 1 - k)! / m!  [t^k] prod_{i != j} (z_i + o_i t)

of the path's leaf value ``v``, and a row's attribution is the sum over every path. Summed over ``j``
these give ``v (prod o - prod z)``, so base value (``sum v prod z``) plus contributions equals the
model's output exactly (additivity holds for any cover shares: it is the path game's own efficiency).

The product over ``i != j`` is the full product divided by ``(z_j + o_j t)``: a scalar division when
``o_j`` is 0, a synthetic division (stable: it multiplies errors by ``z_j <= 1``) when it is 1. The
cost is ``O(m^2)`` array operations per group of paths of width ``m``, each over rows x paths.
"""

from __future__ import annotations

from math import factorial

import numpy as np

from lambda_app.explain.artifact import PathGroup, TreePaths

CHUNK_ELEMENTS = 1 << 21
"""Rows are explained in chunks so that rows x path columns stays near this (~16 MB per array)."""


class _Group:
    """A PathGroup with what every request reuses: Shapley weights, sort order by column."""

    def __init__(self, group: PathGroup) -> None:
        m = group.width
        self.group = group
        self.m = m
        self.weights = np.array([factorial(k) * factorial(m - 1 - k) / factorial(m) for k in range(m)])
        self.prod_zero = np.prod(group.zero, axis=1)  # the chance a "missing" row follows each path
        self.zero_t = np.ascontiguousarray(group.zero.T)  # (m, paths)


class TreeShap:
    """Tree SHAP for one ensemble, built once per loaded model."""

    def __init__(self, paths: TreePaths, inputs: int) -> None:
        self.paths = paths
        self.inputs = inputs
        self.outputs = int(paths.offset.shape[0])
        self._groups = [_Group(g) for g in paths.groups if len(g.column)]
        self.base = paths.offset + sum(
            (g.prod_zero @ g.group.value for g in self._groups), start=np.zeros(self.outputs)
        )
        # One flat list of (path, column) elements over all groups, sorted by column once: the per-row
        # shares are then summed per column with one np.add.reduceat.
        columns = np.concatenate([g.group.column.reshape(-1) for g in self._groups] or [np.zeros(0, np.intp)])
        self._order = np.argsort(columns, kind="stable")
        sorted_columns = columns[self._order]
        self._starts = (
            np.flatnonzero(np.r_[True, sorted_columns[1:] != sorted_columns[:-1]])
            if len(columns)
            else columns
        )
        self._present = sorted_columns[self._starts] if len(columns) else columns
        values = [np.repeat(g.group.value, g.m, axis=0) for g in self._groups]
        flat = np.concatenate(values) if values else np.zeros((0, self.outputs))
        self._values = np.ascontiguousarray(flat[self._order].T)  # (outputs, elements) in column order
        self._elements = len(columns)

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        """The values the trees compare: scaled when a scaler comes first, rounded like the model."""
        paths = self.paths
        if paths.shift is not None and paths.scale is not None:
            x = (x - paths.shift) / paths.scale
        if paths.float32:
            x = x.astype(np.float32).astype(np.float64)
        return x

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The ensemble's raw output (rows, outputs), from the paths the rows follow (for checks)."""
        x = self._inputs(np.asarray(x, dtype=np.float64))
        total = np.tile(self.paths.offset, (len(x), 1))
        for g in self._groups:
            follows = self._follows(x, g).all(axis=2)
            total += follows @ g.group.value
        return total

    def shap_values(self, x: np.ndarray) -> np.ndarray:
        """Contributions (rows, inputs, outputs) of each graph input column; with ``base`` they add up
        to the raw output."""
        x = self._inputs(np.asarray(x, dtype=np.float64))
        result = np.zeros((len(x), self.inputs, self.outputs))
        if not self._elements:
            return result
        step = max(1, CHUNK_ELEMENTS // self._elements)
        for start in range(0, len(x), step):
            result[start : start + step] = self._chunk(x[start : start + step])
        return result

    def _follows(self, x: np.ndarray, g: _Group) -> np.ndarray:
        values = x[:, g.group.column]  # (rows, paths, m)
        if self.paths.split == "le":
            return (values > g.group.lower) & (values <= g.group.upper)
        return (values >= g.group.lower) & (values < g.group.upper)

    def _chunk(self, x: np.ndarray) -> np.ndarray:
        rows = len(x)
        shares = np.concatenate([self._shares(x, g).reshape(rows, -1) for g in self._groups], axis=1)
        shares = shares[:, self._order]
        result = np.zeros((rows, self.inputs, self.outputs))
        for output in range(self.outputs):
            weighted = shares * self._values[output]
            result[:, self._present, output] = np.add.reduceat(weighted, self._starts, axis=1)
        return result

    def _shares(self, x: np.ndarray, g: _Group) -> np.ndarray:
        """(rows, paths, m): each element's ``(o_j - z_j) x weight``; times the leaf value it is phi_j.

        Coefficients and columns sit on the first axis so each operation runs on one contiguous
        rows x paths array.
        """
        m, rows, paths = g.m, len(x), len(g.group.column)
        one = np.moveaxis(self._follows(x, g), 2, 0).reshape(m, rows * paths).astype(np.float64)
        zero = np.tile(g.zero_t, (1, rows))  # (m, rows x paths)
        # The polynomial prod_i (z_i + o_i t): poly[k] is the coefficient of t^k.
        poly = [np.ones(rows * paths)]
        for i in range(m):
            shifted = [poly[k - 1] * one[i] for k in range(1, i + 2)]
            poly = [c * zero[i] for c in poly] + [np.zeros(rows * paths)]
            for k in range(1, i + 2):
                poly[k] += shifted[k - 1]
        weights = g.weights
        # o_j = 0: the product without j is poly / z_j (degree <= m - 1, as column j added no t).
        weighted_full = sum(poly[k] * weights[k] for k in range(m))
        shares = np.empty((m, rows * paths))
        for j in range(m):
            z = zero[j]
            # o_j = 1: synthetic division of poly by (z_j + t), from the top coefficient down.
            q = poly[m]
            total = q * weights[m - 1]
            for k in range(m - 1, 0, -1):
                q = poly[k] - z * q
                total += q * weights[k - 1]
            o = one[j]
            shares[j] = (o - z) * np.where(o > 0, total, weighted_full / z)
        return np.moveaxis(shares.reshape(m, rows, paths), 0, 2)
