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

r"""
Grasp targets: descriptors of an object's grasp keypoints, stored without pickle.

A target is made once from a reference RGB(-D) image, a trained checkpoint and two or
more pixels (the paper picks two grasp-axis pixels per object; points 1 and 2 are the
grasp axis, further points only help the robust 3D fit). File format: ``.npz`` with
only numeric and fixed-width unicode arrays, loaded with ``allow_pickle=False``:

==================  ===========  ==========================================================
key                 shape/dtype  meaning
==================  ===========  ==========================================================
format_version      () int       1
name                () str       target name (library key)
model_identity      () str       identity of the model that made it, at its downscale
                                 (``model_settings.compose_identity``: ``<weights>[/s]``)
downscale           () int       the model's ``downscale`` when it was made (absent in older
                                 files: read from ``model_identity``)
descriptors         (N, D) f32   unit descriptors at the pixels of the full-resolution
                                 (bilinearly upsampled) descriptor map
pixels              (N, 2) f64   reference pixels ``(x, y)``
image_size          (2,) int     reference image ``(H, W)``
points_3d           (N, 3) f64   reference 3D points, camera frame, metres (NaN: no depth)
axis_length         () f64       ``|p2 - p1|`` metres (NaN: no depth)
intrinsics          (3, 3) f64   reference K (NaN: not given)
min_similarity      (2,) f64     optional: the view's calibrated similarity gates of the
                                 two axis points (``ccl_perception.target_gates``; NaN or
                                 absent: the planner's global ``min_similarity``)
calibration_pos     (A, N) f32   optional: the gate's positive statistics s+ (per augmented
                                 copy and point; NaN: the point left the copy)
calibration_neg     (A, N) f32   optional: its negative statistics s-
extra_views         () int       optional: number of further reference views (0-3)
view<k>_<key>       ...          view ``k`` = 1..extra_views: the keys above from
                                 ``descriptors`` to ``calibration_neg`` for that view
==================  ===========  ==========================================================

Files without the optional keys (made before they existed) load as one view with no
calibrated gate. A target with several views (e.g. top-down and two oblique ones, saved one
after another by the ``target_maker`` node, :func:`add_view`) is matched view by view and the
best-supported view gives the grasp (``grasp_pipeline``).

CLI (console script ``make_target``)::

    make_target --checkpoint ck.pt --image ref.png --depth ref_depth.png \
        --intrinsics 615.0,615.0,320.0,240.0 --points 300,200 340,210 --name mug \
        --out targets/mug.npz
"""

from dataclasses import dataclass, field, replace
import os
from typing import Dict, List, Optional, Tuple

from ccl_perception import geometry
from ccl_perception.image_header import check_image_size, MAX_IMAGE_SIDE
from ccl_perception.model_settings import split_identity
import numpy as np

FORMAT_VERSION = 1
#: Shortest grasp axis between points 1 and 2 in the reference image, pixels (half a
#: descriptor cell: closer points have nearly the same descriptor).
MIN_AXIS_PX = 4.0
#: Shortest grasp axis in 3D when reference depth is given, metres.
MIN_AXIS_M = 0.005
#: Any two target points must be at least this far apart, pixels.
MIN_POINT_SEPARATION_PX = 1.0
#: Saving over a target keeps the previous file as ``<name>.npz.bak`` (not read as a target).
BACKUP_SUFFIX = '.bak'
#: Most reference views a target may carry.
MAX_VIEWS = 4
#: Per-view keys of the file (view 0 without prefix, view k >= 1 as ``view<k>_<key>``).
VIEW_KEYS = ('descriptors', 'pixels', 'image_size', 'points_3d', 'axis_length', 'intrinsics',
             'min_similarity', 'calibration_pos', 'calibration_neg')


class TargetError(ValueError):
    """A target file is missing, malformed or made with another model."""


