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
Textured everyday objects and surface photos from Debian's ``sweethome3d-furniture`` package.

The package installs zip archives (``*.sh3f``) under ``/usr/share/sweethome3d/furniture/``
(override with the environment variable ``CCL_FURNITURE_DIR``). Each archive holds a
``PluginFurnitureCatalog.properties`` file (one entry per model: name, creator, real size in
cm, OBJ path, optional ``modelRotation``) and the OBJ + MTL + texture files. Nothing of it is
copied into the repository: :func:`convert_model` turns one catalogue entry into files
pybullet can load, in a cache folder (``CCL_ASSET_CACHE``, default
``~/.cache/ccl_perception/furniture``), once.

Conversion (what Sweet Home 3D itself does to place a model, then the world convention):

1. apply the entry's ``modelRotation`` (3x3, row-major) to the OBJ vertices;
2. scale each axis so the bounding box is exactly ``width x height x depth`` cm (x, y, z of
   the Y-up model), as Sweet Home 3D stretches a model to its catalogue size;
3. rotate Y-up into this package's Z-up world: ``(x, y, z) -> (x, -z, y)``, metres, and centre
   the bounding box at the origin (the object frame is the box centre);
4. split the mesh by material: one OBJ per material, each with at most one texture (re-saved
   as PNG: pybullet rejects progressive JPEGs) and its diffuse colour; vertex normals are
   smoothed within a crease angle when the OBJ has none;
5. write ``collision.obj`` (all triangles in one mesh): pybullet uses its convex hull as the
   collision shape.

A model whose files are missing or unreadable raises :class:`AssetError` with the reason;
:func:`FurnitureMissing` is raised when the package is not installed at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import hashlib
import json
import os
import posixpath
import re
import zipfile

import cv2
import numpy as np

APT_PACKAGE = 'sweethome3d-furniture'
DEFAULT_FURNITURE_DIR = '/usr/share/sweethome3d/furniture'
CONVERTER_VERSION = 3          # bump when the converted files change
MAX_TEXTURE_SIDE = 1024        # px; textures are resized to powers of two up to this
CREASE_ANGLE_DEG = 50.0        # normals are smoothed across edges flatter than this


class FurnitureMissing(RuntimeError):
    """The furniture archives are not installed (the Debian package is missing)."""


class AssetError(ValueError):
    """One model cannot be converted (missing or corrupt file in its archive)."""


def furniture_dir() -> str:
    """Folder with the ``*.sh3f`` archives (``CCL_FURNITURE_DIR`` or the Debian default)."""
    return os.environ.get('CCL_FURNITURE_DIR', DEFAULT_FURNITURE_DIR)


def cache_dir() -> str:
    """
    Return the folder for converted models.

    ``CCL_ASSET_CACHE``, or ``~/.cache/ccl_perception/furniture``.
    """
    return os.environ.get('CCL_ASSET_CACHE',
                          os.path.join(os.path.expanduser('~'), '.cache', 'ccl_perception',
                                       'furniture'))


def archive_path(archive: str, folder: str | None = None) -> str:
    """Path of ``<archive>.sh3f``; :class:`FurnitureMissing` with the install command if absent."""
    folder = furniture_dir() if folder is None else folder
    path = os.path.join(folder, archive + '.sh3f')
    if not os.path.isfile(path):
        raise FurnitureMissing(
            f'{path} not found: the Debian package {APT_PACKAGE} is not installed; run '
            f'scripts/setup_env.sh or `sudo apt-get install -y {APT_PACKAGE}` '
            f'(or point CCL_FURNITURE_DIR at a folder with the .sh3f archives)')
    return path


# ------------------------------------------------------------------------- catalogue
@dataclass(frozen=True)
class CatalogEntry:
    """
    One model of an archive's ``PluginFurnitureCatalog.properties``.

    Sizes are the catalogue's real sizes in cm: ``width`` (model x), ``depth`` (model z),
    ``height`` (model y, up).
    """

    archive: str
    id: str  # noqa: A003
    name: str
    model: str                 # OBJ path inside the zip (no leading '/')
    width: float
    depth: float
    height: float
    creator: str
    category: str
    licence: str               # the archive's licence line
    model_rotation: tuple = ()  # 9 floats, row-major, or () for none


