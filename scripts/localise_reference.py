#!/usr/bin/python3
"""Reference numbers for cmcr's localisation (src/search/localise.c) and its test fixture.

  localise_reference.py --out DIR    write the fixture (tests/test_localise.c reads it)

What each part follows:
  upsampling  PyTorch's F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False)
              of float32 maps, up and down.
  cIoU        LVS (Chen et al. 2021, "Localizing Visual Sounds the Hard Way",
              github.com/hche11/Localizing-Visual-Sounds-the-Hard-Way): test.py's steps from
              the 224 x 224 heatmap (normalize_img(-heatmap), 1 - pred, the median threshold,
              pred[pred > threshold] = 1, pred[pred < 1] = 0) and utils.Evaluator.cal_CIOU
              (thres 0.5), with utils.testset_gt's VGG-SS ground truth (1 inside any box),
              written out below line for line, in NumPy's float32 as there.
  AUC         Evaluator.cal_AUC: success rates at 0.05 i (i = 0..20) and sklearn.metrics.auc,
              which for increasing x is np.trapz(y, x) (sklearn is not a Debian dependency here).
  geometry    CLIP's crop (transformers: shortest side to 224, int(224 * long / short), centre
              crop) seen from the image: the window of pixels whose centres it covers, in
              exact fractions; boxes into the crop frame in float as C computes them.

The fixture: DIR/cases.txt, one case a line (paths relative to DIR):
  up IH IW OH OW IN OUT        torch's upsampling of IN (.npy) is OUT (.npy)
  ciou HEAT VALUE N x0 y0 x1 y1 ...   LVS's cIoU of the 224 x 224 heatmap HEAT (.npy) with N
                               boxes in the frame (x1, y1 exclusive) is VALUE (repr)
  summary N CIOU50 AUC         over the ciou lines, in order
  window W H S X0 Y0 X1 Y1     the crop window of a W x H image for a crop of S
  cropbox W H S L T R B X0 Y0 X1 Y1   the box with edges L T R B in the crop frame
"""
import argparse
import math
import os
from fractions import Fraction

import numpy as np


def upsample(x, oh, ow):
    import torch  # here, so that tests/cli_localise.sh can import the LVS code without PyTorch's start-up
    import torch.nn.functional as F
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None]
    return F.interpolate(t, size=(oh, ow), mode="bilinear", align_corners=False)[0, 0].numpy()


# ---------------------------------------------------------------- LVS, as written there

def normalize_img(value, vmax=None, vmin=None):
    vmin = value.min() if vmin is None else vmin
    vmax = value.max() if vmax is None else vmax
    if not (vmax - vmin) == 0:
        value = (value - vmin) / (vmax - vmin)  # vmin..vmax
    return value


def cal_ciou(infer, gtmap, thres=0.01):
    infer_map = np.zeros((224, 224))
    infer_map[infer >= thres] = 1
    return np.sum(infer_map * gtmap) / (np.sum(gtmap) + np.sum(infer_map * (gtmap == 0)))


def vggss_gt(boxes):
    gt_map = np.zeros([224, 224])
    for xmin, ymin, xmax, ymax in boxes:
        temp = np.zeros([224, 224])
        temp[ymin:ymax, xmin:xmax] = 1
        gt_map += temp
    gt_map[gt_map > 0] = 1
    return gt_map


def lvs_ciou(heatmap, boxes):
    heatmap_now = normalize_img(-heatmap)
    pred = heatmap_now
    pred = 1 - pred
    threshold = np.sort(pred.flatten())[int(pred.shape[0] * pred.shape[1] / 2)]
    pred[pred > threshold] = 1
    pred[pred < 1] = 0
    return cal_ciou(pred, vggss_gt(boxes), 0.5)


def lvs_auc(iou):
    results = []
    for i in range(21):
        result = np.sum(np.array(iou) >= 0.05 * i)
        result = result / len(iou)
        results.append(result)
    x = [0.05 * i for i in range(21)]
    return np.trapz(results, x)  # sklearn.metrics.auc(x, results)


# ---------------------------------------------------------------- CLIP's crop from the image

def crop_geometry(w, h, s):
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(s * long / short)
    nw, nh = (s, new_long) if w <= h else (new_long, s)
    return nw, nh, (nw - s) // 2, (nh - s) // 2