@dataclass
class Target:
    """In-memory target; see the module docstring for the fields."""

    name: str
    descriptors: np.ndarray
    pixels: np.ndarray
    model_identity: str
    image_size: Tuple[int, int]
    points_3d: Optional[np.ndarray] = None
    axis_length: float = float('nan')
    intrinsics: Optional[np.ndarray] = None
    min_similarity: Optional[np.ndarray] = None     # (2,) calibrated gates of the axis points
    calibration_pos: Optional[np.ndarray] = None    # (A, N) s+ of target_gates
    calibration_neg: Optional[np.ndarray] = None    # (A, N) s-
    extra_views: List['Target'] = field(default_factory=list)  # views 1.. (same name, model)

    @property
    def downscale(self) -> int:
        """Return the ``downscale`` the target was made at (part of ``model_identity``)."""
        return split_identity(self.model_identity)[1]

    @property
    def has_3d(self) -> bool:
        """Return True when reference depth was given for at least the two axis points."""
        return self.points_3d is not None and bool(np.all(np.isfinite(self.points_3d[:2])))

    @property
    def views(self) -> List['Target']:
        """Every reference view: this one (view 0), then :attr:`extra_views`."""
        return [self] + list(self.extra_views)

    @property
    def gate(self) -> Optional[np.ndarray]:
        """Return this view's ``(2,)`` calibrated gates, or None (use the global one)."""
        g = self.min_similarity
        if g is None or not np.all(np.isfinite(g)):
            return None
        return np.asarray(g, np.float64).reshape(2)


def add_view(target: Target, view: Target) -> Target:
    """
    ``target`` with ``view`` (a target of the same object from another viewpoint) appended.

    Raises:
        TargetError: another name, model or descriptor size, or more than :data:`MAX_VIEWS`.
    """
    if view.name != target.name:
        raise TargetError(f'view of {view.name!r} cannot join target {target.name!r}')
    if view.model_identity != target.model_identity:
        raise TargetError(f'view made with model {view.model_identity}, target {target.name!r} '
                          f'with {target.model_identity}')
    if view.descriptors.shape[1] != target.descriptors.shape[1]:
        raise TargetError(f'view descriptors are {view.descriptors.shape[1]}-D, target '
                          f'{target.name!r} has {target.descriptors.shape[1]}-D')
    views = target.views + view.views
    if len(views) > MAX_VIEWS:
        raise TargetError(f'target {target.name!r} would have {len(views)} views; at most '
                          f'{MAX_VIEWS}')
    return replace(target, extra_views=[replace(v, extra_views=[]) for v in views[1:]])


def _view_arrays(t: Target) -> dict:
    """Return the file arrays of one view (:data:`VIEW_KEYS`)."""
    n = len(t.descriptors)
    out = {'descriptors': np.asarray(t.descriptors, np.float32),
           'pixels': np.asarray(t.pixels, np.float64),
           'image_size': np.asarray(t.image_size, np.int64),
           'points_3d': np.asarray(t.points_3d if t.points_3d is not None
                                   else np.full((n, 3), np.nan), np.float64),
           'axis_length': np.float64(t.axis_length),
           'intrinsics': np.asarray(t.intrinsics if t.intrinsics is not None
                                    else np.full((3, 3), np.nan), np.float64),
           'min_similarity': np.asarray(t.min_similarity if t.min_similarity is not None
                                        else np.full(2, np.nan), np.float64).reshape(2)}
    for key in ('calibration_pos', 'calibration_neg'):
        if getattr(t, key) is not None:
            out[key] = np.asarray(getattr(t, key), np.float32)
    return out


def save_target(path: str, target: Target, keep_old: bool = False) -> Optional[str]:
    """
    Write a target ``.npz`` atomically (temp file + rename), mode ``0666 & ~umask`` (0644).

    Args:
        keep_old: an existing file at ``path`` is first copied to ``<path>.bak`` (one
            generation: an older ``.bak`` is replaced); the library never reads ``.bak`` files.

    Returns:
        the ``.bak`` path when an old file was kept, else None.

    Raises:
        OSError: the folder cannot be created or written (no partial file is left).
    """
    arrays = _view_arrays(target)
    for k, view in enumerate(target.extra_views, 1):
        arrays.update({f'view{k}_{key}': v for key, v in _view_arrays(view).items()})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + '.tmp.npz'
    try:
        np.savez(tmp, format_version=np.int64(FORMAT_VERSION), name=np.str_(target.name),
                 model_identity=np.str_(target.model_identity),
                 extra_views=np.int64(len(target.extra_views)),
                 downscale=np.int64(target.downscale), **arrays)
        backup = _keep_old(path) if keep_old else None
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return backup


