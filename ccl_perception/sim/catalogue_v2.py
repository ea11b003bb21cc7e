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
Benchmark v2 objects and table surfaces: the committed selection, converted on demand.

``benchmark_v2.yaml`` (next to this file) names 24 everyday objects (12 *seen*: the training
capture; 12 *unseen*: evaluation only) and table-top photos (*train* and *heldout*) from
the ``sweethome3d-furniture`` archives, with their real sizes, licences and authors.
:func:`build_catalogue` converts them (:mod:`ccl_perception.sim.furniture`, cached) into
:class:`~ccl_perception.sim.objects.ObjectSpec` objects and PNG paths. A model or photo that
is missing or corrupt in the installed archives is skipped with a logged reason (and listed in
``skipped``); the catalogue still builds. ``NOTICE`` is :func:`notice_text`.

    python -m ccl_perception.sim.catalogue_v2            # table: sizes, licences, graspable
    python -m ccl_perception.sim.catalogue_v2 --notice   # the attribution file
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import logging
import os
import sys

from ccl_perception.sim import furniture
from ccl_perception.sim.objects import ObjectSpec
import yaml

SELECTION_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'benchmark_v2.yaml')
GRIPPER_STROKE_CM = 8.0     # Franka Hand: 2 x 4 cm
GRASP_CLEARANCE_CM = 0.3    # an object fits between the open fingers with this margin
DENSITY = 350.0             # kg/m^3 of the bounding box (hollow / mixed everyday objects)
MASS_RANGE = (0.03, 0.6)    # kg

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObjectEntry:
    """One selected object (a row of ``objects:`` in the YAML)."""

    key: str
    split: str                 # 'seen' | 'unseen'
    archive: str
    entry: str
    name: str
    size_cm: tuple             # catalogue [width, depth, height]
    licence: str
    author: str

    @property
    def grasp_width_cm(self) -> float:
        """
        Second-smallest side.

        What the gripper closes across when the object rests on its largest face (the
        narrowest horizontal side in that pose).
        """
        return float(sorted(self.size_cm)[1])

    @property
    def graspable(self) -> bool:
        """Return True when :attr:`grasp_width_cm` fits the Franka Hand's 8 cm stroke (3 mm)."""
        return self.grasp_width_cm <= GRIPPER_STROKE_CM - GRASP_CLEARANCE_CM


@dataclass(frozen=True)
class SurfaceEntry:
    """One selected table-top photo (a row of ``surfaces:``)."""

    key: str
    split: str                 # 'train' | 'heldout'
    kind: str                  # wood | cloth | laminate | stone | leather
    archive: str
    member: str                # image path inside the archive
    model: str                 # furniture model the photo belongs to
    licence: str
    author: str
    finish: str = 'matte'      # matte | glossy (a specular highlight, sim/gloss.py)


@dataclass
class Selection:
    """The parsed YAML."""

    objects: list
    surfaces: list
    archives: dict
    package: str = furniture.APT_PACKAGE
    package_version: str = ''


@dataclass
class Catalogue:
    """
    Converted benchmark v2 assets.

    Attributes:
        seen, unseen: :class:`ObjectSpec` lists in selection order (shape ``'parts'``).
        train_surfaces, heldout_surfaces: PNG paths of the table-top photos.
        entries: ``{object key: ObjectEntry}``.
        skipped: ``[(key, reason)]`` of models / photos that could not be converted.
    """

    seen: list
    unseen: list
    train_surfaces: list
    heldout_surfaces: list
    entries: dict
    skipped: list = field(default_factory=list)
    surface_paths: dict = field(default_factory=dict)

    def surface_path(self, key: str) -> str:
        """PNG path of surface ``key`` (ValueError when unknown or skipped)."""
        if key not in self.surface_paths:
            raise ValueError(f'surface {key!r} is not available; '
                             f'converted: {sorted(self.surface_paths)}'
                             + (f'; skipped: {self.skipped}' if self.skipped else ''))
        return self.surface_paths[key]

    def specs(self) -> dict:
        """``{name: ObjectSpec}`` of every converted object."""
        return {s.name: s for s in self.seen + self.unseen}


