"""Grasp targets: descriptors of an object's grasp keypoints, stored without pickle.

A target is made once from a reference RGB(-D) image, a trained checkpoint and two or
more pixels (the paper picks two grasp-axis pixels per object; points 1 and 2 are the
grasp axis, further points only help the robust 3D fit). File format: ``.npz`` with
only numeric and fixed-width unicode arrays, loaded with ``allow_pickle=False``:

==================  ===========  ==========================================================
key                 shape/dtype  meaning
==================  ===========  ==========================================================
format_version      () int       1
name                () str       target name (library key)
model_identity      () str       ``checkpoint.model_identity`` of the model that made it
descriptors         (N, D) f32   unit descriptors at the pixels of the full-resolution
                                 (bilinearly upsampled) descriptor map
pixels              (N, 2) f64   reference pixels ``(x, y)``
image_size          (2,) int     reference image ``(H, W)``
points_3d           (N, 3) f64   reference 3D points, camera frame, metres (NaN: no depth)
axis_length         () f64       ``|p2 - p1|`` metres (NaN: no depth)
intrinsics          (3, 3) f64   reference K (NaN: not given)
==================  ===========  ==========================================================

CLI (console script ``make_target``)::

    make_target --checkpoint ck.pt --image ref.png --depth ref_depth.png \\
        --intrinsics 615.0,615.0,320.0,240.0 --points 300,200 340,210 --name mug \\
        --out targets/mug.npz
"""

import argparse
import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from ccl_perception import geometry

FORMAT_VERSION = 1


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

    @property
    def has_3d(self) -> bool:
        """True when reference depth was given for at least the two axis points."""
        return self.points_3d is not None and bool(np.all(np.isfinite(self.points_3d[:2])))


def save_target(path: str, target: Target) -> None:
    """Write a target ``.npz`` atomically (temp file + rename)."""
    n = len(target.descriptors)
    pts = target.points_3d if target.points_3d is not None else np.full((n, 3), np.nan)
    K = target.intrinsics if target.intrinsics is not None else np.full((3, 3), np.nan)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + '.tmp.npz'
    np.savez(tmp, format_version=np.int64(FORMAT_VERSION), name=np.str_(target.name),
             model_identity=np.str_(target.model_identity),
             descriptors=np.asarray(target.descriptors, np.float32),
             pixels=np.asarray(target.pixels, np.float64), image_size=np.asarray(target.image_size, np.int64),
             points_3d=np.asarray(pts, np.float64), axis_length=np.float64(target.axis_length),
             intrinsics=np.asarray(K, np.float64))
    os.replace(tmp, path)