def _keep_old(path: str) -> Optional[str]:
    """Copy an existing ``path`` to ``path + '.bak'`` (the original stays until replaced)."""
    if not os.path.isfile(path):
        return None
    import shutil
    shutil.copy2(path, path + BACKUP_SUFFIX)
    return path + BACKUP_SUFFIX


def load_target(path: str, expected_identity: Optional[str] = None) -> Target:
    """
    Load and validate a target file.

    Args:
        expected_identity: when given, a target made with a different model (other
            backbone, descriptor size or weights) is refused.

    Raises:
        TargetError: with a message naming the file and the problem.
    """
    if not os.path.isfile(path):
        raise TargetError(f'target file {path!r} does not exist')
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - zip/format errors of many kinds
        raise TargetError(f'target file {path!r} is not a valid npz: {e}') from e
    required = ('format_version', 'name', 'model_identity', 'descriptors', 'pixels', 'image_size')
    missing = [k for k in required if k not in data]
    if missing:
        raise TargetError(f'target file {path!r} lacks {", ".join(missing)}')
    _check_fields(path, data)
    if int(data['format_version']) != FORMAT_VERSION:
        raise TargetError(f'target file {path!r} has format {int(data["format_version"])}, '
                          f'expected {FORMAT_VERSION}')
    identity = str(data['model_identity'])
    downscale = split_identity(identity)[1]
    if 'downscale' in data and int(data['downscale']) != downscale:
        raise TargetError(f'target file {path!r}: downscale {int(data["downscale"])} and model '
                          f'identity {identity} disagree')
    if expected_identity is not None and identity != expected_identity:
        raise TargetError(_mismatch(str(data['name']), path, identity, expected_identity))
    extra = int(data.get('extra_views', 0))
    if not 0 <= extra < MAX_VIEWS:
        raise TargetError(f'target file {path!r} has {extra} extra views; at most '
                          f'{MAX_VIEWS - 1}')
    views = []
    for k in range(extra + 1):
        prefix = f'view{k}_' if k else ''
        fields = {key: data[prefix + key] for key in VIEW_KEYS if prefix + key in data}
        lacking = [key for key in ('descriptors', 'pixels', 'image_size') if key not in fields]
        if lacking:
            raise TargetError(f'target file {path!r} lacks '
                              f'{", ".join(prefix + x for x in lacking)}')
        views.append(_view(path, str(data['name']), identity, fields, k))
    return replace(views[0], extra_views=views[1:])


def _view(path: str, name: str, identity: str, f: dict, k: int) -> Target:
    """One view of a target file from its arrays (``TargetError`` naming the problem)."""
    desc, px = f['descriptors'], f['pixels']
    where = f'target file {path!r}' + (f' view {k}' if k else '')
    if desc.ndim != 2 or len(desc) < 2 or not np.all(np.isfinite(desc)):
        raise TargetError(f'{where}: descriptors must be finite (N>=2, D), got {desc.shape}')
    if px.shape != (len(desc), 2):
        raise TargetError(f'{where}: pixels {px.shape} do not match descriptors {desc.shape}')
    pts, K = f.get('points_3d'), f.get('intrinsics')
    gate = np.asarray(f.get('min_similarity', np.full(2, np.nan)), np.float64)
    if gate.shape != (2,):
        raise TargetError(f'{where}: min_similarity must be (2,): one gate per grasp-axis '
                          f'point, got {gate.shape}')
    if np.any(np.isfinite(gate) & ((gate < -1.0) | (gate > 1.0))):
        raise TargetError(f'{where}: min_similarity {gate.tolist()} is not a cosine similarity '
                          'in [-1, 1]')
    cal = {}
    for key in ('calibration_pos', 'calibration_neg'):
        if key in f:
            if f[key].ndim != 2 or f[key].shape[1] != len(desc):
                raise TargetError(f'{where}: {key} {f[key].shape} does not match '
                                  f'{len(desc)} points')
            cal[key] = f[key].astype(np.float32)
    return Target(name=name, descriptors=desc.astype(np.float32), pixels=px,
                  model_identity=identity, image_size=tuple(int(v) for v in f['image_size']),
                  points_3d=None if pts is None or not np.any(np.isfinite(pts)) else pts,
                  axis_length=float(f.get('axis_length', np.nan)),
                  intrinsics=None if K is None or not np.all(np.isfinite(K)) else K,
                  min_similarity=gate if np.all(np.isfinite(gate)) else None, **cal)


