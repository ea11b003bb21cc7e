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
The views of one training step and their correspondences: ``I_A``, ``Î_A`` and ``I_B``.

Pure construction from a batch (:class:`~ccl_perception.learning.dataset.ImagePairs` or
:class:`~ccl_perception.learning.supervised.RenderedPairs`) and an augmentation that returns
its exact homography (``ccl_perception.augment.CorrespondenceAugmentation``, or any callable
``augment(images, seed=...) -> (images, H)``):

* ``Î_A`` = augmented ``I_A`` (or ``I_A`` on a random background, the batch's
  ``image_a_hat_source``) with homography ``H``; ``k_Â = full_to_grid(H grid_to_full(k_A))``;
  points that leave ``Î_A`` (or the foreground's empty slots) are invalid and set to 0;
* ``augment_a``: ``I_A`` gets its own draw too (the paper's protocol);
* ``sanity_b_from_a``: ``I_B`` is a third augmented copy of ``I_A`` (every cycle then has a
  true correspondence, ``kp_b_true``);
* rendered pairs: the second rendered view and its exact correspondences replace ``Î_A``.

Every draw is seeded by the batch's ``aug_seed`` (:func:`augment_seeds`), so a step's views
are a function of the batch alone.
"""

from dataclasses import dataclass

import torch

from ..correspondence import full_to_grid, grid_to_full


@dataclass
class Views:
    """
    The views and keypoints of one step.

    Attributes:
        images: list of ``(B, 3, H, W)`` float [0, 1] views
            ``[I_A, Î_A (or the second rendered view), I_B (methods with a second image)]``.
        kp_a: ``(B, N, 2)`` query keypoints on ``images[0]``'s grid.
        kp_a_hat: ``(B, N, 2)`` their true positions in ``images[1]``.
        valid: ``(B, N)`` bool.
        kp_orig: ``(B, N, 2)`` the keypoints on the un-augmented ``I_A`` grid (== ``kp_a``
            unless ``augment_a``).
        indices: per view, the dataset image index of each batch item when the view is an
            un-augmented dataset image (its trunk features may be cached), else None (for the
            whole view or, as a list entry, for one item).
        kp_b_true: ``(B, N, 2)`` true positions in the sanity-bound ``I_B``, else None.
    """

    images: list
    kp_a: torch.Tensor
    kp_a_hat: torch.Tensor
    valid: torch.Tensor
    kp_orig: torch.Tensor
    indices: list
    kp_b_true: torch.Tensor = None


def augment_seeds(aug_seed: int):
    """Seeds of ``Î_A`` (the step's ``aug_seed`` itself), of ``I_A`` and of the sanity ``I_B``."""
    return [int(aug_seed), (int(aug_seed) + 1) % 2 ** 62, (int(aug_seed) + 2) % 2 ** 62]


def warp_pixels(full: torch.Tensor, hom: torch.Tensor, size):
    """
    Full-resolution points through homographies.

    Args:
        full: ``(B, N, 2)`` pixels.
        hom: ``(B, 3, 3)`` original -> augmented pixels.
        size: ``(H, W)`` of the augmented image.

    Returns:
        ``(full_hat (B, N, 2) pixels, valid (B, N) bool)``: valid = finite and inside.
    """
    from ..augment import warp_points
    full_hat, valid = warp_points(full, hom, size)
    return full_hat, valid & torch.isfinite(full_hat).all(dim=-1)


def to_grid(full: torch.Tensor, valid: torch.Tensor, stride: int) -> torch.Tensor:
    """Full-resolution points -> grid coordinates; invalid ones 0 (no NaN/inf in the graph)."""
    grid = full_to_grid(full, stride)
    return torch.where(valid.unsqueeze(-1), grid, torch.zeros_like(grid))


def _image(batch: dict, key: str, device) -> torch.Tensor:
    """Batch images ``(B, 3, H, W)`` uint8 -> float [0, 1] on ``device``."""
    return batch[key].to(device, non_blocking=True).float() / 255.0


def rendered_views(batch: dict, device) -> Views:
    """Two rendered views with their exact correspondences (no augmentation)."""
    a = _image(batch, 'image_a', device)
    b = batch['image_b'].to(device).float() / 255.0
    kp_grid = batch['kp_a'].to(device)
    return Views([a, b], kp_grid, batch['kp_b'].to(device), batch['valid'].to(device), kp_grid,
                 [batch['index_a'].tolist(), batch['index_b'].tolist()])


class ViewMaker:
    """
    Build a step's :class:`Views` for a method.

    Args:
        method: a :class:`~ccl_perception.learning.methods.Method`.
        augment: ``augment(images, seed=...) -> (images, H (B, 3, 3))``; None for methods on
            rendered pairs.
        stride: model stride (grid <-> pixels).
        device: where the views go.
        augment_a: augment ``I_A`` too.
        sanity_b_from_a: ``I_B`` is a third augmented copy of ``I_A``.
    """

    def __init__(self, method, augment, stride: int, device, augment_a: bool = False,
                 sanity_b_from_a: bool = False):
        self.method, self.augment, self.stride, self.device = method, augment, stride, device
        self.augment_a, self.sanity_b_from_a = augment_a, sanity_b_from_a

    def __call__(self, batch: dict) -> Views:
        """Return the views of ``batch``."""
        if self.method.rendered_pairs:
            return rendered_views(batch, self.device)
        a = _image(batch, 'image_a', self.device)
        kp_grid = batch['kp_a'].to(self.device)
        size = a.shape[-2:]
        seed_hat, seed_a, seed_b = augment_seeds(batch['aug_seed'])
        full = grid_to_full(kp_grid, self.stride)
        source_hat = _image(batch, 'image_a_hat_source', self.device) \
            if 'image_a_hat_source' in batch else a
        a_hat, hom = self.augment(source_hat, seed=seed_hat)
        full_hat, valid = warp_pixels(full, hom, size)
        if 'kp_valid' in batch:  # empty foreground slots
            valid = valid & batch['kp_valid'].to(self.device)
        kp_a_hat = to_grid(full_hat, valid, self.stride)
        view_a, kp_a, indices = a, kp_grid, [batch['index_a'].tolist(), None]
        if self.augment_a:  # I_A gets its own augmentation, as in the paper
            view_a, hom_a = self.augment(a, seed=seed_a)
            full_a, valid_a = warp_pixels(full, hom_a, size)
            valid = valid & valid_a
            kp_a, indices[0] = to_grid(full_a, valid, self.stride), None
        images = [view_a, a_hat.to(a.dtype)]
        kp_b_true = None
        if self.method.second_image:
            if self.sanity_b_from_a:  # sanity bound: I_B is a third copy of I_A
                b, hom_b = self.augment(a, seed=seed_b)
                full_b, valid_b = warp_pixels(full, hom_b, size)
                valid = valid & valid_b
                kp_b_true = to_grid(full_b, valid, self.stride)
                indices.append(None)
            else:  # an unrelated frame; with a pasted background it is no dataset image
                b = _image(batch, 'image_b', self.device)
                pasted = batch.get('pasted_b', torch.zeros(len(b), dtype=torch.bool)).tolist()
                indices.append([None if p else i
                                for i, p in zip(batch['index_b'].tolist(), pasted)])
            images.append(b.to(a.dtype))
        return Views(images, kp_a, kp_a_hat, valid, kp_grid, indices, kp_b_true)
