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
Catalogue of distinct textured objects and their seen/unseen split.

An :class:`ObjectSpec` is a mesh (a procedural box / cylinder / ellipsoid, or a textured
pybullet_data model) plus a texture (a procedural one by seed, or the model's own image).
Every spec has a unique name; the pairing of shape, size and texture makes each object look
distinct, as the paper assumes (objects are unique within a scene).

The catalogue is a pure function of ``seed``; :func:`split_catalogue` deterministically marks
the first ``n_train`` objects as *seen* (training set) and the rest as *unseen* (evaluation only).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import os

import numpy as np
import pybullet_data

# pybullet_data models with their own UV-mapped textures:
# name -> (obj file, texture file or None (procedural), longest side in m)
LIBRARY_MODELS = {
    'duck': ('duck.obj', 'duckCM.png', 0.09),
    'soccerball': ('soccerball.obj', 'colors16.png', 0.07),
    'jenga': ('jenga/jenga.obj', 'jenga/jenga.png', 0.10),
    'domino': ('domino/domino.obj', 'domino/domino.jpg', 0.09),
    'torus': ('torus/torus_textured.obj', None, 0.09),
}
_LIBRARY_SCALE_AXES = {'jenga': (1.0, 0.35, 0.22)}  # jenga.obj is a unit cube: make it a block


@dataclass(frozen=True)
class ObjectSpec:
    """
    One distinct object.

    Attributes:
        name: unique name (used in pairs files and frame metadata).
        shape: 'box' | 'cylinder' | 'ellipsoid' | 'library' | 'parts'.
        size: shape parameters in metres: box (sx, sy, sz); cylinder (radius, height);
            ellipsoid (rx, ry, rz); library (longest side,); parts (x, y, z extents of the
            bounding box, already at real size).
        texture_seed: seed of the procedural texture, or -1 to use ``texture_file``
            (or, for 'parts', the textures named in the parts' MTL files).
        mesh_file: OBJ path for library models ('' for procedural shapes).
        texture_file: image path for library models with their own texture.
        mass: kg.
        parts: for 'parts': :class:`ccl_perception.sim.furniture.MeshPart` tuple (one OBJ per
            material, metres, centred at the object frame).
        collision_file: for 'parts': OBJ whose convex hull is the collision shape.
    """

    name: str
    shape: str
    size: tuple
    texture_seed: int = -1
    mesh_file: str = ''
    texture_file: str = ''
    mass: float = 0.1
    scale_axes: tuple = field(default=(1.0, 1.0, 1.0))
    parts: tuple = ()
    collision_file: str = ''


def _procedural(rng: np.random.Generator, index: int) -> ObjectSpec:
    shape = ('box', 'cylinder', 'ellipsoid')[index % 3]
    if shape == 'box':
        size = tuple(float(v) for v in np.sort(rng.uniform(0.03, 0.10, 3))[::-1])
        size = (size[0], size[1], max(size[2], 0.025))
    elif shape == 'cylinder':
        size = (float(rng.uniform(0.02, 0.04)), float(rng.uniform(0.04, 0.10)))
    else:
        size = tuple(float(v) for v in rng.uniform(0.02, 0.045, 3))
    return ObjectSpec(name=f'{shape}_{index:03d}', shape=shape, size=size,
                      texture_seed=int(rng.integers(0, 2**31 - 1)))


def object_catalogue(seed: int = 0, n_procedural: int = 30) -> list:
    """
    All objects: the library models followed by ``n_procedural`` procedural ones.

    The library models are interleaved so that a prefix split puts some of them on each side.
    """
    rng = np.random.default_rng(seed)
    data = pybullet_data.getDataPath()
    library = []
    for name, (mesh, tex, longest) in LIBRARY_MODELS.items():
        library.append(ObjectSpec(
            name=name, shape='library', size=(longest,),
            texture_seed=-1 if tex else int(rng.integers(0, 2**31 - 1)),
            mesh_file=os.path.join(data, mesh),
            texture_file=os.path.join(data, tex) if tex else '',
            scale_axes=_LIBRARY_SCALE_AXES.get(name, (1.0, 1.0, 1.0))))
    procedural = [_procedural(rng, i) for i in range(n_procedural)]
    out, lib = [], list(library)
    for i, spec in enumerate(procedural):
        if i % 6 == 0 and lib:
            out.append(lib.pop(0))
        out.append(spec)
    return out + lib


def split_catalogue(catalogue: list, n_train: int) -> tuple:
    """``(seen, unseen)``: the first ``n_train`` objects are the training ('seen') objects."""
    if not 0 < n_train < len(catalogue):
        raise ValueError(f'n_train must be in [1, {len(catalogue) - 1}], got {n_train}')
    return list(catalogue[:n_train]), list(catalogue[n_train:])
