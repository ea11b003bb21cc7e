"""Frame -> grasp pose, without ROS: the core that the grasp planner node wraps.

``GraspPipeline.frame_to_pose(rgb, depth, K, target)`` runs

    descriptor model -> keypoint matcher (heatmap, expectation, confidence)
    -> geometry (robust depth, back-projection, [RANSAC + Kabsch], 6D grasp)

and returns a :class:`PipelineResult` that either carries a pose or says why it
abstained. It abstains -- a grasp is never produced for an object that is not there --
when: a grasp-axis keypoint's confidence is below ``min_confidence`` or its best cosine
similarity anywhere in the frame is below ``min_similarity``; a keypoint falls
outside the image; depth is missing/NaN at an axis keypoint; the measured axis length
differs from the target's reference by more than ``axis_length_tolerance`` (relative);
or, with three or more keypoints and reference 3D points, fewer than 3 keypoints agree
with a rigid fit of the reference shape. Malformed input (sizes, dtypes) raises
``ValueError``.

The lead's benchmark uses it directly (``training/benchmark.py``).
"""

import time
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from ccl_perception import geometry
from ccl_perception.correspondence import DEFAULT_TAU
from ccl_perception.keypoint_matcher import KeypointMatch, KeypointMatcher

#: Defaults of every knob (also the ``grasp_planner`` node parameters of the same name).
DEFAULTS = {
    'tau': DEFAULT_TAU,            # softmax temperature of Eq. 2 (the planner uses the checkpoint's)
    'confidence_scale_px': 16.0,   # confidence = exp(-heatmap std [px] / this)
    'min_confidence': 0.3,         # abstain below this (min over the two axis keypoints)
    'min_similarity': 0.5,         # abstain when no pixel's cosine similarity reaches this
    'depth_window': 5,             # median window for keypoint depth, pixels (odd)
    'axis_length_tolerance': 0.3,  # abstain if | |axis| - reference | / reference exceeds this
    'gripper_margin': 0.02,        # opening width = axis length + margin, metres
    'max_width': 0.08,             # gripper stroke, metres (Franka hand: 0.08)
    'approach': 'normal',          # 'normal' (minus the local surface normal) or 'camera' (optical axis)
    'normal_radius_px': 7,         # half-size of the normal-estimation patch, pixels
    'normal_method': 'pca',        # 'pca' (numpy) or 'open3d' (same result, slower import)
    'ransac_threshold': 0.01,      # inlier distance of the reference-shape fit, metres
    'min_inlier_fraction': 0.8,    # 3+ keypoints: at least this fraction (and 3) must fit the reference shape (0.8: 4 of 5)
}


@dataclass
class PipelineResult:
    """Outcome of one frame.

    Attributes:
        pose: the grasp or ``None`` when abstaining.
        reason: ``'ok'`` or why the pipeline abstained.
        match: keypoints, confidences and heatmaps (``None`` if matching did not run).
        points_3d: ``(N, 3)`` metres (NaN where no depth), camera optical frame.
        confidence: min confidence of the two axis keypoints (0 if not matched).
        timings: seconds per stage (``descriptors``, ``match``, ``geometry``).
    """

    pose: Optional[geometry.GraspPose]
    reason: str
    match: Optional[KeypointMatch] = None
    points_3d: Optional[np.ndarray] = None
    confidence: float = 0.0
    timings: Dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.pose is not None


def merge_config(config: Optional[dict]) -> dict:
    """``DEFAULTS`` updated with ``config``; unknown keys raise ``ValueError``."""
    cfg = dict(DEFAULTS)
    for k, v in (config or {}).items():
        if k not in DEFAULTS:
            raise ValueError(f'unknown grasp pipeline option {k!r}; known: {", ".join(DEFAULTS)}')
        cfg[k] = v
    if not 0.0 < float(cfg['min_inlier_fraction']) <= 1.0:
        raise ValueError(f"min_inlier_fraction must be in (0, 1], got {cfg['min_inlier_fraction']}")
    if cfg['approach'] not in ('normal', 'camera'):
        raise ValueError(f"approach must be 'normal' or 'camera', got {cfg['approach']!r}")
    return cfg


