# Copyright 2026 ccl_perception maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Procedural OBJ meshes with texture coordinates (pybullet can only texture meshes with UVs).

Each builder returns ``(vertices (V, 3) m, normals (V, 3), uvs (V, 2) in [0, 1], faces (F, 3)
vertex indices)`` centred at the origin; :func:`write_obj` writes them as a Wavefront OBJ.
UV layouts put different faces on different parts of the texture, so the sides of an object
look different from each other.
"""
from __future__ import annotations

import numpy as np


def box(size) -> tuple:
    """Box with edges ``size = (sx, sy, sz)`` m; the 6 faces use the cells of a 3x2 UV atlas."""
    hx, hy, hz = (0.5 * float(s) for s in size)
    # (normal, u axis, v axis) per face
    faces = [((1, 0, 0), (0, 1, 0), (0, 0, 1)), ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),
             ((0, 1, 0), (-1, 0, 0), (0, 0, 1)), ((0, -1, 0), (1, 0, 0), (0, 0, 1)),
             ((0, 0, 1), (1, 0, 0), (0, 1, 0)), ((0, 0, -1), (1, 0, 0), (0, -1, 0))]
    half = np.array([hx, hy, hz])
    verts, norms, uvs, tris = [], [], [], []
    for k, (n, a, b) in enumerate(faces):
        n, a, b = (np.array(v, dtype=float) for v in (n, a, b))
        u0, v0 = (k % 3) / 3.0, (k // 3) / 2.0
        base = len(verts)
        for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            verts.append((n + su * a + sv * b) * half)
            norms.append(n)
            uvs.append((u0 + (su + 1) / 6.0 * 0.98 + 0.003, v0 + (sv + 1) / 4.0 * 0.98 + 0.005))
        tris += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    return np.array(verts), np.array(norms), np.array(uvs), np.array(tris)


def cylinder(radius: float, height: float, segments: int = 32) -> tuple:
    """Cylinder along z; the side uses the lower 3/4 of the texture, the caps the upper quarter."""
    verts, norms, uvs, tris = [], [], [], []
    h = 0.5 * height
    for i in range(segments + 1):
        a = 2 * np.pi * i / segments
        c, s = np.cos(a), np.sin(a)
        for z, v in ((-h, 0.0), (h, 0.74)):
            verts.append((radius * c, radius * s, z))
            norms.append((c, s, 0.0))
            uvs.append((i / segments, v))
    for i in range(segments):
        a, b = 2 * i, 2 * i + 2
        tris += [(a, b, b + 1), (a, b + 1, a + 1)]
    for z, sign, uc in ((h, 1.0, 0.25), (-h, -1.0, 0.75)):
        centre = len(verts)
        verts.append((0.0, 0.0, z))
        norms.append((0.0, 0.0, sign))
        uvs.append((uc, 0.875))
        for i in range(segments + 1):
            a = 2 * np.pi * i / segments
            verts.append((radius * np.cos(a), radius * np.sin(a), z))
            norms.append((0.0, 0.0, sign))
            uvs.append((uc + 0.24 * np.cos(a), 0.875 + 0.12 * np.sin(a)))
        for i in range(segments):
            j, k = centre + 1 + i, centre + 2 + i
            tris.append((centre, j, k) if sign > 0 else (centre, k, j))
    return np.array(verts), np.array(norms), np.array(uvs), np.array(tris)


def ellipsoid(radii, rings: int = 16, segments: int = 32) -> tuple:
    """Ellipsoid with semi-axes ``radii = (rx, ry, rz)`` m and a latitude/longitude UV map."""
    r = np.asarray(radii, dtype=float)
    verts, norms, uvs, tris = [], [], [], []
    for i in range(rings + 1):
        th = np.pi * i / rings
        for j in range(segments + 1):
            ph = 2 * np.pi * j / segments
            d = np.array([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)])
            verts.append(d * r)
            n = d / np.maximum(r, 1e-9)
            norms.append(n / np.linalg.norm(n))
            uvs.append((j / segments, 1.0 - i / rings))
    row = segments + 1
    for i in range(rings):
        for j in range(segments):
            a, b = i * row + j, (i + 1) * row + j
            tris += [(a, b, b + 1), (a, b + 1, a + 1)]
    return np.array(verts), np.array(norms), np.array(uvs), np.array(tris)


def write_obj(path: str, mesh: tuple) -> None:
    """Write ``(vertices, normals, uvs, faces)`` as a Wavefront OBJ (1-based ``v/vt/vn`` faces)."""
    verts, norms, uvs, faces = mesh
    lines = [f'v {x:.6f} {y:.6f} {z:.6f}' for x, y, z in verts]
    lines += [f'vt {u:.6f} {v:.6f}' for u, v in uvs]
    lines += [f'vn {x:.6f} {y:.6f} {z:.6f}' for x, y, z in norms]
    lines += ['f ' + ' '.join(f'{i + 1}/{i + 1}/{i + 1}' for i in tri) for tri in faces]
    with open(path, 'w', encoding='ascii') as f:
        f.write('\n'.join(lines) + '\n')
