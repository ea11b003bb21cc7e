"""Evaluate dense descriptors on a pairs file: keypoint transfer from image 1 to image 2.

For each keypoint visible in both images of a pair, its descriptor is sampled (bilinearly)
from image 1's descriptor map upsampled to full resolution (``upsample_descriptors``), and
its match in image 2 is the pixel of image 2's upsampled map with the highest cosine
similarity (``method='argmax'``, the paper's "best match"), or the spatial expectation of
the temperature softmax over that heatmap (``method='expectation'``, Eq. 2-3). Errors are
full-resolution pixel distances to the annotated keypoint (see ``metrics``).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from tqdm import tqdm

from ccl_perception.correspondence import cosine_heatmap, heatmap_softmax, sample_descriptors, \
    spatial_expectation
from ccl_perception.evaluation import metrics
from ccl_perception.evaluation.pairs import load_pairs


def descriptor_function(model_or_extractor, device: str = 'cpu', features: str = 'head'):
    """Normalise what evaluation accepts into ``fn(rgb (H, W, 3) uint8) -> (C, h, w) tensor``.

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
        raise ValueError(f'expected a DescriptorNet or an extractor, got {type(model_or_extractor).__name__}')
    return model_or_extractor


def match_keypoints(desc_1: torch.Tensor, desc_2: torch.Tensor, kp_1: np.ndarray, size_1, size_2,
                    method: str = 'argmax', tau: float = 0.03, chunk: int = 64) -> np.ndarray:
    """Transfer full-resolution keypoints from image 1 to image 2.

    Args:
        desc_1, desc_2: ``(C, h, w)`` stride-8 descriptor maps of images 1 and 2.
        kp_1: ``(N, 2)`` keypoints in image 1, full-resolution pixels ``(x, y)``.
        size_1, size_2: ``(H, W)`` of the two images.
        method: 'argmax' (best cosine match) or 'expectation' (softmax with ``tau``, Eq. 3).
        chunk: queries per heatmap batch (bounds memory to chunk x H x W floats).

    Returns:
        ``(N, 2)`` matched pixels in image 2.
    """
    from ccl_perception.model import upsample_descriptors  # model module pulls in the backbones
    if method not in ('argmax', 'expectation'):
        raise ValueError(f"method must be 'argmax' or 'expectation', got {method!r}")
    kp = torch.as_tensor(np.asarray(kp_1, dtype=np.float32)).reshape(1, -1, 2)
    if kp.shape[1] == 0:
        return np.zeros((0, 2))
    up_1 = upsample_descriptors(desc_1[None].float().cpu(), size_1)
    up_2 = upsample_descriptors(desc_2[None].float().cpu(), size_2)
    query = sample_descriptors(up_1, kp)
    w2 = up_2.shape[-1]
    out = []
    for s in range(0, query.shape[1], chunk):
        sim = cosine_heatmap(query[:, s:s + chunk], up_2)
        if method == 'argmax':
            idx = sim.flatten(2).argmax(dim=-1)[0]
            out.append(torch.stack([idx % w2, idx // w2], dim=-1).float())
        else:
            out.append(spatial_expectation(heatmap_softmax(sim, tau))[0])
    return torch.cat(out).numpy().astype(float)


def _read_rgb(path: str) -> np.ndarray:
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f'cannot read image {path}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def evaluate_model(model_or_extractor, pairs_path: str, device: str = 'cpu', method: str = 'argmax',
                   tau: float = 0.03, features: str = 'head', max_pairs: int | None = None,
                   progress: bool = True) -> dict:
    """PCK / AUC / normalised error of keypoint transfer over the pairs of ``pairs_path``.

    Args:
        model_or_extractor: ``DescriptorNet``, ``DescriptorExtractor`` or a callable
            ``rgb (H, W, 3) uint8 -> (C, h, w)`` stride-8 descriptor map.
        pairs_path: pairs JSON (``evaluation.pairs``).
        device: torch device for a model.
        method: 'argmax' | 'expectation' (see module docstring).
        tau: softmax temperature for 'expectation'.
        features: 'head' or 'backbone' (pretrained baseline).
        max_pairs: evaluate only the first n pairs (quick validation during training).

    Returns:
        ``{'pck': {'3': mean, ...}, 'pck_std', 'auc', 'auc_std', 'norm_mean_px_error',
        'norm_mean_px_error_std', 'mean_px_error', 'num_pairs', 'num_keypoints',
        'pck_curve' (PCK@1..50 pooled over all keypoints), 'per_object': {name: aggregate},
        'per_split': {'seen'|'unseen'|...: aggregate}, 'per_kind': {'boundary'|'interior': pooled summary},
        'method'}``; mean/std are over pairs (per object: over pairs containing it).
    """
    pf = load_pairs(pairs_path)
    describe = descriptor_function(model_or_extractor, device, features)
    pairs = pf.pairs[:max_pairs] if max_pairs else pf.pairs
    cache = {}

    def get(index):
        if index not in cache:
            rgb = _read_rgb(pf.image_path(index))
            with torch.inference_mode():
                cache[index] = (describe(rgb).detach().float().cpu(), rgb.shape[:2])
        return cache[index]

    pair_summaries, per_object, per_split, all_errors, kind_errors = [], {}, {}, [], {}
    for pair in tqdm(pairs, desc='evaluate', disable=not progress):
        kps = pf.pair_keypoints(pair)
        if not kps:
            continue
        (d1, s1), (d2, s2) = get(pair['image_1']), get(pair['image_2'])
        errs_pair = []
        # one upsampling per pair: match the keypoints of all objects together
        pred_all = match_keypoints(d1, d2, np.concatenate([v[0] for v in kps.values()]), s1, s2,
                                   method, tau)
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
        'pck_curve': {str(t): v for t, v in zip(metrics.AUC_THRESHOLDS, metrics.pck_curve(pooled).tolist())},
        'per_object': {k: metrics.aggregate(v) for k, v in sorted(per_object.items())},
        'per_split': {k: metrics.aggregate(v) for k, v in sorted(per_split.items())},
        'per_kind': {k: {'pck': {str(t): metrics.pck(v, t) for t in metrics.PCK_THRESHOLDS},
                         'auc': metrics.auc(v), 'n': len(v)} for k, v in sorted(kind_errors.items())},
    })
    return result
