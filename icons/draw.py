#!/usr/bin/env python3
"""Draws Switchboard's icons as PNG with no imaging library: each pixel is sampled 4x4 against
simple shapes (distance functions), so edges stay smooth at 16-24 px in a panel.

Tray states share one silhouette (a disc with a dark rim, readable on light and dark panels)
and differ by colour and glyph: ok (a switch arrow), degraded (!), down (x), paused (||).
Run: python3 icons/draw.py  (writes the PNGs beside this file)."""
import math, struct, zlib, os

def png(path, w, h, px):
    raw = b"".join(b"\x00" + bytes(px[y * w * 4:(y + 1) * w * 4]) for y in range(h))
    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    open(path, "wb").write(data)

def seg(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - ax - t * dx, py - ay - t * dy)

def render(size, layers):
    """layers: list of (inside(x, y) -> bool in unit coords, rgba); later layers paint over."""
    px = []
    n = 4
    for y in range(size):
        for x in range(size):
            acc = [0.0, 0.0, 0.0, 0.0]
            for sy in range(n):
                for sx in range(n):
                    u = (x + (sx + 0.5) / n) / size
                    v = (y + (sy + 0.5) / n) / size
                    col = (0, 0, 0, 0)
                    for inside, rgba in layers:
                        if inside(u, v):
                            col = rgba
                    a = col[3] / 255
                    for i in range(3):
                        acc[i] += col[i] * a
                    acc[3] += a
            a = acc[3] / (n * n)
            if a > 0:
                px += [round(acc[i] / acc[3]) for i in range(3)] + [round(a * 255)]
            else:
                px += [0, 0, 0, 0]
    return px

def disc(r):
    return lambda u, v: math.hypot(u - 0.5, v - 0.5) <= r

def stroke(points, width):
    pairs = list(zip(points, points[1:]))
    return lambda u, v: any(seg(u, v, a[0], a[1], b[0], b[1]) <= width / 2 for a, b in pairs)

def dot(cx, cy, r):
    return lambda u, v: math.hypot(u - cx, v - cy) <= r

def rect(x0, y0, x1, y1):
    return lambda u, v: x0 <= u <= x1 and y0 <= v <= y1

WHITE = (255, 255, 255, 255)
RIM = (20, 24, 30, 200)
STATES = {
    "ok": ((22, 163, 74, 255), [stroke([(0.27, 0.38), (0.62, 0.38)], 0.11),
                                stroke([(0.27, 0.62), (0.73, 0.62)], 0.11),
                                stroke([(0.52, 0.26), (0.73, 0.38), (0.52, 0.50)], 0.11)]),
    "degraded": ((217, 119, 6, 255), [stroke([(0.5, 0.25), (0.5, 0.58)], 0.13), dot(0.5, 0.74, 0.075)]),
    "down": ((220, 38, 38, 255), [stroke([(0.32, 0.32), (0.68, 0.68)], 0.13),
                                  stroke([(0.68, 0.32), (0.32, 0.68)], 0.13)]),
    "paused": ((107, 114, 128, 255), [rect(0.33, 0.28, 0.45, 0.72), rect(0.55, 0.28, 0.67, 0.72)]),
}

here = os.path.dirname(os.path.abspath(__file__))
for name, (colour, glyph) in STATES.items():
    size = 64
    layers = [(disc(0.48), RIM), (disc(0.43), colour)] + [(g, WHITE) for g in glyph]
    png(os.path.join(here, f"tray-{name}.png"), size, size, render(size, layers))

# The app icon: the ok glyph on a blue rounded square.
def rounded(r):
    def inside(u, v):
        dx = max(abs(u - 0.5) - (0.5 - r - 0.04), 0)
        dy = max(abs(v - 0.5) - (0.5 - r - 0.04), 0)
        return math.hypot(dx, dy) <= r
    return inside
for size, fname in [(128, "icon.png"), (32, "32x32.png")]:
    layers = [(rounded(0.2), (37, 99, 235, 255))] + [(g, WHITE) for g in STATES["ok"][1]]
    png(os.path.join(here, fname), size, size, render(size, layers))