#: Shape and dtype kind (``numpy.dtype.kind``) of every field of a target file; ``N``: points,
#: ``D``: descriptor size (None: any length).
_FIELDS = {'format_version': ((), 'iu'), 'name': ((), 'U'), 'model_identity': ((), 'U'),
           'descriptors': (('N', None), 'fiu'), 'pixels': (('N', 2), 'fiu'),
           'image_size': ((2,), 'iu'), 'points_3d': (('N', 3), 'fiu'),
           'axis_length': ((), 'fiu'), 'intrinsics': ((3, 3), 'fiu')}


def _check_fields(path: str, data: dict) -> None:
    """
    Raise ``TargetError`` naming the first field of a loaded target file of the wrong form.

    A file can be a valid npz and still hold anything (a scalar image size, text
    descriptors, a 2-D format version): such a file is refused like a broken one, never
    reaching the code that uses the fields.
    """
    n = None
    for key, (shape, kinds) in _FIELDS.items():
        if key not in data:
            continue
        value = data[key]
        want = tuple(n if d == 'N' else d for d in shape)
        ok = value.dtype.kind in kinds and value.ndim == len(want) and all(
            w is None or w == got for w, got in zip(want, value.shape))
        if not ok:
            form = ' x '.join('any' if w is None else str(w) for w in want) or 'a scalar'
            raise TargetError(f'target file {path!r}: {key} must be {form} of kind {kinds!r}, '
                              f'got shape {value.shape} dtype {value.dtype}')
        if key == 'descriptors':
            n = value.shape[0]
    size = data['image_size']
    if np.any(size < 1):
        raise TargetError(f'target file {path!r}: image_size {size.tolist()} must be positive')
    if not np.all(np.isfinite(data['pixels'])):
        raise TargetError(f'target file {path!r}: pixels must be finite')


def _mismatch(name: str, path: str, made: str, running: str) -> str:
    """Say which of model and downscale differs between a target and the running model."""
    made_model, made_scale = split_identity(made)
    run_model, run_scale = split_identity(running)
    if made_model == run_model:
        return (f'target {name!r} ({path}) was made at downscale {made_scale}, the model runs at '
                f'downscale {run_scale}: start the planner with downscale:={made_scale} '
                f'(parameter downscale), or remake the target with make_target --downscale '
                f'{run_scale}')
    return (f'target {name!r} ({path}) was made with model {made_model}, but the running model '
            f'is {run_model}; re-create it with make_target')


def load_library(target_dir: str, expected_identity: Optional[str] = None):
    """
    Load every ``*.npz`` of a directory.

    Returns:
        ``(targets {name: Target}, errors {file name: reason})``; a bad file never
        prevents the others from loading. Two files with the same target name: the
        first (sorted by file name) wins, the second is reported as an error.
    """
    targets: Dict[str, Target] = {}
    errors: Dict[str, str] = {}
    if not target_dir or not os.path.isdir(target_dir):
        errors[str(target_dir)] = 'target directory does not exist'
        return targets, errors
    for fn in sorted(os.listdir(target_dir)):
        if not fn.endswith('.npz') or fn.endswith('.tmp.npz'):
            continue
        try:
            t = load_target(os.path.join(target_dir, fn), expected_identity)
        except TargetError as e:
            errors[fn] = str(e)
            continue
        if t.name in targets:
            errors[fn] = f'duplicate target name {t.name!r}'
            continue
        targets[t.name] = t
    return targets, errors