def _properties(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(('#', '!')) or '=' not in line:
            continue
        key, value = line.split('=', 1)
        out[key.strip()] = value.strip().encode(
            'latin-1', 'replace').decode('unicode_escape', 'replace')
    return out


def read_catalog(path: str) -> dict:
    """``{entry id: CatalogEntry}`` of one ``.sh3f`` archive (entries without sizes left out)."""
    try:
        with zipfile.ZipFile(path) as z:
            text = z.read('PluginFurnitureCatalog.properties').decode('latin-1')
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise AssetError(f'{path}: cannot read its catalogue ({exc})') from exc
    props = _properties(text)
    archive = os.path.splitext(os.path.basename(path))[0]
    entries = {}
    for key, value in props.items():
        m = re.fullmatch(r'id#(\d+)', key)
        if not m:
            continue
        n = m.group(1)
        try:
            rot = tuple(float(v) for v in props.get(f'modelRotation#{n}', '').split())
            entry = CatalogEntry(archive, value, props.get(f'name#{n}', value),
                                 props[f'model#{n}'].lstrip('/'), float(props[f'width#{n}']),
                                 float(props[f'depth#{n}']), float(props[f'height#{n}']),
                                 props.get(f'creator#{n}', ''), props.get(f'category#{n}', ''),
                                 props.get('license', ''), rot)
        except (KeyError, ValueError):
            continue
        if rot and len(rot) != 9:
            continue
        entries[value] = entry
    return entries


# ------------------------------------------------------------------------ OBJ / MTL
@dataclass
class ObjMesh:
    """
    Triangles of an OBJ, by material.

    Attributes:
        positions: ``(P, 3)`` float vertex positions (model units).
        uvs: ``(T, 2)`` texture coordinates (may be empty).
        normals: ``(N, 3)`` normals (may be empty).
        groups: ``{material: (F, 3, 3) int}`` corner indices ``(position, uv, normal)``,
            -1 where a corner has no uv / normal.
        mtllibs: MTL file names referenced.
    """

    positions: np.ndarray
    uvs: np.ndarray
    normals: np.ndarray
    groups: dict
    mtllibs: list = field(default_factory=list)


def parse_obj(text: str) -> ObjMesh:
    """Parse Wavefront OBJ text (v, vt, vn, f with polygons fan-triangulated, usemtl, mtllib)."""
    pos, uv, nrm, mtllibs = [], [], [], []
    groups, material = {}, ''
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        tag = parts[0]
        try:
            if tag == 'v':
                pos.append([float(c) for c in parts[1:4]])
            elif tag == 'vt':
                uv.append([float(parts[1]), float(parts[2]) if len(parts) > 2 else 0.0])
            elif tag == 'vn':
                nrm.append([float(c) for c in parts[1:4]])
            elif tag == 'usemtl':
                material = ' '.join(parts[1:])
            elif tag == 'mtllib':
                mtllibs.append(' '.join(parts[1:]))
            elif tag == 'f':
                corners = []
                for c in parts[1:]:
                    idx = (c.split('/') + ['', ''])[:3]
                    ref = []
                    for k, (s, n) in enumerate(zip(idx, (len(pos), len(uv), len(nrm)))):
                        if s == '':
                            ref.append(-1)
                            continue
                        i = int(s)
                        ref.append(i - 1 if i > 0 else n + i)
                    corners.append(ref)
                for k in range(1, len(corners) - 1):
                    groups.setdefault(material, []).append(
                        [corners[0], corners[k], corners[k + 1]])
        except (ValueError, IndexError) as exc:
            raise AssetError(f'malformed OBJ line {line[:60]!r} ({exc})') from exc
    if not pos or not groups:
        raise AssetError('OBJ has no vertices or no faces')
    mesh = ObjMesh(np.asarray(pos, float).reshape(-1, 3), np.asarray(uv, float).reshape(-1, 2),
                   np.asarray(nrm, float).reshape(-1, 3),
                   {m: np.asarray(f, dtype=np.int64) for m, f in groups.items()}, mtllibs)
    for f in mesh.groups.values():
        for k, n in enumerate((len(mesh.positions), len(mesh.uvs), len(mesh.normals))):
            col = f[:, :, k]
            if (col >= n).any() or (k == 0 and (col < 0).any()):
                raise AssetError('OBJ face refers to a vertex that does not exist')
    return mesh


def parse_mtl(text: str) -> dict:
    """``{material: {'Kd': (r, g, b), 'd': alpha, 'map_Kd': file or ''}}``."""
    out, cur = {}, None
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == 'newmtl':
            cur = out.setdefault(' '.join(parts[1:]), {
                                 'Kd': (0.8, 0.8, 0.8), 'd': 1.0, 'map_Kd': ''})
        elif cur is None:
            continue
        elif parts[0] == 'Kd' and len(parts) >= 4:
            cur['Kd'] = tuple(float(c) for c in parts[1:4])
        elif parts[0] == 'd' and len(parts) >= 2:
            cur['d'] = float(parts[1])
        elif parts[0] == 'map_Kd' and len(parts) >= 2:
            cur['map_Kd'] = parts[-1]  # options such as -s come first; the file is last
    return out


def smooth_normals(positions: np.ndarray, faces: np.ndarray,
                   crease_deg: float = CREASE_ANGLE_DEG) -> np.ndarray:
    """
    Per-corner normals ``(F, 3, 3)``; sharp edges stay sharp.

    Area-weighted mean of the normals of the faces that share the corner's position (within
    1e-6 of the model's size) and lie within ``crease_deg`` of the corner's own face.
    """
    tri = positions[faces]                                   # (F, 3, 3)
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(cross, axis=1)
    unit = cross / np.maximum(area, 1e-30)[:, None]
    scale = max(float(np.ptp(positions, axis=0).max()), 1e-12)
    key = np.round(tri.reshape(-1, 3) / (scale * 1e-6)).astype(np.int64)
    _, pid = np.unique(key, axis=0, return_inverse=True)
    pid = pid.reshape(-1)
    face_of = np.repeat(np.arange(len(faces)), 3)
    order = np.argsort(pid, kind='stable')
    sorted_pid = pid[order]
    starts = np.searchsorted(sorted_pid, sorted_pid, side='left')
    sizes = np.searchsorted(sorted_pid, sorted_pid, side='right') - starts
    # all (corner, neighbour corner) pairs sharing a position
    rep = np.repeat(np.arange(len(order)), sizes)
    offs = np.arange(len(rep)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    a = order[rep]
    b = order[np.repeat(starts, sizes) + offs]
    fa, fb = face_of[a], face_of[b]
    ok = (unit[fa] * unit[fb]).sum(axis=1) >= np.cos(np.radians(crease_deg)) - 1e-9
    acc = np.zeros((len(pid), 3))
    np.add.at(acc, a[ok], cross[fb[ok]])
    n = np.linalg.norm(acc, axis=1, keepdims=True)
    out = np.where(n > 1e-30, acc / np.maximum(n, 1e-30), unit[face_of])
    return out.reshape(-1, 3, 3)


# ------------------------------------------------------------------------ conversion
@dataclass(frozen=True)
class MeshPart:
    """One material of a converted model: an OBJ (metres, Z-up), its colour and texture."""

    obj_file: str
    rgba: tuple
    texture_file: str = ''


@dataclass(frozen=True)
class MeshAsset:
    """A converted model: visual parts, the collision mesh, extents (m) and provenance."""

    key: str
    parts: tuple
    collision_file: str
    extents: tuple             # (x, y, z) m of the bounding box, centred at the origin
    entry: CatalogEntry
    num_triangles: int


def _rotation_matrix(entry: CatalogEntry) -> np.ndarray:
    if not entry.model_rotation:
        return np.eye(3)
    return np.asarray(entry.model_rotation, float).reshape(3, 3)


def to_world(positions: np.ndarray, entry: CatalogEntry) -> np.ndarray:
    """
    Model vertices -> metres, Z-up, bounding box ``width x depth x height`` centred at 0.

    Returns ``(P, 3)``; see the module docstring for the steps.
    """
    p = np.asarray(positions, float) @ _rotation_matrix(entry).T
    lo, hi = p.min(axis=0), p.max(axis=0)
    ext = hi - lo
    if (ext <= 0).any():
        raise AssetError(f'{entry.id}: degenerate model (extent {ext})')
    target = np.array([entry.width, entry.height, entry.depth]) / 100.0  # model x, y, z in m
    p = (p - (lo + hi) / 2.0) * (target / ext)
    return np.stack([p[:, 0], -p[:, 2], p[:, 1]], axis=1)


def _read_member(z: zipfile.ZipFile, member: str, what: str) -> bytes:
    try:
        return z.read(member)
    except KeyError as exc:
        raise AssetError(f'{what} {member} is missing from {z.filename}') from exc
    except (zipfile.BadZipFile, OSError, ValueError) as exc:  # CRC error, truncated entry
        raise AssetError(f'{what} {member} in {z.filename} is corrupt ({exc})') from exc


def decode_image(data: bytes, what: str) -> np.ndarray:
    """BGR uint8 image from encoded bytes (AssetError when unreadable)."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise AssetError(f'{what} is not a readable image')
    return img


def _pow2(n: int) -> int:
    return int(np.clip(2 ** round(np.log2(max(n, 1))), 8, MAX_TEXTURE_SIDE))


def _save_texture(img: np.ndarray, path: str) -> None:
    """
    Write ``img`` as PNG with power-of-two sides (<= MAX_TEXTURE_SIDE).

    pybullet's OpenGL renderer uploads RGB rows with 4-byte alignment, so a width whose
    ``3 * width`` is not a multiple of 4 shears the texture into rainbow stripes; power-of-two
    sides avoid that and let OpenGL build mipmaps. UVs are normalised, so resizing is harmless.
    """
    h, w = img.shape[:2]
    size = (_pow2(w), _pow2(h))
    if size != (w, h):
        interp = cv2.INTER_AREA if size[0] * size[1] < w * h else cv2.INTER_CUBIC
        img = cv2.resize(img, size, interpolation=interp)
    if not cv2.imwrite(path, img):
        raise OSError(f'could not write {path}')


def _write_part(path: str, verts: np.ndarray, uvs: np.ndarray | None, normals: np.ndarray,
                mtl_name: str = '') -> None:
    """OBJ with un-indexed corners: ``verts``/``normals`` (F, 3, 3), ``uvs`` (F, 3, 2) or None."""
    n = len(verts) * 3
    lines = []
    if mtl_name:
        lines += [f'mtllib {mtl_name}', 'usemtl m']
    lines += [f'v {x:.6f} {y:.6f} {z:.6f}' for x, y, z in verts.reshape(-1, 3)]
    if uvs is not None:
        lines += [f'vt {u:.6f} {v:.6f}' for u, v in uvs.reshape(-1, 2)]
    lines += [f'vn {x:.4f} {y:.4f} {z:.4f}' for x, y, z in normals.reshape(-1, 3)]
    if uvs is not None:
        lines += [
            f'f {i}/{i}/{i} {i + 1}/{i + 1}/{i + 1} {i + 2}/{i + 2}/{i + 2}'
            for i in range(1, n + 1, 3)]
    else:
        lines += [f'f {i}//{i} {i + 1}//{i + 1} {i + 2}//{i + 2}' for i in range(1, n + 1, 3)]
    with open(path, 'w', encoding='ascii') as f:
        f.write('\n'.join(lines) + '\n')


def _cache_key(path: str, entry: CatalogEntry) -> str:
    st = os.stat(path)
    raw = json.dumps([CONVERTER_VERSION, os.path.basename(path), st.st_size, int(st.st_mtime),
                      entry.id, entry.width, entry.depth, entry.height,
                      list(entry.model_rotation)])
    return hashlib.sha1(raw.encode()).hexdigest()[:12]


def _safe_name(text: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', text)


def convert_model(archive: str, entry_id: str, key: str | None = None,
                  folder: str | None = None, cache: str | None = None) -> MeshAsset:
    """
    Convert catalogue entry ``entry_id`` of ``<archive>.sh3f`` (cached).

    Args:
        archive: archive name without extension, e.g. ``'Scopia'``.
        entry_id: catalogue id, e.g. ``'Scopia#cup'``.
        key: name of the asset (default: the id's part after ``#``).
        folder: archive folder (default :func:`furniture_dir`).
        cache: output folder (default :func:`cache_dir`).

    Raises:
        FurnitureMissing: the archive is not installed.
        AssetError: the entry is unknown or its files are missing / corrupt.
    """
    path = archive_path(archive, folder)
    catalog = read_catalog(path)
    if entry_id not in catalog:
        raise AssetError(f'{entry_id!r} is not in the catalogue of {path}')
    entry = catalog[entry_id]
    key = key or entry_id.split('#', 1)[-1]
    out = os.path.join(cache or cache_dir(), f'{_safe_name(key)}-{_cache_key(path, entry)}')
    manifest = os.path.join(out, 'asset.json')
    if os.path.isfile(manifest):
        with open(manifest, encoding='utf-8') as f:
            data = json.load(f)
        return MeshAsset(key, tuple(MeshPart(os.path.join(out, p['obj']), tuple(p['rgba']),
                                             os.path.join(out, p['texture'])
                                             if p['texture'] else '')
                                    for p in data['parts']),
                         os.path.join(out, 'collision.obj'), tuple(data['extents']), entry,
                         data['num_triangles'])
    tmp = out + f'.tmp{os.getpid()}'
    os.makedirs(tmp, exist_ok=True)
    with zipfile.ZipFile(path) as z:
        text = _read_member(z, entry.model, 'model').decode('latin-1')
        mesh = parse_obj(text)
        base = posixpath.dirname(entry.model)
        materials = {}
        for lib in mesh.mtllibs:
            materials.update(parse_mtl(_read_member(z, posixpath.join(base, lib), 'material file')
                                       .decode('latin-1')))
        world = to_world(mesh.positions, entry)
        parts, textures, n_tri = [], {}, 0
        for k, (mat_name, faces) in enumerate(sorted(mesh.groups.items())):
            mat = materials.get(mat_name, {'Kd': (0.8, 0.8, 0.8), 'd': 1.0, 'map_Kd': ''})
            verts = world[faces[:, :, 0]]
            if len(mesh.normals) and (faces[:, :, 2] >= 0).all():
                # normals follow the vertices: same rotation, inverse-transpose of the scaling
                nrm = _transform_normals(mesh.normals[faces[:, :, 2]].reshape(-1, 3), entry,
                                         mesh.positions).reshape(-1, 3, 3)
            else:
                nrm = smooth_normals(world, faces[:, :, 0])
            tex_file, uvs = '', None
            if mat['map_Kd']:
                if len(mesh.uvs) == 0 or (faces[:, :, 1] < 0).any():
                    raise AssetError(f'{entry.id}: material {mat_name!r} has a texture but its '
                                     'faces have no texture coordinates')
                member = posixpath.normpath(posixpath.join(base, mat['map_Kd'].replace('\\', '/')))
                if member not in textures:
                    img = decode_image(_read_member(z, member, 'texture'), f'texture {member}')
                    # unique file names: pybullet caches textures by the name in the MTL file
                    textures[member] = f'{os.path.basename(out)}-tex{len(textures)}.png'
                    _save_texture(img, os.path.join(tmp, textures[member]))
                tex_file = textures[member]
                uvs = mesh.uvs[faces[:, :, 1]]
            obj_name = f'{os.path.basename(out)}-part{k}.obj'
            mtl_name = ''
            if tex_file:
                mtl_name = f'{os.path.basename(out)}-part{k}.mtl'
                with open(os.path.join(tmp, mtl_name), 'w', encoding='ascii') as f:
                    f.write(f'newmtl m\nKd 1 1 1\nmap_Kd {tex_file}\n')
            _write_part(os.path.join(tmp, obj_name), verts, uvs, nrm, mtl_name)
            rgba = tuple(float(np.clip(c, 0, 1)) for c in mat['Kd']) + (1.0,)
            parts.append({'obj': obj_name, 'rgba': rgba,
                         'texture': tex_file, 'material': mat_name})
            n_tri += len(faces)
    all_faces = np.concatenate([f[:, :, 0] for f in mesh.groups.values()])
    used, remap = np.unique(all_faces.reshape(-1), return_inverse=True)
    coll = world[used]
    with open(os.path.join(tmp, 'collision.obj'), 'w', encoding='ascii') as f:
        f.write('\n'.join(f'v {x:.6f} {y:.6f} {z:.6f}' for x, y, z in coll) + '\n')
        f.write('\n'.join(f'f {a + 1} {b + 1} {c + 1}' for a, b, c in remap.reshape(-1, 3)) + '\n')
    ext = (coll.max(axis=0) - coll.min(axis=0)).tolist()
    with open(os.path.join(tmp, 'asset.json'), 'w', encoding='utf-8') as f:
        json.dump({'entry': entry.id, 'archive': archive, 'parts': parts, 'extents': ext,
                   'num_triangles': n_tri}, f, indent=1)
    try:
        os.replace(tmp, out)
    except OSError:  # another process converted it meanwhile
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return convert_model(archive, entry_id, key, folder, cache)


def _transform_normals(normals: np.ndarray, entry: CatalogEntry,
                       positions: np.ndarray) -> np.ndarray:
    p = np.asarray(positions, float) @ _rotation_matrix(entry).T
    ext = p.max(axis=0) - p.min(axis=0)
    target = np.array([entry.width, entry.height, entry.depth]) / 100.0
    n = (normals @ _rotation_matrix(entry).T) / (target / ext)
    n = np.stack([n[:, 0], -n[:, 2], n[:, 1]], axis=1)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def extract_image(archive: str, member: str, out_png: str, folder: str | None = None) -> str:
    """Re-save image ``member`` of ``<archive>.sh3f`` as PNG ``out_png`` (once); return it."""
    if os.path.isfile(out_png):
        return out_png
    path = archive_path(archive, folder)
    try:
        with zipfile.ZipFile(path) as z:
            img = decode_image(_read_member(z, member, 'image'), f'{archive}:{member}')
    except zipfile.BadZipFile as exc:
        raise AssetError(f'{path} is not a readable archive ({exc})') from exc
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    tmp = out_png + f'.tmp{os.getpid()}.png'
    _save_texture(img, tmp)
    os.replace(tmp, out_png)
    return out_png
