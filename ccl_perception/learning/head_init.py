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
Label-free start for the descriptor head: PCA of the trunk features.

A random D-dimensional projection of the C-dimensional ImageNet trunk features loses part of
their matching ability before any training step (measured on benchmark v1: AUC 0.285 for the
raw 152-D features, 0.237-0.241 for a random 1x1 head to 64-D, 0.278 for a PCA head). The PCA
head keeps the D directions of largest variance of the features the head sees, on unlabelled
training frames, so every method starts from (nearly) the pretrained features:

    proj(x) = V^T (x - mu)        V: (C, D) top-D eigenvectors of Cov[x], mu = E[x]

where ``x`` is ``model.head.head_input(trunk features)`` at every descriptor cell. The conv
head's residual branch starts at zero, so the whole model equals the PCA projection at step 0.
"""
import logging

import numpy as np
import torch

LOG = logging.getLogger(__name__)


def head_input_features(model, images: torch.Tensor) -> torch.Tensor:
    """
    Return what the head's projection sees, flattened: ``(B*h*w, C)`` float64.

    Args:
        model: a ``DescriptorNet``.
        images: ``(B, 3, H, W)`` uint8 or float [0, 1] RGB.
    """
    with torch.no_grad():
        feats = model.head.head_input(model.trunk_features(images)).double()
    return feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])


def pca_projection(features: torch.Tensor, dim: int):
    """
    Mean and top-``dim`` principal directions of ``features`` ``(M, C)``.

    Returns:
        ``(mean (C,), directions (C, dim), explained)``: directions are unit columns in
        decreasing order of variance; ``explained`` is the fraction of the total variance
        they hold.

    Raises:
        ValueError: fewer than 2 samples, or ``dim`` larger than C.
    """
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f'PCA needs (M >= 2, C) features, got {tuple(features.shape)}')
    if not 1 <= dim <= features.shape[1]:
        raise ValueError(f'PCA dimension must be in [1, {features.shape[1]}], got {dim}')
    mean = features.mean(dim=0)
    centred = features - mean
    cov = centred.T @ centred / (features.shape[0] - 1)
    evals, evecs = torch.linalg.eigh(cov)                 # ascending
    order = torch.argsort(evals, descending=True)[:dim]
    total = float(evals.clamp(min=0).sum())
    explained = float(evals[order].clamp(min=0).sum()) / total if total > 0 else 0.0
    return mean, evecs[:, order], explained


def init_head_pca(model, batches, max_images: int = 60) -> dict:
    """
    Set the head's 1x1 projection to the PCA of the trunk features (no labels needed).

    Args:
        model: a ``DescriptorNet`` (any head with a ``proj`` 1x1 convolution).
        batches: iterable of ``(B, 3, H, W)`` uint8 or float RGB tensors (unlabelled frames).
        max_images: stop after this many images.

    Returns:
        ``{'images', 'cells', 'explained_variance'}``.

    Raises:
        ValueError: no image given.
    """
    dim = model.head.proj.out_channels
    chunks, n_images = [], 0
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for images in batches:
            images = images[:max_images - n_images].to(device)
            chunks.append(head_input_features(model, images).cpu())
            n_images += images.shape[0]
            if n_images >= max_images:
                break
    finally:
        model.train(was_training)
    if not chunks:
        raise ValueError('PCA head initialisation needs at least one image')
    features = torch.cat(chunks)
    mean, directions, explained = pca_projection(features, dim)
    weight = directions.T.contiguous()                    # (D, C)
    with torch.no_grad():
        proj = model.head.proj
        proj.weight.copy_(weight.view(dim, -1, 1, 1).to(proj.weight.dtype))
        proj.bias.copy_((-weight @ mean).to(proj.bias.dtype))
    LOG.info('PCA head: %d images, %d cells, top-%d directions hold %.1f %% of the variance',
             n_images, features.shape[0], dim, 100 * explained)
    return {'images': n_images, 'cells': int(features.shape[0]),
            'explained_variance': float(np.round(explained, 6))}


def init_head_from_frames(model, paths, size, max_images: int) -> dict:
    """
    :func:`init_head_pca` on up to ``max_images`` frames evenly spaced over ``paths``.

    Args:
        model: a ``DescriptorNet``.
        paths: image files of the training set.
        size: ``(width, height)`` the frames are resized to (the training resolution).
        max_images: how many frames at most (``model.head_init_images``).
    """
    from ..image_io import read_rgb
    picks = np.unique(np.linspace(0, len(paths) - 1, min(max_images, len(paths)))
                      .round().astype(int))

    def batches(chunk=8):
        for s in range(0, len(picks), chunk):
            images = [read_rgb(paths[i], size) for i in picks[s:s + chunk]]
            yield torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return init_head_pca(model, batches(), max_images=len(picks))