class TargetLibrary:
    """
    The targets of one directory, and how a ``target`` parameter value names one.

    A spec is resolved as: ``''`` -> no target; a name in the library; a ``.npz`` path
    (absolute, or relative to the directory); or ``<directory>/<spec>.npz`` for a target
    saved after the library was last read (``target_maker``). Every target is checked
    against ``identity`` (the running model), so a target of another model is refused.

    Args:
        directory: folder of ``.npz`` target files (``''``: no library, paths only).
        identity: ``checkpoint.model_identity`` of the running model (None: not checked).
    """

    def __init__(self, directory: str = '', identity: Optional[str] = None):
        self.directory = directory or ''
        self.identity = identity
        self.targets: Dict[str, Target] = {}
        self.errors: Dict[str, str] = {}

    def reload(self) -> Dict[str, str]:
        """Re-read the directory; returns ``{file: reason}`` of the files that failed."""
        if self.directory:
            self.targets, self.errors = load_library(self.directory, self.identity)
        else:
            self.targets, self.errors = {}, {}
        return self.errors

    @classmethod
    def open(cls, directory: str, identity: Optional[str] = None) -> 'TargetLibrary':  # noqa: A003
        """Load a library; ``TargetError`` if ``directory`` is given but does not exist."""
        if directory and not os.path.isdir(directory):
            raise TargetError(f'target directory {directory!r} does not exist')
        lib = cls(directory, identity)
        lib.reload()
        return lib

    @property
    def names(self):
        return sorted(self.targets)

    def resolve(self, spec: str) -> Optional[Target]:
        """Target named by ``spec`` (None for ``''``); ``TargetError`` with the reason."""
        if not spec:
            return None
        if spec in self.targets:
            return self.targets[spec]
        if os.path.isabs(spec) or not self.directory:
            path = spec
        else:
            path = os.path.join(self.directory, spec)
        if not path.endswith('.npz'):
            if self.directory and os.path.isfile(path + '.npz'):
                path += '.npz'
            else:
                known = ', '.join(self.names) or 'none'
                raise TargetError(f'unknown target {spec!r} (library {self.directory!r} '
                                  f'has: {known})')
        return load_target(path, self.identity)

    def path_for(self, name: str) -> str:
        """Where :meth:`save` writes target ``name``."""
        if not self.directory:
            raise TargetError('no target directory set (parameter target_dir)')
        if not name or os.sep in name or name.startswith('.'):
            raise TargetError(f'target name {name!r} must be a plain file name')
        return os.path.join(self.directory, name + '.npz')

    def save(self, target: Target) -> str:
        """
        Write ``target`` as ``<directory>/<name>.npz`` and add it; returns the path.

        A target already saved under that name is kept as ``<name>.npz.bak``.
        """
        path = self.path_for(target.name)
        save_target(path, target, keep_old=True)
        self.targets[target.name] = target
        return path


