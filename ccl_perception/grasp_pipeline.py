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
Frame -> grasp pose, without ROS: the core that the grasp planner node wraps.

``GraspPipeline.frame_to_pose(rgb, depth, K, target)`` runs

    descriptor model -> keypoint matcher (heatmap, expectation, confidence)
    -> geometry (robust depth, back-projection, [RANSAC + Kabsch], 6D grasp)

and returns a :class:`PipelineResult` that either carries a pose or says why it
abstained. It abstains -- a grasp is never produced for an object that is not there --
when: a grasp-axis keypoint's confidence is below ``min_confidence`` or its best cosine
similarity anywhere in the frame is below ``min_similarity``; a keypoint falls
outside the image; depth is missing (NaN, inf, zero, negative) at an axis keypoint or at too
many keypoints for the 3D check (the reason says so, and says when the whole frame has no
depth); the measured axis length
differs from the target's reference by more than ``axis_length_tolerance`` (relative);
with three or more keypoints and reference 3D points, fewer than 3 keypoints agree
with a rigid fit of the reference shape; or a physical limit is exceeded: an axis
keypoint's depth outside ``[min_depth, max_depth]`` (sensor range and reach), or an
opening (axis length + ``gripper_margin``) wider than the gripper's ``max_width``. Limits
are never clamped. Malformed input (sizes, dtypes) raises ``ValueError``.

