#!/usr/bin/env python3
"""The reference for `gradstyle align`: FFHQ/e4e align_face (numpy, scipy.ndimage, PIL) run on
the landmarks our dlib build found, so the quad and the aligned image can be checked against it.

Debian ships no Python binding of dlib, so the landmarks are an input here: they are taken from
the alignments.json that `gradstyle align` wrote, and the test checks that our detector still
finds exactly these. Everything after the landmarks is the reference procedure, written from
the description of FFHQ's align_face (as e4e's utils/alignment.py uses it).

usage: make_align_fixtures.py ALIGNMENTS_JSON OUT_DIR [--size 256]
Writes OUT_DIR/<stem>_<size>.json (landmarks, quad, qsize, ...) and OUT_DIR/<stem>_<size>.png.
"""
import argparse, json, os
import numpy as np
import PIL.Image
import scipy.ndimage


def align(img, lm, output_size, transform_size, enable_padding=True):
    lm = np.array(lm, dtype=np.float64)
    eye_left = np.mean(lm[36:42], axis=0)
    eye_right = np.mean(lm[42:48], axis=0)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    qsize = np.hypot(*x) * 2
    quad0, qsize0 = quad.copy(), qsize

    shrink = int(np.floor(qsize / output_size * 0.5))
    if shrink > 1:
        rsize = (int(np.rint(float(img.size[0]) / shrink)), int(np.rint(float(img.size[1]) / shrink)))
        img = img.resize(rsize, PIL.Image.LANCZOS)
        quad /= shrink
        qsize /= shrink
    border = max(int(np.rint(qsize * 0.1)), 3)
    crop = (int(np.floor(min(quad[:, 0]))), int(np.floor(min(quad[:, 1]))),
            int(np.ceil(max(quad[:, 0]))), int(np.ceil(max(quad[:, 1]))))
    crop = (max(crop[0] - border, 0), max(crop[1] - border, 0),
            min(crop[2] + border, img.size[0]), min(crop[3] + border, img.size[1]))
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        quad -= crop[0:2]
    pad = (int(np.floor(min(quad[:, 0]))), int(np.floor(min(quad[:, 1]))),
           int(np.ceil(max(quad[:, 0]))), int(np.ceil(max(quad[:, 1]))))
    pad = (max(-pad[0] + border, 0), max(-pad[1] + border, 0),
           max(pad[2] - img.size[0] + border, 0), max(pad[3] - img.size[1] + border, 0))
    padded = False
    if enable_padding and max(pad) > border - 4:
        padded = True
        pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
        img = np.pad(np.float32(img), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), 'reflect')
        h, w, _ = img.shape
        yy, xx, _ = np.ogrid[:h, :w, :1]
        mask = np.maximum(1.0 - np.minimum(np.float32(xx) / pad[0], np.float32(w - 1 - xx) / pad[2]),
                          1.0 - np.minimum(np.float32(yy) / pad[1], np.float32(h - 1 - yy) / pad[3]))
        blur = qsize * 0.02
        img += (scipy.ndimage.gaussian_filter(img, [blur, blur, 0]) - img) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        img += (np.median(img, axis=(0, 1)) - img) * np.clip(mask, 0.0, 1.0)
        img = PIL.Image.fromarray(np.uint8(np.clip(np.rint(img), 0, 255)), 'RGB')
        quad += pad[:2]
    img = img.transform((transform_size, transform_size), PIL.Image.QUAD, (quad + 0.5).flatten(),
                        PIL.Image.BILINEAR)
    if output_size < transform_size:
        img = img.resize((output_size, output_size), PIL.Image.LANCZOS)
    return img, quad0, qsize0, shrink, padded


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('alignments')
    ap.add_argument('out_dir')
    ap.add_argument('--size', type=int, default=256)
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for rec in json.load(open(args.alignments)):
        photo = PIL.Image.open(rec['source']).convert('RGB')
        img, quad, qsize, shrink, padded = align(photo, rec['landmarks'], args.size, args.size)
        stem = os.path.splitext(rec['output'])[0]
        img.save(os.path.join(args.out_dir, f'{stem}_{args.size}.png'))
        json.dump({'source': os.path.basename(rec['source']), 'face': rec['face'], 'landmarks': rec['landmarks'],
                   'box': rec['box'], 'quad': quad.tolist(), 'qsize': float(qsize), 'size': args.size,
                   'shrink': shrink, 'padded': padded},
                  open(os.path.join(args.out_dir, f'{stem}_{args.size}.json'), 'w'), indent=1)
        print(stem, 'quad', quad.round(3).tolist(), 'shrink', shrink, 'padded', padded)


if __name__ == '__main__':
    main()