def make_target(extractor, rgb: np.ndarray, points, name: str, depth: Optional[np.ndarray] = None,
                K=None, depth_window: int = 5, calibrate: bool = True,
                gate_config: Optional[dict] = None) -> Target:
    """
    Create a target (one reference view) from a reference image.

    With ``calibrate`` the view's similarity gate is measured on augmented copies of the
    image (:func:`ccl_perception.target_gates.calibrate`, ``gate_config`` overrides its
    defaults) and stored with its statistics.

    Args:
        extractor: a ``ccl_perception.inference.DescriptorExtractor`` (``__call__(rgb)
            -> (D, h, w)``, ``.identity``).
        rgb: ``(H, W, 3)`` uint8 reference image.
        points: ``(N >= 2, 2)`` pixels ``(x, y)``; the first two are the grasp axis.
        depth: optional ``(H, W)`` metres aligned with ``rgb`` (NaN = missing).
        K: ``(3, 3)`` intrinsics, required with ``depth``.

    Raises:
        ValueError: see :func:`check_points`; an empty name; depth without intrinsics or of
        another size; intrinsics that are not a pinhole matrix with the principal point in
        the image; no valid depth at the axis points; a 3D axis shorter than
        :data:`MIN_AXIS_M`.
    """
    import torch

    from ccl_perception.correspondence import full_to_grid, sample_descriptors

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(
            f'reference image must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}')
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f'target name must be a non-empty string, got {name!r}')
    H, W = rgb.shape[:2]
    pts = check_points(points, (H, W))
    if K is not None:
        K = geometry.check_intrinsics(K, (H, W))
    if depth is not None:
        if K is None:
            raise ValueError('reference depth needs intrinsics (--intrinsics)')
        depth = np.asarray(depth, dtype=np.float32)
        if depth.shape != (H, W):
            raise ValueError(f'depth {depth.shape} and image {(H, W)} differ in size')
    with torch.no_grad():
        desc = extractor(rgb)[None].float().cpu()
        # Bilinear sampling of the 1/8 map at full_to_grid(p) is the full-resolution
        # (upsample_descriptors) map at p, without materialising the (D, H, W) tensor; it is
        # also exact for sub-pixel points.
        grid = full_to_grid(torch.from_numpy(pts)[None].float(), getattr(extractor, 'stride', 8))
        sampled = sample_descriptors(desc, grid)[0].numpy()
    if not np.all(np.isfinite(sampled)):
        raise ValueError(f'the model gave non-finite (NaN/inf) descriptors at the target points; '
                         f'its weights are broken (model {extractor.identity})')
    points_3d, axis_length = None, float('nan')
    if depth is not None:
        points_3d, valid = geometry.keypoints_to_3d(depth, pts, K, depth_window)
        if not valid[:2].all():
            raise ValueError(f'no valid depth at the grasp-axis points {pts[:2].tolist()}')
        axis_length = float(np.linalg.norm(points_3d[1] - points_3d[0]))
        if axis_length < MIN_AXIS_M:
            raise ValueError(f'the grasp axis between points 1 and 2 is {axis_length * 1000:.2f} '
                             f'mm long in 3D; a target needs at least {MIN_AXIS_M * 1000:g} mm')
    cal = {}
    if calibrate:
        from ccl_perception import target_gates
        c = target_gates.calibrate(extractor, rgb, pts, sampled, depth, K, points_3d,
                                   gate_config)
        cal = {'min_similarity': c['min_similarity'], 'calibration_pos': c['positive'],
               'calibration_neg': c['negative']}
    return Target(name=name, descriptors=sampled.astype(np.float32), pixels=pts,
                  model_identity=str(extractor.identity), image_size=(H, W), points_3d=points_3d,
                  axis_length=axis_length, intrinsics=K, **cal)


def check_points(points, size: Tuple[int, int]) -> np.ndarray:
    """
    Target pixels -> ``(N, 2)`` float64, or ``ValueError`` naming the bad point.

    Args:
        points: ``N >= 2`` pixels ``(x, y)``; the first two are the grasp axis.
        size: ``(H, W)`` of the reference image.

    Requires every point finite and inside the image (``0 <= x <= W - 1``,
    ``0 <= y <= H - 1``), any two points at least :data:`MIN_POINT_SEPARATION_PX` apart and
    the axis (points 1 -> 2) at least :data:`MIN_AXIS_PX` long.
    """
    H, W = int(size[0]), int(size[1])
    try:
        pts = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f'target points must be numbers x,y ({e})') from None
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f'target points must be (N, 2) pixels x,y, got shape {pts.shape}')
    if len(pts) < 2:
        raise ValueError(f'a target needs at least two points (the grasp axis), got {len(pts)}')
    for i, (x, y) in enumerate(pts, 1):
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError(f'point {i} ({x:g}, {y:g}) is not finite')
        if not (0 <= x <= W - 1 and 0 <= y <= H - 1):
            raise ValueError(f'point {i} ({x:g}, {y:g}) is outside the {W}x{H} image: '
                             f'allowed x in [0, {W - 1}], y in [0, {H - 1}]')
    axis = float(np.hypot(*(pts[1] - pts[0])))
    if axis < MIN_AXIS_PX:
        raise ValueError(f'points 1 and 2 (the grasp axis) are {axis:.2f} px apart; '
                         f'they must be at least {MIN_AXIS_PX:g} px apart')
    dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    np.fill_diagonal(dist, np.inf)
    i, j = np.unravel_index(np.argmin(dist), dist.shape)
    if dist[i, j] < MIN_POINT_SEPARATION_PX:
        raise ValueError(f'points {min(i, j) + 1} and {max(i, j) + 1} are {dist[i, j]:.2f} px '
                         f'apart; every two points must be at least '
                         f'{MIN_POINT_SEPARATION_PX:g} px apart')
    return pts