def axis_window(length, n, off, s):
    lo, hi = Fraction(off * length, n), Fraction((off + s) * length, n)
    inside = [j for j in range(length) if lo <= j + Fraction(1, 2) < hi]
    return (inside[0], inside[-1] + 1) if inside else (0, 0)


def crop_box(w, h, s, e):
    nw, nh, left, top = crop_geometry(w, h, s)
    def edge(v, length, n, off):
        return int(min(max(math.floor(v * n / length) - off, 0), s))
    return (edge(e[0], w, nw, left), edge(e[1], h, nh, top), edge(e[2], w, nw, left), edge(e[3], h, nh, top))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(18)
    lines = []

    sizes = [(7, 7, 224, 224), (7, 7, 31, 17), (5, 9, 3, 4), (7, 7, 300, 200), (1, 1, 4, 4), (3, 3, 3, 3),
             (2, 5, 1, 1), (14, 14, 224, 224), (7, 7, 480, 482), (224, 224, 7, 7)]
    for ih, iw, oh, ow in sizes:
        x = rng.uniform(-1, 1, (ih, iw)).astype(np.float32)
        name = f"up_{ih}x{iw}_{oh}x{ow}"
        np.save(f"{a.out}/{name}_in.npy", x)
        np.save(f"{a.out}/{name}_out.npy", upsample(x, oh, ow))
        lines.append(f"up {ih} {iw} {oh} {ow} {name}_in.npy {name}_out.npy")

    cious = []
    for i in range(24):
        cy, cx, sd = rng.uniform(0, 6), rng.uniform(0, 6), rng.uniform(0.8, 2.5)  # a sound source, and noise
        yy, xx = np.mgrid[0:7, 0:7]
        m = 0.4 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sd * sd)) + rng.uniform(-0.1, 0.1, (7, 7))
        m = m.astype(np.float32)
        if i % 4 == 1:
            m = np.round(m * 4) / 4  # many equal cells: ties at the median
        if i == 2:
            m[:] = 0.3  # constant: nothing stands out (cmcr: cIoU 0; LVS's quirk differs, not used)
        heat = upsample(m, 224, 224)
        boxes = []
        if i % 2 == 0 and i != 2:  # a box on the hot part: cIoU spread over 0..1
            ys, xs = np.nonzero(heat >= np.quantile(heat, 0.55 + 0.05 * (i % 8)))
            boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
        for _ in range(1 + i % 3 - len(boxes)):
            x0, y0 = rng.integers(0, 200, 2)
            x1, y1 = x0 + rng.integers(1, 224 - x0 + 1), y0 + rng.integers(1, 224 - y0 + 1)
            boxes.append((int(x0), int(y0), int(x1), int(y1)))
        if i == 2:
            value = 0.0
        else:
            value = float(lvs_ciou(heat.copy(), boxes))
        cious.append(value)
        np.save(f"{a.out}/heat{i}.npy", heat)
        lines.append(f"ciou heat{i}.npy {value!r} {len(boxes)} " + " ".join(" ".join(map(str, b)) for b in boxes))
    lines.append(f"summary {len(cious)} {float(np.mean(np.array(cious) >= 0.5))!r} {float(lvs_auc(cious))!r}")

    for w, h in [(224, 224), (448, 448), (640, 480), (480, 640), (10, 5), (5, 10), (1000, 3), (333, 777), (225, 224),
                 (4000, 3000), (1, 1)]:
        nw, nh, left, top = crop_geometry(w, h, 224)
        x0, x1 = axis_window(w, nw, left, 224)
        y0, y1 = axis_window(h, nh, top, 224)
        lines.append(f"window {w} {h} 224 {x0} {y0} {x1} {y1}")
        for _ in range(3):
            l, r = sorted(rng.uniform(0, w, 2))
            t, b = sorted(rng.uniform(0, h, 2))
            e = (float(np.floor(l)), float(np.floor(t)), float(np.ceil(r)), float(np.ceil(b)))
            if e[0] == e[2] or e[1] == e[3]:
                e = (0.0, 0.0, float(w), float(h))
            for edges in (e, (l, t, r, b)):
                edges = tuple(float(v) for v in edges)
                if not (edges[0] < edges[2] and edges[1] < edges[3]):
                    continue
                lines.append(f"cropbox {w} {h} 224 " + " ".join(repr(v) for v in edges) + " " +
                             " ".join(map(str, crop_box(w, h, 224, edges))))
    with open(f"{a.out}/cases.txt", "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