The grasp itself: with ``grasp_refinement: depth`` (the default) the matched axis only
locates the object, and :mod:`ccl_perception.grasp_refine` measures it in the depth image
(closing across its footprint on the table); with ``none`` it is the matched axis. The
approach is ``approach: normal`` -- against the surface: onto the table (the fitted support
plane's normal) with ``depth``, against the local depth normal at the axis midpoint with
``none`` -- or ``camera``, along the optical axis, in both.

Every knob has a default (:data:`DEFAULTS`) and an allowed range (:data:`LIMITS`);
:func:`validate_config` checks both at construction and in
:meth:`GraspPipeline.update_config`, so a bad value never reaches a frame.

The lead's benchmark uses it directly (``training/benchmark.py``).
"""

from dataclasses import dataclass, field
import time
from typing import Dict, Optional

from ccl_perception import geometry
from ccl_perception.correspondence import DEFAULT_TAU
from ccl_perception.keypoint_matcher import KeypointMatch, KeypointMatcher
from ccl_perception.validation import check, choice, flag, integer, real
import numpy as np

#: Defaults of every knob (also the ``grasp_planner`` node parameters of the same name).
DEFAULTS = {
    # softmax temperature of Eq. 2 (the planner uses the checkpoint's)
    'tau': DEFAULT_TAU,
    'confidence_scale_px': 16.0,   # confidence = exp(-heatmap std [px] / this)
    # The abstention gates and the shape fit below were chosen for the shipped model on
    # validation grasp scenes (training/choose_thresholds.py, seeds 9000-9035 seen from 35-65
    # and 50-80 deg, README): min_confidence together with the per-target gates
    # (target_gates.DEFAULTS['alpha'], --gates), min_similarity for targets without them.
    'min_confidence': 0.02,        # abstain below this (min over the two axis keypoints)
    'min_similarity': 0.8,         # abstain when no pixel's cosine similarity reaches this
    # use each target view's own calibrated gate (targets.py, target_gates.py) instead of
    # min_similarity; views without one (files made before it existed) use min_similarity
    'per_target_gates': True,
    'depth_window': 5,             # median window for keypoint depth, pixels (odd)
    # abstain if | |matched axis| - reference | / reference exceeds this (before any refinement)
    'axis_length_tolerance': 0.3,
    'gripper_margin': 0.02,        # opening = axis length + margin, at most max_width, metres
    'max_width': 0.08,             # gripper stroke, metres (Franka hand: 0.08)
    # the opening must exceed the axis length by at least this, metres: 2.5 mm per finger,
    # so an object that fits the stroke (catalogue: <= 7.7 cm of 8) is attempted
    'min_clearance': 0.005,
    # 'normal': against the surface (grasp_refinement depth: the support plane's normal, onto
    # the table; none: the local normal of the depth at the axis midpoint); 'camera': along the
    # optical axis
    'approach': 'normal',
    'ransac_threshold': 0.02,      # inlier distance of the reference-shape fit, metres
    # 3+ keypoints: at least this fraction (and 3) must fit the reference shape (0.8: 4 of 5)
    'min_inlier_fraction': 0.5,
    # abstain when an axis keypoint is nearer than this, metres (sensor minimum)
    'min_depth': 0.05,
    # abstain when an axis keypoint is farther than this, metres (sensor range / reach)
    'max_depth': 3.0,
    # 'none': the grasp is the matched axis; 'depth': the object under the match is measured
    # in depth (ccl_perception.grasp_refine): closing across its footprint on the table
    'grasp_refinement': 'depth',
}

#: Half-size (pixels) of the depth patch whose normal is the approach of ``grasp_refinement:
#: none`` with ``approach: normal`` (:func:`ccl_perception.geometry.estimate_normal`, PCA).
NORMAL_RADIUS_PX = 7

#: Allowed values of every knob of :data:`DEFAULTS` (also the planner's parameter ranges).
LIMITS = {
    'tau': real(0.0, 1.0, low_open=True),
    'confidence_scale_px': real(0.0, 1000.0, low_open=True),
    'min_confidence': real(0.0, 1.0),
    'min_similarity': real(-1.0, 1.0),          # cosine similarity; -1 switches the check off
    'per_target_gates': flag(),
    'depth_window': integer(1, 51, odd=True),
    'axis_length_tolerance': real(0.0, None, low_open=True),
    'gripper_margin': real(0.0, 0.1),
    # 1 m: any parallel gripper; tests open the gate with it
    'max_width': real(0.0, 1.0, low_open=True),
    'min_clearance': real(0.0, 0.1),
    'approach': choice('normal', 'camera'),
    'ransac_threshold': real(0.0, 10.0, low_open=True),
    'min_inlier_fraction': real(0.0, 1.0, low_open=True),
    'min_depth': real(0.0, 10.0),
    'max_depth': real(0.0, 20.0, low_open=True),
    'grasp_refinement': choice('none', 'depth'),
}


@dataclass
class PipelineResult:
    """
    Outcome of one frame.

    Attributes:
        pose: the grasp or ``None`` when abstaining.
        reason: ``'ok'`` or why the pipeline abstained.
        match: keypoints, confidences and heatmaps (``None`` if matching did not run).
        points_3d: ``(N, 3)`` metres (NaN where no depth), camera optical frame.
        confidence: min confidence of the two axis keypoints (0 if not matched).
        timings: seconds per stage (``descriptors``, ``match``, ``geometry``; ``refine``: the
            depth refinement, part of ``geometry``).
        gate: ``(2,)`` the similarity gates applied to the axis points (the view's calibrated
            ones or ``min_similarity``); None before matching.
        view: index of the target view this result is from (0 for a one-view target).
        inliers: keypoints that fit the target's reference shape (-1: the fit did not run).
    """

    pose: Optional[geometry.GraspPose]
    reason: str
    match: Optional[KeypointMatch] = None
    points_3d: Optional[np.ndarray] = None
    confidence: float = 0.0
    timings: Dict[str, float] = field(default_factory=dict)
    gate: Optional[np.ndarray] = None
    view: int = 0
    inliers: int = -1

    @property
    def ok(self) -> bool:
        return self.pose is not None


class PipelineConfig(dict):
    """
    A complete pipeline config that :func:`validate_config` checked (read-only).

    Only :func:`validate_config` makes one; :class:`GraspPipeline` and
    :class:`ccl_perception.planner_state.PlannerState` take it without checking it again.
    Change it by building a new one: ``validate_config({**config, **changes})``.
    """

    def _read_only(self, *args, **kwargs):
        raise TypeError('a validated pipeline config is read-only: '
                        'validate_config({**config, **changes}) makes a new one')

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __reduce__(self):
        """Copy and pickle through the constructor (not item by item, which is refused)."""
        return PipelineConfig, (dict(self),)


def validate_config(cfg: dict) -> PipelineConfig:
    """
    Check a complete pipeline config against :data:`LIMITS`; return it normalised, read-only.

    Raises:
        ValueError: an unknown key, a missing key, a value outside its range (the message
            names the knob, the value and the range), or ``min_depth >= max_depth``.
    """
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise ValueError(
            f'unknown grasp pipeline option {unknown[0]!r}; known: {", ".join(DEFAULTS)}')
    missing = sorted(set(DEFAULTS) - set(cfg))
    if missing:
        raise ValueError(f'grasp pipeline config lacks {", ".join(missing)}')
    out = check(LIMITS, cfg)
    if out['min_depth'] >= out['max_depth']:
        raise ValueError(
            f"min_depth = {out['min_depth']!r} must be below max_depth = {out['max_depth']!r}")
    return PipelineConfig(out)


def merge_config(config: Optional[dict]) -> PipelineConfig:
    """``DEFAULTS`` updated with ``config``, validated (:func:`validate_config`)."""
    return validate_config({**DEFAULTS, **(config or {})})


def physical_limit_reason(p1: np.ndarray, p2: np.ndarray, cfg: dict) -> str:
    """
    Why a grasp between ``p1`` and ``p2`` cannot be done, or ``''``.

    Args:
        p1, p2: ``(3,)`` axis keypoints, metres, camera optical frame.
        cfg: pipeline config (``min_depth``, ``max_depth``, ``gripper_margin``, ``max_width``).

    Returns:
        the abstention reason when a keypoint's depth is outside ``[min_depth, max_depth]``
        or the least opening ``|p2 - p1| + min_clearance`` exceeds ``max_width``; else ``''``.
        (The opening itself is :func:`opening`: ``gripper_margin`` more where the stroke
        allows.)
    """
    z = (float(p1[2]), float(p2[2]))
    if not all(cfg['min_depth'] <= v <= cfg['max_depth'] for v in z):
        return (f'grasp keypoint depth {z[0]:.3f} / {z[1]:.3f} m outside the working range '
                f'[{cfg["min_depth"]:g}, {cfg["max_depth"]:g}] m (min_depth, max_depth)')
    length = float(np.linalg.norm(np.asarray(p2, float) - np.asarray(p1, float)))
    least = length + cfg['min_clearance']
    if least > cfg['max_width'] + geometry.WIDTH_EPS:
        return (f'object too wide for the gripper: needs at least a {least * 100:.1f} cm opening '
                f'(axis {length * 100:.1f} cm + min_clearance {cfg["min_clearance"] * 100:.1f} '
                f'cm), max_width is {cfg["max_width"] * 100:.1f} cm')
    return ''


def opening(length: float, cfg: dict) -> float:
    """
    Return how wide the gripper opens, metres, for an axis ``length`` m long.

    ``length + gripper_margin``, but at most ``max_width``: a Franka Hand opens 8 cm, so a
    6.2 cm box gets 1.8 cm of margin instead of 2 (:func:`physical_limit_reason` requires at
    least ``min_clearance``).
    """
    return float(min(length + max(cfg['gripper_margin'], cfg['min_clearance']), cfg['max_width']))


class GraspPipeline:
    """
    Pure frame -> pose pipeline.

    Args:
        extractor: ``DescriptorExtractor``-like: ``__call__(rgb uint8 (H, W, 3)) ->
            torch (D, h, w)``, ``.stride``, ``.identity``.
        config: overrides of :data:`DEFAULTS`, or a :class:`PipelineConfig` (used as it is).
    """

    def __init__(self, extractor, config: Optional[dict] = None):
        self.extractor = extractor
        self.use(config if isinstance(config, PipelineConfig) else merge_config(config))

    def _matcher(self, cfg: dict) -> KeypointMatcher:
        return KeypointMatcher(cfg['tau'], getattr(
            self.extractor, 'stride', 8), cfg['confidence_scale_px'])

    def update_config(self, **changes) -> dict:
        """
        Validate ``changes`` over the current config and apply them all, or none.

        Returns:
            the new config.

        Raises:
            ValueError: as :func:`validate_config`; the current config is kept.
        """
        return self.use(validate_config({**self.config, **changes}))

    def use(self, config: PipelineConfig) -> PipelineConfig:
        """Run with ``config`` (from :func:`validate_config`, not checked again); returns it."""
        if not isinstance(config, PipelineConfig):
            raise TypeError(f'use() takes a PipelineConfig from validate_config, got '
                            f'{type(config).__name__}')
        self.matcher = self._matcher(config)
        self.config = config
        return config

    def frame_to_pose(self, rgb: np.ndarray, depth: np.ndarray, K, target) -> PipelineResult:
        """
        One RGB-D frame -> :class:`PipelineResult`.

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
            shape = None if depth is None else np.asarray(depth).shape
            raise ValueError(f'depth {shape} does not match the colour image {rgb.shape[:2]}')
        K = geometry.check_intrinsics(K, rgb.shape[:2])
        t0 = time.perf_counter()
        desc = self.extractor(rgb)
        t1 = time.perf_counter()
        result = self.pose_from_descriptors(desc, depth, K, target)
        result.timings = {'descriptors': t1 - t0, **result.timings}
        return result

    def similarity_gate(self, view) -> np.ndarray:
        """Return a target view's ``(2,)`` gates: its calibrated ones or ``min_similarity``."""
        own = getattr(view, 'gate', None)
        if self.config['per_target_gates'] and own is not None:
            return np.asarray(own, np.float64)
        return np.full(2, float(self.config['min_similarity']))

    def pose_from_descriptors(self, desc, depth: np.ndarray, K, target) -> PipelineResult:
        """
        Do what :meth:`frame_to_pose` does, from a precomputed ``(D, h, w)`` descriptor map.

        A target with several views (``target.views``) is matched view by view; the views
        are tried in the order of their support (the smaller margin of an axis point's peak
        similarity over its gate) and the first that gives a pose is used. When none does, the
        result of the best-supported view says why (its reason prefixed with the view).
        """
        views = list(getattr(target, 'views', [target]))
        t0 = time.perf_counter()
        matches = [self.matcher.match(v.descriptors, desc) for v in views]
        t_match = time.perf_counter() - t0
        gates = [self.similarity_gate(v) for v in views]
        support = [float((m.peak_similarity[:2] - g).min()) for m, g in zip(matches, gates)]
        first = None
        for k in sorted(range(len(views)), key=lambda i: -support[i]):
            res = self._view_pose(matches[k], gates[k], depth, K, views[k])
            res.view, res.timings = k, {'match': t_match, **res.timings}
            if res.ok:
                return res
            first = first or res
            if support[k] < 0:  # this view and every later one fail the similarity gate
                break
        if len(views) > 1:
            first.reason = (f'view {first.view + 1} of {len(views)} (best supported): '
                            f'{first.reason}')
        return first

    def _view_pose(self, m: KeypointMatch, gate: np.ndarray, depth: np.ndarray, K,
                   target) -> PipelineResult:
        """Run the checks and the geometry of one target view, from its match ``m``."""
        cfg = self.config
        t1 = time.perf_counter()
        conf = float(m.confidence[:2].min())
        res = PipelineResult(pose=None, reason='', match=m, confidence=conf, gate=gate)
        res.timings = {}
        H, W = depth.shape
        kp = m.keypoints
        low = np.flatnonzero(m.peak_similarity[:2] < gate)
        if len(low):
            i = int(low[np.argmin((m.peak_similarity[:2] - gate)[low])])
            own = cfg['per_target_gates'] and getattr(target, 'gate', None) is not None
            which = "the target view's calibrated gate" if own else 'min_similarity'
            res.reason = (f'best descriptor similarity {m.peak_similarity[i]:.3f} < '
                          f'{gate[i]:.3f} at grasp point {i + 1} ({which}): target not in view')
            return res
        if conf < cfg['min_confidence']:
            res.reason = (f'low match confidence {conf:.2f} < {cfg["min_confidence"]:.2f} '
                          f'(heatmap spread {m.std_px[:2].max():.1f} px): target not found')
            return res
        inside = (kp[:, 0] >= -0.5) & (kp[:, 0] <= W -
                                       0.5) & (kp[:, 1] >= -0.5) & (kp[:, 1] <= H - 0.5)
        if not inside[:2].all():
            res.reason = (f'grasp-axis keypoint outside the {W}x{H} image: '
                          f'{kp[:2].round(1).tolist()}')
            return res
        pts, valid = geometry.keypoints_to_3d(depth, kp, K, int(cfg['depth_window']))
        res.points_3d = pts
        p1, p2 = pts[0], pts[1]
        if len(kp) >= 3 and target.points_3d is not None:
            need = max(3, int(np.ceil(cfg['min_inlier_fraction'] * len(kp) - 1e-9)))
            if int((valid & inside).sum()) < need:  # not a shape mismatch: depth is missing
                res.reason = (f'{missing_depth_reason(depth, kp, valid)}; the 3D check needs '
                              f'{need} keypoints with depth')
                return res
            fit = geometry.ransac_kabsch(target.points_3d, pts, valid & inside,
                                         threshold=cfg['ransac_threshold'], min_inliers=need)
            if fit is None:
                res.reason = (f'3D keypoints contradict the target: fewer than {need} of '
                              f'{len(kp)} fit its reference shape within '
                              f'{cfg["ransac_threshold"] * 100:.1f} cm')
                return res
            R, t, inl = fit
            res.inliers = int(np.count_nonzero(inl))
            p1, p2 = target.points_3d[:2] @ R.T + t  # robust axis, also where one end has no depth
        elif not valid[:2].all():
            res.reason = missing_depth_reason(depth, kp[:2], valid[:2])
            return res
        length = float(np.linalg.norm(p2 - p1))
        ref = target.axis_length
        if (np.isfinite(ref) and ref > 0
                and abs(length - ref) / ref > cfg['axis_length_tolerance']):
            res.reason = (f'3D keypoints contradict the target: axis length {length * 100:.1f} cm '
                          f'vs reference {ref * 100:.1f} cm '
                          f'(tolerance {cfg["axis_length_tolerance"]:.0%})')
            return res
        hint = None                                 # approach 'camera': the optical axis
        if cfg['grasp_refinement'] == 'depth':  # the object under the match, measured in depth
            from ccl_perception.grasp_refine import refine_axis
            t_refine = time.perf_counter()
            q1, q2, onto_table, why = refine_axis(depth, K, p1, p2)
            res.timings['refine'] = time.perf_counter() - t_refine
            if q1 is None:
                res.reason = f'depth refinement: {why}'
                return res
            p1, p2 = q1, q2
            if cfg['approach'] == 'normal':
                hint = onto_table
        limit = physical_limit_reason(p1, p2, cfg)
        if limit:
            res.reason = limit
            return res
        if cfg['grasp_refinement'] == 'none' and cfg['approach'] == 'normal':
            mid_px = geometry.project(((p1 + p2) / 2)[None], K)[0]
            n = geometry.estimate_normal(depth, K, mid_px, NORMAL_RADIUS_PX, 'pca')
            hint = None if n is None else -n
        length = float(np.linalg.norm(p2 - p1))
        try:
            res.pose = geometry.grasp_from_axis(
                p1, p2, hint, opening(length, cfg) - length, cfg['max_width'])
        except ValueError as e:
            res.reason = f'degenerate grasp axis: {e}'
            return res
        res.reason = 'ok'
        res.timings['geometry'] = time.perf_counter() - t1
        return res


def missing_depth_reason(depth: np.ndarray, kp: np.ndarray, valid: np.ndarray) -> str:
    """
    Say where depth is missing: in the whole frame, or at which keypoints.

    Args:
        depth: ``(H, W)`` metres; missing = NaN, inf, zero or negative.
        kp: ``(N, 2)`` keypoints ``(x, y)``, pixels.
        valid: ``(N,)`` whether each keypoint has depth (``geometry.keypoints_to_3d``).
    """
    if not np.any(np.isfinite(depth) & (depth > 0)):
        return (f'no valid depth in the frame: all {depth.shape[1]}x{depth.shape[0]} pixels are '
                'missing, zero, negative, NaN or inf (is the aligned depth stream running?)')
    bad = kp[~valid].round(1).tolist()
    return (f'no valid depth at {len(bad)} of {len(kp)} keypoints {bad} (missing, zero, '
            'negative, NaN or inf around them)')


def frame_to_pose(extractor, rgb, depth, K, target,
                  config: Optional[dict] = None) -> PipelineResult:
    """Functional form of :meth:`GraspPipeline.frame_to_pose` (builds a pipeline each call)."""
    return GraspPipeline(extractor, config).frame_to_pose(rgb, depth, K, target)
