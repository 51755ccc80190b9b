"""Where things go on the picture: ring positions (0 .. 2**32-1) to SVG coordinates.

The ring is drawn in a 1000 x 1000 viewBox, position 0 at twelve o'clock, clockwise.
"""
from __future__ import annotations

import math

from .sim.ring import RING_SIZE as RING_SIZE  # the picture's positions are the ring's

VIEW = 1000
CX = CY = VIEW / 2
R_RING = 360  # the ring itself (ownership arcs)
R_VNODE = 360  # vnode dots sit on the ring
R_KEYS_OUTER = 320  # key dots live in a band inside the ring
R_KEYS_INNER = 230
R_LABEL = 430
R_SHARE = 150  # the inner donut: each node's share of the ring

# Okabe-Ito, the colour-blind-safe palette (black swapped for a dark grey that reads on both
# themes); more than eight nodes reuse colours with a different dash/label.
PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#6B6B6B"]


def angle(position: int | float) -> float:
    """Radians clockwise from twelve o'clock."""
    return 2 * math.pi * (float(position) / RING_SIZE)


def point(position: int | float, radius: float) -> tuple[float, float]:
    a = angle(position)
    return CX + radius * math.sin(a), CY - radius * math.cos(a)


def fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def arc_path(start: int | float, end: int | float, radius: float) -> str:
    """A clockwise arc from ring position ``start`` to ``end`` (wrapping if end < start).
    Equal ends mean the whole circle (one vnode owns the whole ring)."""
    span = (float(end) - float(start)) % RING_SIZE or RING_SIZE
    x1, y1 = point(start, radius)
    r = fmt(radius)
    if span > RING_SIZE * 0.999:
        # A full circle cannot be one arc command: draw two halves.
        xm, ym = point(float(start) + RING_SIZE / 2, radius)
        return f"M{fmt(x1)} {fmt(y1)}A{r} {r} 0 0 1 {fmt(xm)} {fmt(ym)}A{r} {r} 0 0 1 {fmt(x1)} {fmt(y1)}"
    x2, y2 = point(float(start) + span, radius)
    large = 1 if span > RING_SIZE / 2 else 0
    return f"M{fmt(x1)} {fmt(y1)}A{r} {r} 0 {large} 1 {fmt(x2)} {fmt(y2)}"


def key_radius(secondary_hash: int) -> float:
    """Spread key dots over a band so that neighbours on the ring do not hide each other."""
    return R_KEYS_INNER + (secondary_hash % 1000) / 1000 * (R_KEYS_OUTER - R_KEYS_INNER)


R_RANK = 300  # a lookup's preference ranks: badges just inside the ring, clear of the node labels
RANK_BADGE = 19  # their radius
LABEL_BADGE = 30  # a node label's circle
R_ROUND_MARK = 248  # a class round's key marks (circle r=13), then the student's name further in
R_ROUND_NAME = 216


def spread(angles: list[float], gap: float) -> list[float]:
    """Angles (radians) moved apart as little as possible so that neighbours on the circle are at
    least ``gap`` apart: labels of things that sit close together fan out around them.

    Runs of labels that would collide are placed as one evenly spaced cluster centred on the
    mean of the angles they want; clusters that then collide merge, until none do. The circle is
    cut at the widest empty gap, so a run never straddles the cut.
    """
    n = len(angles)
    tau = 2 * math.pi
    if n < 2:
        return list(angles)
    if n * gap >= tau:  # no room: space them evenly from the first
        order = sorted(range(n), key=lambda i: angles[i] % tau)
        start = angles[order[0]] % tau
        out = [0.0] * n
        for j, i in enumerate(order):
            out[i] = start + j * tau / n
        return out
    order = sorted(range(n), key=lambda i: angles[i] % tau)
    wanted = [angles[i] % tau for i in order]
    gaps = [(wanted[(j + 1) % n] - wanted[j]) % tau or (tau if n == 1 else 0.0) for j in range(n)]
    cut = max(range(n), key=lambda j: gaps[j]) + 1  # start just after the widest gap
    seq = [(order[(cut + j) % n], wanted[(cut + j) % n]) for j in range(n)]
    line: list[tuple[int, float]] = []  # unwrapped, increasing
    for idx, (i, a) in enumerate(seq):
        while line and a < line[-1][1]:
            a += tau
        line.append((i, a))
    clusters = [[k] for k in range(n)]  # indices into ``line``

    def placed(cluster: list[int]) -> list[float]:
        centre = sum(line[k][1] for k in cluster) / len(cluster)
        first = centre - gap * (len(cluster) - 1) / 2
        return [first + gap * j for j in range(len(cluster))]

    merged = True
    while merged:
        merged = False
        for c in range(len(clusters) - 1):
            if placed(clusters[c])[-1] + gap > placed(clusters[c + 1])[0] + 1e-12:
                clusters[c:c + 2] = [clusters[c] + clusters[c + 1]]
                merged = True
                break
    out = [0.0] * n
    for cluster in clusters:
        for k, a in zip(cluster, placed(cluster)):
            out[line[k][0]] = a % tau
    return out


def polar(a: float, radius: float) -> tuple[float, float]:
    """The point at angle ``a`` (radians clockwise from twelve o'clock)."""
    return CX + radius * math.sin(a), CY - radius * math.cos(a)
