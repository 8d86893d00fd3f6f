#!/usr/bin/env python
"""Downloads the Monodepth2 split files and (optionally) the KITTI raw archives. Needs internet.

md2tf never downloads at run time; this script is the one place that does. KITTI and the official
split files are licensed for non-commercial use (KITTI: CC BY-NC-SA 3.0; splits: the Monodepth2
licence): by running it you accept those terms.

Examples::

    # split files only (a few MB) into <data_dir>/splits/<split>/...
    python scripts/download_kitti.py --data_dir /data/kitti --splits_only
    # everything (~175 GB unzipped), PNGs converted to JPEG like the reference (-quality 92, 4:2:0)
    python scripts/download_kitti.py --data_dir /data/kitti --convert_jpeg --remove_zips

The split files come from the official repository's raw GitHub URLs; the archive list is the
official ``splits/kitti_archives_to_download.txt`` (5 calibration zips + 61 drives). Downloads are
resumable: finished files are skipped, partial ones restart.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import urllib.request
import zipfile

SPLITS_URL = "https://raw.githubusercontent.com/nianticlabs/monodepth2/master/splits"
SPLIT_FILES = [
    "eigen_zhou/train_files.txt", "eigen_zhou/val_files.txt",
    "eigen_full/train_files.txt", "eigen_full/val_files.txt",
    "eigen/test_files.txt", "eigen_benchmark/test_files.txt",
    "benchmark/train_files.txt", "benchmark/val_files.txt", "benchmark/test_files.txt",
    "benchmark/eigen_to_benchmark_ids.npy",
    "odom/train_files.txt", "odom/val_files.txt", "odom/test_files_09.txt", "odom/test_files_10.txt",
]
ARCHIVE_LIST = "kitti_archives_to_download.txt"


def download(url: str, path: str, quiet: bool = False) -> str:
    """Downloads ``url`` to ``path`` (via ``path.part``, renamed when complete); skips existing files."""
    if os.path.isfile(path):
        return path
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    partial = path + ".part"
    if not quiet:
        print(f"downloading {url}", flush=True)
    with urllib.request.urlopen(url) as response, open(partial, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        while chunk := response.read(1 << 20):
            out.write(chunk)
            done += len(chunk)
            if total and not quiet:
                print(f"\r  {done / 2**20:8.1f} / {total / 2**20:.1f} MiB", end="", flush=True)
    if total and not quiet:
        print()
    os.replace(partial, path)
    return path


def download_splits(splits_dir: str) -> list[str]:
    """Fetches the official split files into ``splits_dir/<split>/...``."""
    paths = [download(f"{SPLITS_URL}/{name}", os.path.join(splits_dir, name)) for name in SPLIT_FILES]
    paths.append(download(f"{SPLITS_URL}/{ARCHIVE_LIST}", os.path.join(splits_dir, ARCHIVE_LIST)))
    return paths


def convert_png_to_jpeg(folder: str, quality: int = 92) -> int:
    """Converts every ``image_0[23]/data/*.png`` under ``folder`` to JPEG (4:2:0), removing the PNGs.

    Mirrors the reference's ``convert -quality 92 -sampling-factor 2x2,1x1,1x1``; Pillow's
    ``subsampling=2`` is 4:2:0. Returns the number of converted files.
    """
    from PIL import Image

    count = 0
    for dirpath, _, names in os.walk(folder):
        if os.path.basename(dirpath) != "data" or "image_0" not in dirpath:
            continue
        for name in names:
            if name.endswith(".png"):
                src = os.path.join(dirpath, name)
                with Image.open(src) as image:
                    image.convert("RGB").save(src[:-4] + ".jpg", quality=quality, subsampling=2)
                os.remove(src)
                count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="KITTI raw root (created)")
    parser.add_argument("--splits_dir", default="", help="default: <data_dir>/splits")
    parser.add_argument("--splits_only", action="store_true", help="only the split files")
    parser.add_argument("--convert_jpeg", action="store_true", help="PNG -> JPEG q92 4:2:0 (the paper's)")
    parser.add_argument("--remove_zips", action="store_true", help="delete archives after unzipping")
    parser.add_argument("--max_archives", type=int, default=0, help="0 = all (for a partial download)")
    args = parser.parse_args(argv)
    splits_dir = args.splits_dir or os.path.join(args.data_dir, "splits")
    download_splits(splits_dir)
    if args.splits_only:
        return 0
    with open(os.path.join(splits_dir, ARCHIVE_LIST)) as f:
        urls = [line.strip() for line in f if line.strip()]
    if args.max_archives:
        urls = urls[: args.max_archives]
    free = shutil.disk_usage(os.path.abspath(args.data_dir)).free / 2**30
    print(f"{len(urls)} archives (~175 GB unzipped for all); {free:.0f} GiB free", flush=True)
    for url in urls:
        archive = download(url, os.path.join(args.data_dir, "zips", os.path.basename(url)))
        with zipfile.ZipFile(archive) as z:
            z.extractall(args.data_dir)
        if args.remove_zips:
            os.remove(archive)
        if args.convert_jpeg:
            n = convert_png_to_jpeg(args.data_dir)
            print(f"  converted {n} PNGs to JPEG", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
