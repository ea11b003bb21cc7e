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
Synthetic view changes with exact homographies (identical-view pairs, Adrian et al. Eq. 10).

``CorrespondenceAugmentation`` applies a kornia 0.9 ``AugmentationSequential`` of
``ColorJitter`` (photometric, no geometry), ``RandomAffine`` (rotation, scale, translation)
and ``RandomPerspective`` to a batch and returns kornia's ``transform_matrix``: the (B, 3, 3)
homography taking a pixel (x, y) of the original image to its pixel in the augmented image.
Both use the package convention (pixel centres at integer coordinates, docs/ARCHITECTURE.md):
kornia warps with ``align_corners=True``, so its matrices act on integer-centred pixel
coordinates; ``test/test_augment.py`` checks this with a bright dot.
"""
import kornia.augmentation as K
import torch

#: Augmentation defaults (``CorrespondenceAugmentation`` merges a user dict over these).
DEFAULT_AUGMENT_CONFIG = {
    # Geometry strong enough to cover a re-arranged object seen 45 deg off-vertical (issue
    # "Self-supervised training that beats its start": on benchmark v2 these, with pasted
    # backgrounds, lifted identical view from AUC 0.16 to 0.21 on data/v2/val; 30 deg,
    # 0.8-1.2 and perspective 0.3 at p 0.5 made every model worse than its start).
    'degrees': 180.0,              # RandomAffine rotation range +-degrees (any in-plane turn)
    'scale': (0.7, 1.4),           # RandomAffine isotropic scale range
    'translate': (0.1, 0.1),       # RandomAffine max shift as a fraction of (W, H)
    'affine_p': 1.0,               # probability of the affine part
    'perspective': 0.5,            # RandomPerspective distortion scale in [0, 1]
    'perspective_p': 0.7,          # probability of the perspective part
    'brightness': 0.3,             # ColorJitter strengths
    'contrast': 0.3,
    'saturation': 0.3,
    'hue': 0.05,
    'jitter_p': 0.8,               # probability of the colour jitter
}


class CorrespondenceAugmentation:
    """
    Random geometric + photometric augmentation that reports its exact homography.

    Args:
        config: dict merged over ``DEFAULT_AUGMENT_CONFIG`` (unknown keys raise ValueError).

    Call ``aug(images, generator=None, seed=None)`` with images (B, 3, H, W) float in [0, 1]:
    returns ``(images_hat (B, 3, H, W), homography (B, 3, 3))``; areas without source pixels
    are zero. With a ``torch.Generator`` or an int ``seed`` the result is deterministic and
    the global torch RNG is left untouched.
    """

    def __init__(self, config: dict = None):
        config = dict(config or {})
        unknown = sorted(set(config) - set(DEFAULT_AUGMENT_CONFIG))
        if unknown:
            raise ValueError(f'unknown augmentation keys {unknown}; allowed: '
                             f'{sorted(DEFAULT_AUGMENT_CONFIG)}')
        self.config = {**DEFAULT_AUGMENT_CONFIG, **config}
        c = self.config
        if not 0.0 <= float(c['perspective']) <= 1.0:
            raise ValueError(f'perspective distortion must be in [0, 1], got {c["perspective"]}')
        self.pipeline = K.AugmentationSequential(
            K.ColorJitter(c['brightness'], c['contrast'], c['saturation'], c['hue'],
                          p=c['jitter_p']),
            K.RandomAffine(degrees=c['degrees'], translate=tuple(c['translate']),
                           scale=tuple(c['scale']), p=c['affine_p']),
            K.RandomPerspective(distortion_scale=c['perspective'], p=c['perspective_p']),
            data_keys=['input'],
        )

    def __call__(self, images: torch.Tensor, generator: torch.Generator = None,
                 seed: int = None):
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ValueError(f'images must be a (B, 3, H, W) tensor, got {got}')
        if not images.is_floating_point():
            raise ValueError(f'images must be float in [0, 1], got {images.dtype}')
        if generator is not None and seed is not None:
            raise ValueError('pass either generator or seed, not both')
        if generator is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        if seed is None:
            return self._run(images)
        devices = [images.device] if images.is_cuda else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return self._run(images)

    def _run(self, images: torch.Tensor):
        out = self.pipeline(images)
        matrix = self.pipeline.transform_matrix
        if matrix is None:  # no geometric op applied
            matrix = torch.eye(3, device=images.device).expand(images.shape[0], 3, 3)
        return out, matrix.to(images.dtype).clone()


def warp_points(kp: torch.Tensor, homography: torch.Tensor, size, eps: float = 1e-8):
    """
    Map pixel points through homographies and flag those that leave the image.

    Args:
        kp: (B, N, 2) full-resolution (x, y) pixels (centres at integers).
        homography: (B, 3, 3) original -> augmented pixel coordinates.
        size: (H, W) of the augmented image.

    Returns:
        kp_hat (B, N, 2) pixels; valid (B, N) bool: finite, in front (w > eps) and inside the
        image, i.e. -0.5 <= x < W - 0.5 and -0.5 <= y < H - 0.5.
    """
    if kp.dim() != 3 or kp.shape[-1] != 2:
        raise ValueError(f'kp must be (B, N, 2), got {tuple(kp.shape)}')
    if homography.shape != (kp.shape[0], 3, 3):
        raise ValueError(
            f'homography must be ({kp.shape[0]}, 3, 3), got {tuple(homography.shape)}')
    height, width = int(size[0]), int(size[1])
    mat = homography.to(kp.dtype)
    ones = torch.ones_like(kp[..., :1])
    proj = torch.cat([kp, ones], dim=-1) @ mat.transpose(1, 2)  # (B, N, 3)
    w = proj[..., 2:]
    safe_w = torch.where(w.abs() > eps, w, torch.full_like(w, eps))
    kp_hat = proj[..., :2] / safe_w
    x, y = kp_hat[..., 0], kp_hat[..., 1]
    valid = ((w[..., 0] > eps) & torch.isfinite(kp_hat).all(dim=-1)
             & (x >= -0.5) & (x < width - 0.5) & (y >= -0.5) & (y < height - 0.5))
    return kp_hat, valid