def _numbers(text: str, what: str, n: int) -> list:
    """``'a,b,...'`` -> ``n`` floats, or ``ValueError`` naming ``what`` and the bad part."""
    parts = text.split(',')
    if len(parts) != n:
        raise ValueError(
            f'{what} {text!r}: expected {n} comma-separated numbers, got {len(parts)}')
    out = []
    for part in parts:
        try:
            out.append(float(part))
        except ValueError:
            raise ValueError(f'{what} {text!r}: {part.strip()!r} is not a number') from None
    return out


def parse_point(text: str) -> Tuple[float, float]:
    """``'x,y'`` -> ``(x, y)``; ``ValueError`` naming the text otherwise."""
    x, y = _numbers(text, 'point (x,y)', 2)
    return x, y


def parse_intrinsics(text: str) -> np.ndarray:
    """
    Parse ``'fx,fy,cx,cy'``, a ``.npy`` (3x3) or a camera_info YAML into a ``(3, 3)`` K.

    The YAML gives ``camera_matrix.data`` or ``k``.

    Only the form is checked here (finite, positive focal lengths); the principal point is
    checked against the image in :func:`make_target`.
    """
    if os.path.isfile(text):
        if text.endswith('.npy'):
            try:
                return geometry.check_intrinsics(np.load(text, allow_pickle=False))
            except ValueError as e:
                raise ValueError(f'intrinsics file {text}: {e}') from None
        import yaml
        try:
            with open(text) as f:
                d = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ValueError(
                f'intrinsics file {text} is not a .npy and not valid YAML: {e}') from None
        d = d if isinstance(d, dict) else {}
        data = d.get(
            'camera_matrix',
            {}).get('data') if isinstance(
            d.get('camera_matrix'),
            dict) else d.get('k')
        if data is None:
            raise ValueError(f'intrinsics file {text}: no camera_matrix.data or k in the YAML')
        try:
            return geometry.check_intrinsics(np.asarray(data, dtype=np.float64).reshape(3, 3))
        except ValueError as e:
            raise ValueError(f'intrinsics file {text}: {e}') from None
    if ',' not in text:
        raise ValueError(f'intrinsics {text!r} is neither an existing file nor fx,fy,cx,cy')
    return geometry.check_intrinsics(geometry.intrinsics_matrix(
        *_numbers(text, 'intrinsics (fx,fy,cx,cy)', 4)))


def read_depth(path: str, depth_scale: float = 0.001) -> np.ndarray:
    """
    Read a depth file as float32 metres (NaN missing).

    16-bit PNG or uint16 ``.npy`` in units of ``depth_scale`` metres (default mm), or float
    ``.npy`` in metres.
    """
    if not os.path.isfile(path):
        raise ValueError(f'depth file {path!r} does not exist')
    if path.endswith('.npy'):
        d = np.load(path, mmap_mode='r', allow_pickle=False)
        if d.ndim == 2 and max(d.shape) > MAX_IMAGE_SIDE:
            raise ValueError(f'depth {path!r} is {d.shape[1]}x{d.shape[0]} px: larger than the '
                             f'{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} limit (MAX_IMAGE_SIDE)')
        d = np.array(d)
    else:
        import cv2
        check_image_size(path, 'depth')  # before decoding: a huge PNG is small on disk
        d = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if d is None:
            raise ValueError(f'cannot read depth image {path!r}')
    if d.ndim != 2:
        raise ValueError(f'depth {path!r} must be single-channel, got shape {d.shape}')
    out = d.astype(np.float32) * (depth_scale if np.issubdtype(d.dtype, np.integer) else 1.0)
    out[~np.isfinite(out) | (out <= 0)] = np.nan
    return out