def load_target(path: str, expected_identity: Optional[str] = None) -> Target:
    """Load and validate a target file.

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
    if int(data['format_version']) != FORMAT_VERSION:
        raise TargetError(f'target file {path!r} has format {int(data["format_version"])}, expected {FORMAT_VERSION}')
    desc = data['descriptors']
    if desc.ndim != 2 or len(desc) < 2 or not np.all(np.isfinite(desc)):
        raise TargetError(f'target file {path!r}: descriptors must be finite (N>=2, D), got {desc.shape}')
    identity = str(data['model_identity'])
    if expected_identity is not None and identity != expected_identity:
        raise TargetError(f'target {str(data["name"])!r} ({path}) was made with model {identity}, '
                          f'but the running model is {expected_identity}; re-create it with make_target')
    pts = data.get('points_3d')
    K = data.get('intrinsics')
    return Target(name=str(data['name']), descriptors=desc.astype(np.float32), pixels=data['pixels'],
                  model_identity=identity, image_size=tuple(int(v) for v in data['image_size']),
                  points_3d=None if pts is None or not np.any(np.isfinite(pts)) else pts,
                  axis_length=float(data.get('axis_length', np.nan)),
                  intrinsics=None if K is None or not np.all(np.isfinite(K)) else K)


def load_library(target_dir: str, expected_identity: Optional[str] = None):
    """Load every ``*.npz`` of a directory.

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
    """The targets of one directory, and how a ``target`` parameter value names one.

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
    def open(cls, directory: str, identity: Optional[str] = None) -> 'TargetLibrary':
        """A loaded library; ``TargetError`` if ``directory`` is given but does not exist."""
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
        """Write ``target`` as ``<directory>/<name>.npz`` and add it; returns the path."""
        path = self.path_for(target.name)
        save_target(path, target)
        self.targets[target.name] = target
        return path


def make_target(extractor, rgb: np.ndarray, points, name: str, depth: Optional[np.ndarray] = None,
                K=None, depth_window: int = 5) -> Target:
    """Create a target from a reference image.

    Args:
        extractor: a ``ccl_perception.inference.DescriptorExtractor`` (``__call__(rgb)
            -> (D, h, w)``, ``.identity``).
        rgb: ``(H, W, 3)`` uint8 reference image.
        points: ``(N >= 2, 2)`` pixels ``(x, y)``; the first two are the grasp axis.
        depth: optional ``(H, W)`` metres aligned with ``rgb`` (NaN = missing).
        K: ``(3, 3)`` intrinsics, required with ``depth``.

    Raises:
        ValueError: fewer than two points, points outside the image, depth without
        intrinsics or of another size, or no valid depth at the axis points.
    """
    import torch

    from ccl_perception.correspondence import full_to_grid, sample_descriptors

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'reference image must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}')
    H, W = rgb.shape[:2]
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 2:
        raise ValueError(f'a target needs at least two points (the grasp axis), got {len(pts)}')
    if np.any(pts < 0) or np.any(pts[:, 0] > W - 1) or np.any(pts[:, 1] > H - 1):
        raise ValueError(f'points must lie inside the {W}x{H} image, got {pts.tolist()}')
    with torch.no_grad():
        desc = extractor(rgb)[None].float().cpu()
        # Bilinear sampling of the 1/8 map at full_to_grid(p) is the full-resolution
        # (upsample_descriptors) map at p, without materialising the (D, H, W) tensor; it is
        # also exact for sub-pixel points.
        grid = full_to_grid(torch.from_numpy(pts)[None].float(), getattr(extractor, 'stride', 8))
        sampled = sample_descriptors(desc, grid)[0].numpy()
    points_3d, axis_length = None, float('nan')
    if depth is not None:
        if K is None:
            raise ValueError('reference depth needs intrinsics (--intrinsics)')
        depth = np.asarray(depth, dtype=np.float32)
        if depth.shape != (H, W):
            raise ValueError(f'depth {depth.shape} and image {(H, W)} differ in size')
        points_3d, valid = geometry.keypoints_to_3d(depth, pts, K, depth_window)
        if not valid[:2].all():
            raise ValueError(f'no valid depth at the grasp-axis points {pts[:2].tolist()}')
        axis_length = float(np.linalg.norm(points_3d[1] - points_3d[0]))
    return Target(name=name, descriptors=sampled.astype(np.float32), pixels=pts,
                  model_identity=str(extractor.identity), image_size=(H, W), points_3d=points_3d,
                  axis_length=axis_length, intrinsics=None if K is None else geometry.check_intrinsics(K))


def parse_point(text: str) -> Tuple[float, float]:
    """``'x,y'`` -> ``(x, y)``; ``ValueError`` otherwise."""
    parts = text.split(',')
    if len(parts) != 2:
        raise ValueError(f'a point is written x,y; got {text!r}')
    return float(parts[0]), float(parts[1])


def parse_intrinsics(text: str) -> np.ndarray:
    """``'fx,fy,cx,cy'``, or a ``.npy`` (3x3), or a camera_info YAML (``camera_matrix.data`` or ``k``)."""
    if os.path.isfile(text):
        if text.endswith('.npy'):
            return geometry.check_intrinsics(np.load(text, allow_pickle=False))
        import yaml
        with open(text) as f:
            d = yaml.safe_load(f)
        data = d.get('camera_matrix', {}).get('data') if isinstance(d.get('camera_matrix'), dict) else d.get('k')
        if data is None:
            raise ValueError(f'{text}: no camera_matrix.data or k in the YAML')
        return geometry.check_intrinsics(np.asarray(data, dtype=np.float64).reshape(3, 3))
    vals = [float(v) for v in text.split(',')]
    if len(vals) != 4:
        raise ValueError(f'intrinsics are fx,fy,cx,cy or a file; got {text!r}')
    return geometry.intrinsics_matrix(*vals)


def read_depth(path: str, depth_scale: float = 0.001) -> np.ndarray:
    """Depth file -> float32 metres (NaN missing): 16-bit PNG or uint16 ``.npy`` in units of
    ``depth_scale`` metres (default mm), or float ``.npy`` in metres."""
    if path.endswith('.npy'):
        d = np.load(path, allow_pickle=False)
    else:
        import cv2
        d = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if d is None:
            raise ValueError(f'cannot read depth image {path!r}')
    if d.ndim != 2:
        raise ValueError(f'depth {path!r} must be single-channel, got shape {d.shape}')
    out = d.astype(np.float32) * (depth_scale if np.issubdtype(d.dtype, np.integer) else 1.0)
    out[~np.isfinite(out) | (out <= 0)] = np.nan
    return out


def read_rgb(path: str) -> np.ndarray:
    """Image file -> ``(H, W, 3)`` uint8 RGB."""
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'cannot read image {path!r}')
    return np.ascontiguousarray(img[:, :, ::-1])


def main(argv=None) -> int:
    """``make_target`` console script."""
    p = argparse.ArgumentParser(description='Create a grasp target file from a reference image.')
    p.add_argument('--checkpoint', required=True, help='trained model checkpoint (.pt)')
    p.add_argument('--image', required=True, help='reference RGB image')
    p.add_argument('--depth', help='aligned depth: 16-bit PNG / uint16 .npy (mm) or float .npy (m)')
    p.add_argument('--depth-scale', type=float, default=0.001, help='metres per integer depth unit')
    p.add_argument('--intrinsics', help='fx,fy,cx,cy or a .npy 3x3 or a camera_info YAML')
    p.add_argument('--points', nargs='+', required=True, help='pixels x,y; the first two are the grasp axis')
    p.add_argument('--name', required=True, help='target name')
    p.add_argument('--out', required=True, help='output .npz')
    p.add_argument('--device', default='cpu')
    args = p.parse_args(argv)
    try:
        from ccl_perception.inference import DescriptorExtractor
        pts = [parse_point(s) for s in args.points]
        K = parse_intrinsics(args.intrinsics) if args.intrinsics else None
        depth = read_depth(args.depth, args.depth_scale) if args.depth else None
        extractor = DescriptorExtractor(args.checkpoint, device=args.device)
        target = make_target(extractor, read_rgb(args.image), pts, args.name, depth=depth, K=K)
    except (ValueError, OSError) as e:
        p.exit(2, f'make_target: error: {e}\n')
    save_target(args.out, target)
    print(f'wrote target {target.name!r} ({len(target.pixels)} points, D={target.descriptors.shape[1]}, '
          f'axis length {target.axis_length:.4f} m, model {target.model_identity}) to {args.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
