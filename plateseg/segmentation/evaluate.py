"""Object-level accuracy of a label image against ground truth.

One-to-one matching at an IoU threshold, as in the cell-segmentation literature
(Caicedo et al. 2019; StarDist, Cellpose): a predicted object matches a true object
when their intersection over union is at least ``iou``; for ``iou >= 0.5`` each
object can have at most one such partner, so the matching is unique without any
assignment solver.

>>> import numpy as np
>>> truth = np.zeros((8, 8), np.uint16); truth[1:4, 1:4] = 1; truth[5:8, 5:8] = 2
>>> pred = np.zeros((8, 8), np.uint16); pred[1:4, 1:3] = 7
>>> match_objects(truth, pred, iou=0.5)
(1, 0, 1)
"""

from __future__ import annotations

import numpy as np

__all__ = ["average_precision", "f1", "iou_matrix", "match_counts", "match_objects"]


def iou_matrix(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Intersection over union of every true object with every predicted object.

    Parameters
    ----------
    truth, pred : np.ndarray
        (Y, X) integer label images of the same shape, 0 = background.

    Returns
    -------
    np.ndarray
        (n_truth, n_pred) float64; row ``i`` is true label ``i + 1`` after relabelling
        both images to consecutive labels.
    """
    if truth.shape != pred.shape:
        raise ValueError(f"label images differ in shape: {truth.shape} vs {pred.shape}")
    _, t = np.unique(truth.ravel(), return_inverse=True)
    _, p = np.unique(pred.ravel(), return_inverse=True)
    t_has_bg, p_has_bg = bool((truth == 0).any()), bool((pred == 0).any())
    nt, np_ = int(t.max()) + 1, int(p.max()) + 1
    overlap = np.bincount(t * np_ + p, minlength=nt * np_).reshape(nt, np_).astype(np.float64)
    if t_has_bg:
        overlap = overlap[1:]
    if p_has_bg:
        overlap = overlap[:, 1:]
    t_area = np.bincount(t, minlength=nt)[int(t_has_bg) :].astype(np.float64)
    p_area = np.bincount(p, minlength=np_)[int(p_has_bg) :].astype(np.float64)
    union = t_area[:, None] + p_area[None, :] - overlap
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.where(union > 0, overlap / union, 0.0)
    return np.asarray(result, dtype=np.float64)


def match_objects(truth: np.ndarray, pred: np.ndarray, iou: float = 0.5) -> tuple[int, int, int]:
    """Count true positives, false positives and false negatives at an IoU threshold.

    Parameters
    ----------
    truth, pred : np.ndarray
        (Y, X) integer label images, 0 = background.
    iou : float
        Matching threshold; values below 0.5 are not unique and are refused.

    Returns
    -------
    tuple of int
        ``(tp, fp, fn)``.
    """
    tp, fp, fn = match_counts(truth, pred, (iou,))[0]
    return int(tp), int(fp), int(fn)


def match_counts(truth: np.ndarray, pred: np.ndarray, ious: tuple[float, ...]) -> np.ndarray:
    """``(tp, fp, fn)`` at each IoU threshold, from one IoU matrix; ``(k, 3)`` int64.

    The matrix is the costly part on a large image, so a sweep over thresholds
    (0.5, 0.55, ..., 0.95) computes it once.
    """
    if min(ious) < 0.5:
        raise ValueError("one-to-one matching needs iou >= 0.5")
    scores = iou_matrix(truth, pred)
    n_truth, n_pred = scores.shape
    out = np.zeros((len(ious), 3), np.int64)
    for k, iou in enumerate(ious):
        if n_truth == 0 or n_pred == 0:
            out[k] = (0, n_pred, n_truth)
            continue
        tp = np.count_nonzero(scores >= iou) if iou > 0.5 else np.count_nonzero(scores > iou)
        out[k] = (tp, n_pred - tp, n_truth - tp)
    return out


def f1(truth: np.ndarray, pred: np.ndarray, iou: float = 0.5) -> float:
    """F1 score ``2 tp / (2 tp + fp + fn)`` at ``iou`` (1.0 when both are empty)."""
    tp, fp, fn = match_objects(truth, pred, iou)
    total = 2 * tp + fp + fn
    return 1.0 if total == 0 else 2 * tp / total


def average_precision(
    truth: np.ndarray, pred: np.ndarray, thresholds: tuple[float, ...] = (0.5,)
) -> float:
    """Mean over ``thresholds`` of ``tp / (tp + fp + fn)`` (the DSB 2018 / Cellpose AP).

    Parameters
    ----------
    truth, pred : np.ndarray
        (Y, X) integer label images.
    thresholds : tuple of float
        IoU thresholds, each >= 0.5, e.g. ``(0.5, 0.55, ..., 0.95)``.

    Returns
    -------
    float
        In 0..1; 1.0 when both images are empty.
    """
    values = []
    for threshold in thresholds:
        tp, fp, fn = match_objects(truth, pred, threshold)
        total = tp + fp + fn
        values.append(1.0 if total == 0 else tp / total)
    return float(np.mean(values))
