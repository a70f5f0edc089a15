#!/usr/bin/env python3
"""Bit-flip sweep of dreamd --check (figures for RELIABILITY.md).

Usage: flip_sweep.py BUILD_DIR [FLIPS_PER_PAGE] [PAGES]

Makes a small store with a dreamd from BUILD_DIR (two datasets ingested
with the dream CLI in 250- and 500-row requests: segments, staged batches,
batch id records), then for each of its first PAGES pages (default 64)
flips FLIPS_PER_PAGE bits (default 3) at fixed, spread offsets, one flip
per copy, and classifies each copy:
  detected  dreamd --check exits non-zero (a normal exit)
  unused    --check says ok and mdb_dump -a shows the same records as the
            original (the flip hit free or unused space)
  missed    --check says ok but mdb_dump differs (or fails)
  crash     --check was killed by a signal
Deterministic: same build, same figures. Needs mdb_dump (lmdb-utils).
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile


def main():
    build = sys.argv[1]
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    pages = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    dreamd = os.path.join(build, 'server', 'dreamd')
    dream = os.path.join(build, 'client', 'dream')
    tmp = tempfile.mkdtemp(prefix='flip-sweep-')
    try:
        rng = random.Random(1)
        csv = os.path.join(tmp, 'a.csv')
        with open(csv, 'w') as f:
            f.write('a,b,c,y\n')
            for i in range(3000):
                f.write(f'{i},{rng.randint(0, 99) / 10},{rng.random():.4f},{i % 3}\n')
        data = os.path.join(tmp, 'data')
        d = subprocess.Popen([dreamd, '--listen', '127.0.0.1:0', '--data-dir', data,
                              '--seal-rows', '2000'], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        addr = d.stdout.readline().split()[-1]
        for name, rows in (('ds', 250), ('ds2', 500)):
            subprocess.run([dream, '-s', addr, 'ingest', name, csv, '--label', 'y',
                            '--rows-per-request', str(rows), '-q'], check=True)
        d.terminate()
        d.wait(timeout=30)
        orig = open(os.path.join(data, 'data.mdb'), 'rb').read()

        def dump(content):
            t = os.path.join(tmp, 't')
            shutil.rmtree(t, ignore_errors=True)
            os.mkdir(t)
            open(os.path.join(t, 'data.mdb'), 'wb').write(content)
            return t, subprocess.run(['mdb_dump', '-a', t], capture_output=True)

        _, ref = dump(orig)
        counts = {'detected': 0, 'unused': 0, 'missed': 0, 'crash': 0}
        n_pages = min(len(orig) // 4096, pages)
        for p in range(n_pages):
            for j in range(per):
                off = p * 4096 + (p * 2654435761 + j * 40503) % 4096
                b = bytearray(orig)
                b[off] ^= 1 << ((p + j) % 8)
                t, _ = dump(bytes(b))
                c = subprocess.run([dreamd, '--check', '--data-dir', t], capture_output=True)
                if c.returncode < 0:
                    counts['crash'] += 1
                    print(f'crash: page {p} byte {off}: signal {-c.returncode}')
                elif c.returncode:
                    counts['detected'] += 1
                else:
                    _, dd = dump(bytes(b))
                    if dd.returncode == 0 and dd.stdout == ref.stdout:
                        counts['unused'] += 1
                    else:
                        counts['missed'] += 1
                        print(f'missed: page {p} byte {off}')
        print(f'{n_pages} pages of {len(orig) // 4096}, {n_pages * per} flips: {counts}')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