def main(argv=None) -> int:
    """``make_target`` console script: a known failure is one line on stderr and exit code 2."""
    from ccl_perception import cli
    from ccl_perception.model_settings import DEFAULT_DEVICE, DEFAULT_DOWNSCALE, DOWNSCALE
    from ccl_perception.validation import real

    p = cli.ArgumentParser(
        prog='make_target',
        description='Create a grasp target file from a reference image.')
    p.add_argument('--checkpoint', default='',
                   help='model checkpoint (.pt); default: the shipped model '
                        '(ccl_perception/models)')
    p.add_argument('--downscale', type=cli.arg_type(DOWNSCALE), default=DEFAULT_DOWNSCALE,
                   help='shrink the image this many times before the model; '
                        "use the planner's value")
    p.add_argument('--image', required=True, help='reference RGB image')
    p.add_argument(
        '--depth',
        help='aligned depth: 16-bit PNG / uint16 .npy (mm) or float .npy (m)')
    p.add_argument('--depth-scale', type=cli.arg_type(real(0, None, low_open=True)), default=0.001,
                   help='metres per integer depth unit')
    p.add_argument('--intrinsics', help='fx,fy,cx,cy or a .npy 3x3 or a camera_info YAML')
    p.add_argument('--points', nargs='+', required=True,
                   help='pixels x,y; the first two are the grasp axis')
    p.add_argument('--name', required=True, help='target name')
    p.add_argument('--out', required=True, help='output .npz')
    p.add_argument('--force', action='store_true',
                   help='replace an existing --out (the old file is kept as <out>.bak)')
    p.add_argument('--device', default=DEFAULT_DEVICE)
    p.add_argument('--add-view', action='store_true',
                   help=f'add this image as another reference view of the target in --out '
                        f'(same name and model; at most {MAX_VIEWS} views)')
    p.add_argument('--no-calibrate', action='store_true',
                   help="store no calibrated similarity gate (the planner's global "
                        'min_similarity applies)')
    args = p.parse_args(argv)
    from ccl_perception.checkpoint import CheckpointError
    return cli.run('make_target', lambda: _run(args), CheckpointError)


def _run(args) -> int:
    """Do the CLI's work after parsing: cheap checks first, the model last, the file at the end."""
    from ccl_perception import cli
    from ccl_perception.image_io import read_rgb
    from ccl_perception.inference import DescriptorExtractor
    if not args.out.endswith('.npz'):
        raise ValueError(
            f'--out {args.out!r} must end in .npz (the planner reads *.npz from target_dir)')
    if os.path.exists(args.out) and not (args.force or args.add_view):
        raise ValueError(f'--out {args.out!r} exists; pass --force to replace it (the old file '
                         f'is then kept as {args.out}{BACKUP_SUFFIX})')
    pts = [parse_point(s) for s in args.points]
    K = parse_intrinsics(args.intrinsics) if args.intrinsics else None
    depth = read_depth(args.depth, args.depth_scale) if args.depth else None
    rgb = read_rgb(args.image)
    check_points(pts, rgb.shape[:2])  # the cheap checks before the model loads
    if K is not None:
        geometry.check_intrinsics(K, rgb.shape[:2])
    if depth is not None and (K is None or depth.shape != rgb.shape[:2]):
        raise ValueError('--depth needs --intrinsics' if K is None else
                         f'--depth is {depth.shape[1]}x{depth.shape[0]} '
                         f'but --image is {rgb.shape[1]}x{rgb.shape[0]}')
    from ccl_perception.model_zoo import default_model_path
    extractor = DescriptorExtractor(args.checkpoint or default_model_path(),
                                    device=cli.check_device(args.device), downscale=args.downscale)
    existing = load_target(args.out, str(extractor.identity)) if args.add_view else None
    view = make_target(extractor, rgb, pts, args.name, depth=depth, K=K,
                       calibrate=not args.no_calibrate)
    target = view if existing is None else add_view(existing, view)
    try:
        backup = save_target(args.out, target, keep_old=True)
    except OSError as e:
        raise OSError(f'cannot write the target to {args.out!r}: {e.strerror or e}') from e
    gate = (f'{view.gate[0]:.3f} / {view.gate[1]:.3f}' if view.gate is not None
            else 'none (global min_similarity)')
    print(f'wrote target {target.name!r} (view {len(target.views)} of {len(target.views)}: '
          f'{view.axis_length:.4f} m, similarity gates {gate}, model {target.model_identity}, '
          f'downscale {target.downscale}) to {args.out}'
          + (f'; the previous file is kept as {backup}' if backup else ''))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