class GraspPipeline:
    """Pure frame -> pose pipeline.

    Args:
        extractor: ``DescriptorExtractor``-like: ``__call__(rgb uint8 (H, W, 3)) ->
            torch (D, h, w)``, ``.stride``, ``.identity``.
        config: overrides of :data:`DEFAULTS`.
    """

    def __init__(self, extractor, config: Optional[dict] = None):
        self.extractor = extractor
        self.config = merge_config(config)
        self.matcher = KeypointMatcher(self.config['tau'], getattr(extractor, 'stride', 8),
                                       self.config['confidence_scale_px'])

    def update_config(self, **changes) -> dict:
        """Validate ``changes`` against the current config and apply all of them or none.

        Raises:
            ValueError: an unknown key or an invalid value; nothing is changed then.
        """
        cfg = merge_config({**self.config, **changes})
        matcher = KeypointMatcher(cfg['tau'], self.matcher.stride, cfg['confidence_scale_px'])
        self.config, self.matcher = cfg, matcher
        return cfg

    def frame_to_pose(self, rgb: np.ndarray, depth: np.ndarray, K, target) -> PipelineResult:
        """One RGB-D frame -> :class:`PipelineResult`.

        Args:
            rgb: ``(H, W, 3)`` uint8 RGB.
            depth: ``(H, W)`` float metres aligned to ``rgb``, NaN = missing.
            K: ``(3, 3)`` intrinsics of ``rgb``.
            target: :class:`ccl_perception.targets.Target`.
        """
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}')
        if depth is None or np.asarray(depth).shape != rgb.shape[:2]:
            raise ValueError(f'depth {None if depth is None else np.asarray(depth).shape} does not match '
                             f'the colour image {rgb.shape[:2]}')
        K = geometry.check_intrinsics(K)
        t0 = time.perf_counter()
        desc = self.extractor(rgb)
        t1 = time.perf_counter()
        result = self.pose_from_descriptors(desc, depth, K, target)
        result.timings = {'descriptors': t1 - t0, **result.timings}
        return result

    def pose_from_descriptors(self, desc, depth: np.ndarray, K, target) -> PipelineResult:
        """Same as :meth:`frame_to_pose` from a precomputed ``(D, h, w)`` descriptor map."""
        cfg = self.config
        t0 = time.perf_counter()
        m = self.matcher.match(target.descriptors, desc)
        t1 = time.perf_counter()
        conf = float(m.confidence[:2].min())
        res = PipelineResult(pose=None, reason='', match=m, confidence=conf)
        res.timings = {'match': t1 - t0}
        H, W = depth.shape
        kp = m.keypoints
        sim = float(m.peak_similarity[:2].min())
        if sim < cfg['min_similarity']:
            res.reason = (f'best descriptor similarity {sim:.3f} < {cfg["min_similarity"]:.3f}: '
                          'target not in view')
            return res
        if conf < cfg['min_confidence']:
            res.reason = (f'low match confidence {conf:.2f} < {cfg["min_confidence"]:.2f} '
                          f'(heatmap spread {m.std_px[:2].max():.1f} px): target not found')
            return res
        inside = (kp[:, 0] >= -0.5) & (kp[:, 0] <= W - 0.5) & (kp[:, 1] >= -0.5) & (kp[:, 1] <= H - 0.5)
        if not inside[:2].all():
            res.reason = f'grasp-axis keypoint outside the {W}x{H} image: {kp[:2].round(1).tolist()}'
            return res
        pts, valid = geometry.keypoints_to_3d(depth, kp, K, int(cfg['depth_window']))
        res.points_3d = pts
        p1, p2 = pts[0], pts[1]
        if len(kp) >= 3 and target.points_3d is not None:
            need = max(3, int(np.ceil(cfg['min_inlier_fraction'] * len(kp) - 1e-9)))
            fit = geometry.ransac_kabsch(target.points_3d, pts, valid & inside, threshold=cfg['ransac_threshold'],
                                         min_inliers=need)
            if fit is None:
                res.reason = (f'3D keypoints contradict the target: fewer than {need} of {len(kp)} fit its '
                              f'reference shape within {cfg["ransac_threshold"] * 100:.1f} cm')
                return res
            R, t, _ = fit
            p1, p2 = target.points_3d[:2] @ R.T + t  # robust axis, also where one end has no depth
        elif not valid[:2].all():
            bad = kp[:2][~valid[:2]].round(1).tolist()
            res.reason = f'no valid depth at grasp keypoint(s) {bad} (missing, zero or NaN)'
            return res
        length = float(np.linalg.norm(p2 - p1))
        ref = target.axis_length
        if np.isfinite(ref) and ref > 0 and abs(length - ref) / ref > cfg['axis_length_tolerance']:
            res.reason = (f'3D keypoints contradict the target: axis length {length * 100:.1f} cm vs '
                          f'reference {ref * 100:.1f} cm (tolerance {cfg["axis_length_tolerance"]:.0%})')
            return res
        hint = None
        if cfg['approach'] == 'normal':
            mid_px = geometry.project(((p1 + p2) / 2)[None], K)[0]
            n = geometry.estimate_normal(depth, K, mid_px, int(cfg['normal_radius_px']), cfg['normal_method'])
            hint = None if n is None else -n
        try:
            res.pose = geometry.grasp_from_axis(p1, p2, hint, cfg['gripper_margin'], cfg['max_width'])
        except ValueError as e:
            res.reason = f'degenerate grasp axis: {e}'
            return res
        res.reason = 'ok'
        res.timings['geometry'] = time.perf_counter() - t1
        return res


def frame_to_pose(extractor, rgb, depth, K, target, config: Optional[dict] = None) -> PipelineResult:
    """Functional form of :meth:`GraspPipeline.frame_to_pose` (builds a pipeline each call)."""
    return GraspPipeline(extractor, config).frame_to_pose(rgb, depth, K, target)
