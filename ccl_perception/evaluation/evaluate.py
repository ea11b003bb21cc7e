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
Evaluate dense descriptors on a pairs file: keypoint transfer from image 1 to image 2.

For each keypoint visible in both images of a pair, its descriptor is sampled (bilinearly)
from image 1's descriptor map upsampled to full resolution (``upsample_descriptors``), and
its match in image 2 is the pixel of image 2's upsampled map with the highest cosine
similarity (``method='argmax'``, the paper's "best match"), or the spatial expectation of
the temperature softmax over that heatmap (``method='expectation'``, Eq. 2-3). Errors are
full-resolution pixel distances to the annotated keypoint (see ``metrics``).

Cost: the full-resolution maps (upsampling + normalisation of C x H x W floats) dominate, so
``predict_pairs`` builds each image's maps once (queries grouped by image 1, heatmaps grouped
by image 2) instead of once per pair; the numbers are bit-identical to matching pair by pair
(``match_keypoints``), and at most two full-resolution maps are held at a time.
"""
from __future__ import annotations

from ccl_perception.correspondence import (DEFAULT_TAU, heatmap_softmax, sample_descriptors,
                                           spatial_expectation)
from ccl_perception.evaluation import metrics
from ccl_perception.evaluation.pairs import load_pairs
from ccl_perception.image_io import read_rgb
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm


def descriptor_function(model_or_extractor, device: str = 'cpu', features: str = 'head'):
    """
    Normalise what evaluation accepts into ``fn(rgb (H, W, 3) uint8) -> (C, h, w) tensor``.

    Args:
        model_or_extractor: a ``DescriptorNet`` (nn.Module), a ``DescriptorExtractor`` or any
            callable with the extractor's contract.
        device: torch device for an nn.Module.
        features: 'head' (the descriptors) or 'backbone' (``backbone_features``: the
            pretrained-features baseline); only for an nn.Module.
    """
    if features not in ('head', 'backbone'):
        raise ValueError(f"features must be 'head' or 'backbone', got {features!r}")
    if isinstance(model_or_extractor, torch.nn.Module):
        model = model_or_extractor.to(device).eval()
        fn = model.backbone_features if features == 'backbone' else model

        def run(rgb):
            x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].to(device)
            with torch.inference_mode():
                return fn(x)[0]
        return run
    if features == 'backbone':
        raise ValueError("features='backbone' needs a DescriptorNet, not an extractor")
    if not callable(model_or_extractor):
        raise ValueError(
            f'expected a DescriptorNet or an extractor, got {type(model_or_extractor).__name__}')
    return model_or_extractor


def query_descriptors(desc_1: torch.Tensor, kp_1: np.ndarray, size_1) -> torch.Tensor:
    """
    Descriptors of image 1 at full-resolution keypoints.

    Args:
        desc_1: ``(C, h, w)`` stride-8 descriptor map of image 1.
        kp_1: ``(N, 2)`` keypoints, full-resolution pixels ``(x, y)``.
        size_1: ``(H, W)`` of image 1.

    Returns:
        ``(1, N, C)`` unit descriptors sampled bilinearly from the upsampled map
        (``upsample_descriptors``).
    """
    from ccl_perception.model import upsample_descriptors  # model module pulls in the backbones
    kp = torch.as_tensor(np.asarray(kp_1, dtype=np.float32)).reshape(1, -1, 2)
    return sample_descriptors(upsample_descriptors(desc_1[None].float().cpu(), size_1), kp)


def full_resolution(desc: torch.Tensor, work_size, size) -> torch.Tensor:
    """
    Full-resolution unit descriptors ``(1, C, H, W)`` of an image of ``size`` = (H, W).

    ``desc`` ``(C, h, w)`` is the stride-8 map of the image resized to ``work_size`` = (Hw, Ww)
    (the model's working resolution, ``evaluate_model(input_size=...)``): it is upsampled to
    the working resolution (``upsample_descriptors``) and, when that differs from ``size``,
    resampled bilinearly (pixel centres scale, ``align_corners=False``) and renormalised.
    """
    from ccl_perception.model import upsample_descriptors
    up = upsample_descriptors(desc[None].float().cpu(), work_size)
    if tuple(work_size) != tuple(size):
        up = F.normalize(F.interpolate(up, size=tuple(size), mode='bilinear',
                                       align_corners=False), dim=1)
    return up


def target_map(desc_2: torch.Tensor, size_2) -> torch.Tensor:
    """
    Image 2's full-resolution unit descriptors, flattened for matching.

    Args:
        desc_2: ``(C, h, w)`` stride-8 descriptor map; size_2: ``(H, W)`` of image 2.

    Returns:
        ``(1, C, H * W)``: ``F.normalize(upsample_descriptors(desc_2), dim=1)`` flattened,
        exactly the matrix ``cosine_heatmap`` (Eq. 1) multiplies the queries with.
    """
    from ccl_perception.model import upsample_descriptors
    up = upsample_descriptors(desc_2[None].float().cpu(), size_2)
    return F.normalize(up, dim=1).reshape(1, up.shape[1], -1)


def match_queries(query: torch.Tensor, target: torch.Tensor, size_2, method: str = 'argmax',
                  tau: float = DEFAULT_TAU, chunk: int = 64) -> np.ndarray:
    """
    Best match (or softmax expectation) of each query in a ``target_map``.

    Args:
        query: ``(1, N, C)`` descriptors (``query_descriptors``).
        target: ``(1, C, H * W)`` from ``target_map``.
        size_2: ``(H, W)`` of image 2.
        method: 'argmax' (best cosine match) or 'expectation' (softmax with ``tau``, Eq. 2-3).
        chunk: queries per heatmap batch (bounds memory to chunk x H x W floats).

    Returns:
        ``(N, 2)`` matched pixels ``(x, y)`` in image 2.
    """
    if method not in ('argmax', 'expectation'):
        raise ValueError(f"method must be 'argmax' or 'expectation', got {method!r}")
    if query.shape[1] == 0:
        return np.zeros((0, 2))
    h2, w2 = int(size_2[0]), int(size_2[1])
    out = []
    for s in range(0, query.shape[1], chunk):
        # == cosine_heatmap(query chunk, upsampled map 2), with the map normalised once per image
        sim = torch.bmm(F.normalize(query[:, s:s + chunk], dim=-1), target).reshape(1, -1, h2, w2)
        if method == 'argmax':
            idx = sim.flatten(2).argmax(dim=-1)[0]
            out.append(torch.stack([idx % w2, idx // w2], dim=-1).float())
        else:
            out.append(spatial_expectation(heatmap_softmax(sim, tau))[0])
    return torch.cat(out).numpy().astype(float)


def match_keypoints(desc_1: torch.Tensor, desc_2: torch.Tensor, kp_1: np.ndarray, size_1, size_2,
                    method: str = 'argmax', tau: float = DEFAULT_TAU,
                    chunk: int = 64) -> np.ndarray:
    """
    Transfer full-resolution keypoints from image 1 to image 2.

    Args:
        desc_1, desc_2: ``(C, h, w)`` stride-8 descriptor maps of images 1 and 2.
        kp_1: ``(N, 2)`` keypoints in image 1, full-resolution pixels ``(x, y)``.
        size_1, size_2: ``(H, W)`` of the two images.
        method: 'argmax' (best cosine match) or 'expectation' (softmax with ``tau``, Eq. 3).
        chunk: queries per heatmap batch (bounds memory to chunk x H x W floats).

    Returns:
        ``(N, 2)`` matched pixels in image 2.
    """
    if method not in ('argmax', 'expectation'):
        raise ValueError(f"method must be 'argmax' or 'expectation', got {method!r}")
    if np.asarray(kp_1).size == 0:
        return np.zeros((0, 2))
    return match_queries(query_descriptors(desc_1, kp_1, size_1), target_map(desc_2, size_2),
                         size_2, method, tau, chunk)


def predict_pairs(describe, pf, pairs: list, method: str = 'argmax', tau: float = DEFAULT_TAU,
                  progress: bool = True, input_size=None) -> list:
    """
    Match the keypoints of every pair, each full-resolution map computed once per image.

    Same numbers as calling ``match_keypoints`` per pair, in two passes over the images:
    (1) pairs grouped by image 1: upsample each image once, sample the query descriptors of
    all its pairs; (2) pairs grouped by image 2: build each ``target_map`` once, match all
    its queries. At most two full-resolution maps are alive at a time; the stride-8 maps of
    all images are kept (C x H/8 x W/8 floats each).

    Args:
        describe: ``fn(rgb (H, W, 3) uint8) -> (C, h, w)`` (``descriptor_function``).
        pf: ``PairsFile``; pairs: list of its pair dicts.

    Returns:
        list, one entry per pair: ``None`` (no keypoint visible in both images) or
        ``(kps, pred, size_2)``: ``kps`` = ``pf.pair_keypoints(pair)``, ``pred`` the
        ``(N, 2)`` matches of all objects' keypoints concatenated in ``kps`` order.
        input_size: ``(W, H)`` working resolution (``evaluate_model``), None = each image's own.
    """
    cache = {}

    def get(index):
        if index not in cache:
            rgb = read_rgb(pf.image_path(index))
            pf.check_image(index, rgb.shape)  # declared size, keypoints inside the image
            work = resize_to(rgb, input_size)
            with torch.inference_mode():
                desc = describe(work).detach().float().cpu()
            cache[index] = (desc, work.shape[:2], rgb.shape[:2])
        return cache[index]

    kps = [pf.pair_keypoints(pair) for pair in pairs]
    by_image_1, by_image_2 = {}, {}
    for i, k in enumerate(kps):
        if k:
            by_image_1.setdefault(pairs[i]['image_1'], []).append(i)
            by_image_2.setdefault(pairs[i]['image_2'], []).append(i)
    queries = {}
    for image, group in tqdm(by_image_1.items(), desc='queries', disable=not progress):
        d1, w1, s1 = get(image)
        up_1 = full_resolution(d1, w1, s1)
        for i in group:  # as query_descriptors, with one upsampling per image
            kp = np.concatenate([v[0] for v in kps[i].values()]).astype(np.float32)
            queries[i] = sample_descriptors(up_1, torch.as_tensor(kp).reshape(1, -1, 2))
        del up_1
    out = [None] * len(pairs)
    for image, group in tqdm(by_image_2.items(), desc='match', disable=not progress):
        d2, w2, s2 = get(image)
        target = F.normalize(full_resolution(d2, w2, s2), dim=1).reshape(1, d2.shape[0], -1)
        for i in group:
            out[i] = (kps[i], match_queries(queries.pop(i), target, s2, method, tau), s2)
        del target
    return out


def resize_to(rgb: np.ndarray, size) -> np.ndarray:
    """Return ``rgb`` (H, W, 3) resized (bilinear) to ``size`` = (W, H) (itself if None/equal)."""
    if size is None or (int(size[0]), int(size[1])) == (rgb.shape[1], rgb.shape[0]):
        return rgb
    import cv2
    return cv2.resize(rgb, (int(size[0]), int(size[1])), interpolation=cv2.INTER_LINEAR)


def evaluate_model(model_or_extractor, pairs_path: str, device: str = 'cpu',
                   method: str = 'argmax', tau: float = DEFAULT_TAU, features: str = 'head',
                   max_pairs: int | None = None, progress: bool = True,
                   input_size=None) -> dict:
    """
    PCK / AUC / normalised error of keypoint transfer over the pairs of ``pairs_path``.

    Args:
        model_or_extractor: ``DescriptorNet``, ``DescriptorExtractor`` or a callable
            ``rgb (H, W, 3) uint8 -> (C, h, w)`` stride-8 descriptor map.
        pairs_path: pairs JSON (``evaluation.pairs``).
        device: torch device for a model.
        method: 'argmax' | 'expectation' (see module docstring).
        tau: softmax temperature for 'expectation'.
        features: 'head' or 'backbone' (pretrained baseline).
        max_pairs: evaluate only the first n pairs (quick validation during training).
        input_size: ``(W, H)``: run the network on every image resized to this working
            resolution (e.g. the resolution the model was trained at) and resample its
            descriptors back onto the image's pixels; None = each image at its own size. Errors
            are always in the pairs file's pixels.

    Returns:
        ``{'pck': {'3': mean, ...}, 'pck_std', 'auc', 'auc_std', 'norm_mean_px_error',
        'norm_mean_px_error_std', 'mean_px_error', 'num_pairs', 'num_keypoints',
        'pck_curve' (PCK@1..50 pooled over all keypoints), 'per_object': {name: aggregate},
        'per_split': {'seen'|'unseen'|...: aggregate},
        'per_kind': {'boundary'|'interior': pooled summary}, 'method'}``; mean/std are over
        pairs (per object: over pairs containing it).
    """
    pf = load_pairs(pairs_path)
    describe = descriptor_function(model_or_extractor, device, features)
    pairs = pf.pairs[:max_pairs] if max_pairs else pf.pairs
    if method not in ('argmax', 'expectation'):
        raise ValueError(f"method must be 'argmax' or 'expectation', got {method!r}")
    predictions = predict_pairs(describe, pf, pairs, method, tau, progress, input_size)

    pair_summaries, per_object, per_split, all_errors, kind_errors = [], {}, {}, [], {}
    for entry in predictions:  # aggregated in the file's pair order
        if entry is None:
            continue
        kps, pred_all, s2 = entry
        errs_pair = []
        splits = np.cumsum([len(v[0]) for v in kps.values()])[:-1]
        for (name, (k1, k2, kinds)), pred in zip(kps.items(), np.split(pred_all, splits)):
            err = metrics.pixel_errors(pred, k2)
            errs_pair.append(err)
            summ = metrics.summarise(err, s2[1], s2[0])
            per_object.setdefault(name, []).append(summ)
            split = pf.objects.get(name, {}).get('split', 'unknown')
            per_split.setdefault(split, []).append(summ)
            for kind, e in zip(kinds, err):
                kind_errors.setdefault(kind, []).append(e)
        errs = np.concatenate(errs_pair)
        all_errors.append(errs)
        pair_summaries.append(metrics.summarise(errs, s2[1], s2[0]))
    if not pair_summaries:
        raise ValueError(f'no pair in {pairs_path} has keypoints visible in both images')
    result = metrics.aggregate(pair_summaries)
    pooled = np.concatenate(all_errors)
    result.update({
        'num_pairs': len(pair_summaries), 'num_keypoints': int(pooled.size), 'method': method,
        'pck_curve': {str(t): v for t, v in zip(metrics.AUC_THRESHOLDS,
                                                metrics.pck_curve(pooled).tolist())},
        'per_object': {k: metrics.aggregate(v) for k, v in sorted(per_object.items())},
        'per_split': {k: metrics.aggregate(v) for k, v in sorted(per_split.items())},
        'per_kind': {k: {'pck': {str(t): metrics.pck(v, t) for t in metrics.PCK_THRESHOLDS},
                         'auc': metrics.auc(v), 'n': len(v)}
                     for k, v in sorted(kind_errors.items())},
    })
    return result
