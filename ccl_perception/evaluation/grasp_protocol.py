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
The two grasp protocols of benchmark v2 and their scene schedules.

``visible`` (the paper's Table II: "the current target object is always visible and
graspable", cluttered scenes "with frequent background changes, including reflective surfaces
and materials of similar color as the target object"):

- every present scene passes :func:`ccl_perception.sim.scene_check.check_target` (target in
  view, both grasp-axis points unoccluded, width within the stroke); the world tries the
  seed's next arrangement until one does (``SimWorldConfig.scene_rule='visible'``);
- every scene stands on a **held-out** table photo (never the training table). For each
  target, its scenes go through :func:`surface_plan`: first the held-out table whose colour is
  closest to the target's (Lab distance of medians), then the closest **glossy** one
  (benchmark_v2.yaml ``finish: glossy``, rendered with a highlight), then the others in a
  seeded order; absent scenes of a target use the same plan (the first absent scene is on the
  table most like the missing target).

``placed`` (the benchmark before issue 18, kept as a second row): the target is placed at
random on the training table and may be out of view or hidden.
"""
from __future__ import annotations

import numpy as np

#: The protocols: ``SimWorldConfig`` fields over ``grasp_scene.v2_world_config``.
PROTOCOLS = {
    'visible': {'scene_rule': 'visible', 'surfaces': 'heldout'},
    'placed': {'scene_rule': 'placed', 'surfaces': ()},
}


def heldout_surfaces() -> tuple:
    """Keys of the held-out table photos of benchmark v2 (selection order)."""
    from ccl_perception.sim.catalogue_v2 import load_selection
    return tuple(s.key for s in load_selection().surfaces if s.split == 'heldout')


def glossy_surfaces() -> set:
    """Keys of the table photos with ``finish: glossy``."""
    from ccl_perception.sim.catalogue_v2 import load_selection
    return {s.key for s in load_selection().surfaces if s.finish == 'glossy'}


def world_fields(protocol: str) -> dict:
    """``SimWorldConfig`` fields of ``protocol`` (ValueError naming the known ones)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f'protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}')
    fields = dict(PROTOCOLS[protocol])
    if fields['surfaces'] == 'heldout':
        fields['surfaces'] = heldout_surfaces()
    return fields


def median_lab(rgb: np.ndarray) -> np.ndarray:
    """``(3,)`` median CIE Lab (OpenCV's 8-bit scale) of ``(N, 3)`` or ``(H, W, 3)`` uint8 RGB."""
    import cv2
    px = np.asarray(rgb, np.uint8).reshape(-1, 1, 3)
    return np.median(cv2.cvtColor(px, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(float), axis=0)


def surface_colours(world) -> dict:
    """``{surface key: median Lab}`` of the table photos of ``world`` (its own files)."""
    import cv2
    out = {}
    for key, path in world._surfaces.items():
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'cannot read table photo {path}')
        out[key] = median_lab(img[:, :, ::-1])
    return out


def target_colour(world, name: str) -> np.ndarray:
    """Median Lab of ``name`` in its top-down reference view (its segmentation mask)."""
    render, _ = world.reference_view(name)
    return median_lab(render.rgb[render.segmentation == world.body(name)])


def surface_plan(world, names, surfaces, glossy, seed: int) -> dict:
    """
    For each target the order in which its scenes use the table photos.

    Args:
        world: the grasp world (its reference views and table photos).
        names: target names.
        surfaces: the candidate table keys (held-out ones).
        glossy: keys of glossy tables.
        seed: seeds the order of the tables after the first two (per target: ``[seed, i]``
            for the ``i``-th name).

    Returns:
        ``{name: [(surface, tags), ...]}`` with every candidate once: the closest in colour
        (tag ``'target-coloured'``), the closest glossy one (``'glossy'``), then the rest in
        a seeded permutation (tags ``'glossy'`` where it applies, else none).
    """
    colours = surface_colours(world)
    plan = {}
    for i, name in enumerate(names):
        order = [str(k) for k in np.random.default_rng([seed, i]).permutation(sorted(surfaces))]
        c = target_colour(world, name)
        by_colour = sorted(surfaces, key=lambda k: float(np.linalg.norm(colours[k] - c)))
        first = [by_colour[0]]
        shiny = [k for k in by_colour if k in glossy and k not in first]
        first += shiny[:1]
        rest = [k for k in order if k not in first]
        plan[name] = [(k, tuple(t for t, on in (('target-coloured', j == 0),
                                                ('glossy', k in glossy)) if on))
                      for j, k in enumerate(first + rest)]
    return plan


def schedule(names, grasps: int, absent: int, seed: int, plan: dict = None) -> list:
    """
    Return the scenes of a benchmark run: ``[(seed, target, present, surface, tags)]``.

    Scene ``i`` has seed ``seed + i`` and target ``names[i % len(names)]``; the first
    ``grasps`` scenes have the target, the next ``absent`` do not. With a ``plan``
    (:func:`surface_plan`) the ``j``-th present (absent) scene of a target uses entry ``j``
    of its plan (cyclically); without, surface None (the world's own) and no tags.
    """
    out, count = [], {}
    for i in range(grasps + absent):
        name, present = names[i % len(names)], i < grasps
        j = count.get((name, present), 0)
        count[(name, present)] = j + 1
        surface, tags = (None, ()) if plan is None else plan[name][j % len(plan[name])]
        out.append((seed + i, name, present, surface, tags))
    return out