def load_selection(path: str = SELECTION_FILE) -> Selection:
    """Parse and check the selection YAML (ValueError naming the bad row)."""
    with open(path, encoding='utf-8') as f:
        data = yaml.safe_load(f)
    try:
        objects = [ObjectEntry(o['key'], o['split'], o['archive'], o['entry'], o['name'],
                               tuple(float(v) for v in o['size_cm']), o['licence'], o['author'])
                   for o in data['objects']]
        surfaces = [SurfaceEntry(s['key'], s['split'], s['kind'], s['archive'], s['member'],
                                 s['model'], s['licence'], s['author'], s.get('finish', 'matte'))
                    for s in data['surfaces']]
    except (KeyError, TypeError) as exc:
        raise ValueError(f'{path}: malformed selection ({exc!r})') from exc
    for what, rows, splits in (('object', objects, ('seen', 'unseen')),
                               ('surface', surfaces, ('train', 'heldout'))):
        keys = [r.key for r in rows]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f'{path}: duplicate {what} keys {dup}')
        bad = [r.key for r in rows if r.split not in splits]
        if bad:
            raise ValueError(f'{path}: {what}s {bad} have a split other than {splits}')
    bad = [s.key for s in surfaces if s.finish not in ('matte', 'glossy')]
    if bad:
        raise ValueError(f"{path}: surfaces {bad} have a finish other than 'matte', 'glossy'")
    return Selection(objects, surfaces, dict(data.get('archives', {})), data.get('package', ''),
                     str(data.get('package_version', '')))


def mass_of(extents_m) -> float:
    """Mass in kg: :data:`DENSITY` times the bounding-box volume, clipped to :data:`MASS_RANGE`."""
    x, y, z = extents_m
    return float(min(max(DENSITY * x * y * z, MASS_RANGE[0]), MASS_RANGE[1]))


def build_catalogue(selection: Selection | None = None, folder: str | None = None,
                    cache: str | None = None) -> Catalogue:
    """
    Convert the selection (cached); skip and log what cannot be converted.

    Raises:
        furniture.FurnitureMissing: the Debian package is not installed (nothing to skip).
    """
    sel = selection or load_selection()
    cache = cache or furniture.cache_dir()
    seen, unseen, skipped, entries = [], [], [], {}
    for e in sel.objects:
        try:
            asset = furniture.convert_model(e.archive, e.entry, e.key, folder, cache)
        except furniture.AssetError as exc:
            log.warning('benchmark v2: skipping object %s (%s): %s', e.key, e.entry, exc)
            skipped.append((e.key, str(exc)))
            continue
        cat = asset.entry
        if tuple(round(v, 3) for v in (cat.width, cat.depth, cat.height)) != \
                tuple(round(v, 3) for v in e.size_cm):
            log.warning('benchmark v2: %s: the installed catalogue says %.4g x %.4g x %.4g cm, '
                        'the selection %s; using the catalogue', e.key, cat.width, cat.depth,
                        cat.height, list(e.size_cm))
        spec = ObjectSpec(name=e.key, shape='parts', size=tuple(asset.extents),
                          mass=mass_of(asset.extents), parts=asset.parts,
                          collision_file=asset.collision_file)
        (seen if e.split == 'seen' else unseen).append(spec)
        entries[e.key] = e
    surfaces, paths = {'train': [], 'heldout': []}, {}
    for s in sel.surfaces:
        out = os.path.join(cache, 'surfaces', f'{s.key}.png')
        try:
            paths[s.key] = furniture.extract_image(s.archive, s.member, out, folder)
        except furniture.AssetError as exc:
            log.warning('benchmark v2: skipping surface %s: %s', s.key, exc)
            skipped.append((s.key, str(exc)))
            continue
        surfaces[s.split].append(paths[s.key])
    return Catalogue(seen, unseen, surfaces['train'], surfaces['heldout'], entries, skipped, paths)


def scene_objects() -> tuple:
    """``({name: ObjectSpec} of every converted v2 object, [seen object names])``."""
    cat = build_catalogue()
    return cat.specs(), [s.name for s in cat.seen]


def make_scene(specs, surface: str = 'oak_light'):
    """
    Build a benchmark v2 TabletopScene: ``specs``, the OpenGL renderer and a table photo.

    ``surface`` is a key of benchmark_v2.yaml's surfaces (default: the training table).
    """
    from ccl_perception.sim.scene import TabletopScene
    return TabletopScene(list(specs), renderer='egl',
                         surface=build_catalogue().surface_path(surface))


def notice_text(selection: Selection | None = None) -> str:
    """Return the repository's ``NOTICE`` file: every model and photo, its author and licence."""
    sel = selection or load_selection()
    lines = [
        'ccl_perception: third-party assets',
        '',
        'The benchmark v2 renderer (ccl_perception/sim/) loads 3D models and texture photos from',
        f'the Debian package {sel.package} {sel.package_version} '
        '(installed by scripts/setup_env.sh;',
        'nothing of it is copied into this repository). '
        'Selection: ccl_perception/sim/benchmark_v2.yaml.',
        'CC-BY 3.0 requires this credit: https://creativecommons.org/licenses/by/3.0/',
        'CC0 1.0 (public domain, credit given as a courtesy): '
        'https://creativecommons.org/publicdomain/zero/1.0/',
        '',
        'Archives:',
    ]
    for name, info in sel.archives.items():
        lines.append(f'  {name}.sh3f ({info.get("licence", "")}): {info.get("notice", "")}')
    lines += ['', 'Objects (key: "name" by author, archive, licence; real size w x d x h cm):']
    for e in sel.objects:
        w, d, h = e.size_cm
        lines.append(f'  {e.key}: "{e.name}" ({e.entry}) by {e.author}, {e.archive}, {e.licence}; '
                     f'{w:g} x {d:g} x {h:g} cm')
    lines += ['', 'Table-top photos (key: file, from the model by author, archive, licence):']
    for s in sel.surfaces:
        lines.append(
            f'  {s.key}: {s.member} (from {s.model}) by {s.author}, {s.archive}, {s.licence}')
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--notice', action='store_true', help='print the NOTICE attribution text')
    ap.add_argument('--sheet', default=None,
                    help='also write a contact sheet of every object (.jpg/.png)')
    args = ap.parse_args(argv)
    if args.notice:
        sys.stdout.write(notice_text())
        return 0
    logging.basicConfig(level=logging.WARNING, format='%(message)s')
    try:
        cat = build_catalogue()
    except furniture.FurnitureMissing as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print('| key | split | name | size (cm) | grasp width (cm) | graspable | licence | author |')
    print('|---|---|---|---|---|---|---|---|')
    for e in load_selection().objects:
        if e.key not in cat.entries:
            continue
        w, d, h = e.size_cm
        print(f'| {e.key} | {e.split} | {e.name} | {w:g} x {d:g} x {h:g} | {e.grasp_width_cm:g} | '
              f'{"yes" if e.graspable else "no"} | {e.licence} | {e.author} |')
    print(f'\n{len(cat.seen)} seen + {len(cat.unseen)} unseen objects, '
          f'{len(cat.train_surfaces)} train + {len(cat.heldout_surfaces)} held-out surfaces; '
          f'skipped: {cat.skipped or "none"}')
    if args.sheet:
        print(f'wrote {args.sheet} ({object_sheet(cat, args.sheet) / 1024:.0f} KB)')
    return 0


def object_sheet(cat: Catalogue, out: str, tile: int = 240) -> int:
    """
    Write a contact sheet: every object alone on the training table.

    A D435 view from 50 deg elevation at a distance that fits its size, labelled with key,
    split and size. Returns bytes written.
    """
    import cv2
    import numpy as np

    from ccl_perception.sim.camera import Camera
    from ccl_perception.sim.contact_sheet import write_sheet
    from ccl_perception.sim.scene import TabletopScene
    specs = cat.seen + cat.unseen
    tiles = []
    with TabletopScene(specs, renderer='egl', surface=cat.surface_path('oak_light')) as scene:
        for spec in specs:
            scene.arrange(np.random.default_rng(0), names=[spec.name], workspace_half=(0.0, 0.0))
            pos = scene.object_poses([spec.name])[spec.name][:3, 3]
            dist = 0.12 + 1.6 * max(spec.size)
            el = np.radians(50.0)
            eye = pos + dist * np.array([np.cos(el), 0.3 * np.cos(el), np.sin(el)])
            r = scene.render(Camera.d435_looking_at(eye, pos, tile, tile * 3 // 4))
            img = cv2.cvtColor(r.rgb, cv2.COLOR_RGB2BGR)
            e = cat.entries[spec.name]
            w, d, h = e.size_cm
            for k, text in enumerate((f'{spec.name} ({e.split})', f'{w:g} x {d:g} x {h:g} cm')):
                y = 14 + 14 * k
                cv2.putText(img, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3,
                            cv2.LINE_AA)
                cv2.putText(img, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                            cv2.LINE_AA)
            tiles.append(img)
    cols = 6
    rows = [np.concatenate(tiles[i:i + cols], axis=1) for i in range(0, len(tiles), cols)]
    rows[-1] = np.pad(rows[-1], ((0, 0), (0, rows[0].shape[1] - rows[-1].shape[1]), (0, 0)),
                      constant_values=255)
    return write_sheet(np.concatenate(rows, axis=0), out)


if __name__ == '__main__':
    sys.exit(main())
