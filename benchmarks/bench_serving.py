"""Serving benchmarks: cold start, warm single-prediction latency, batch throughput (compositions and
structures), and a loopback load test of `nacond serve` (1,000 requests, 10 % malformed).

    .venv/bin/python benchmarks/bench_serving.py --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ml.data import dataset_stamp

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def cold_start(runs: int = 5) -> dict:
    code = "import serving; serving.predict('Na3Zr2Si2PO12')"
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([PY, "-c", code], check=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
    inproc = subprocess.run([PY, "-c", "import time; t=time.perf_counter(); import serving; "
                             "serving.predict('Na3Zr2Si2PO12'); print(time.perf_counter()-t)"],
                            check=True, cwd=ROOT, capture_output=True, text=True).stdout
    return {"process_wall_s_median": float(np.median(times)), "process_wall_s_all": times,
            "import_load_first_prediction_s": float(inproc)}


def candidates(n: int, seed: int = 1) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_composition import candidate_formulas

    return candidate_formulas(n, seed=seed)


def latency(n: int = 1000, repeats: int = 3) -> dict:
    """p50/p99 of single predictions over n distinct formulas (no cache hits); median over repeats."""
    from serving import Predictor

    p = Predictor.load()
    p.predict("Na3PS4")
    runs = []
    for r in range(repeats):
        ts = []
        for f in candidates(n, seed=100 + r):
            t = time.perf_counter()
            p.predict(f)
            ts.append(time.perf_counter() - t)
        ts = np.array(ts) * 1e3
        runs.append((float(np.percentile(ts, 50)), float(np.percentile(ts, 99))))
    p50s, p99s = zip(*runs, strict=True)
    return {"n": n, "repeats": repeats, "p50_ms": float(np.median(p50s)), "p99_ms": float(np.median(p99s)),
            "p50_ms_runs": p50s, "p99_ms_runs": p99s}


def throughput(n: int = 10_000) -> dict:
    from serving import Predictor

    p = Predictor.load()
    rates = []
    for r in range(3):  # different formulas each time: no cache hits
        fs = candidates(n, seed=200 + r)
        t = time.perf_counter()
        out = p.predict_many(fs)
        dt = time.perf_counter() - t
        assert len(out) == n and all(x.ok for x in out)
        rates.append(n / dt)
    return {"n": n, "compositions_per_s": float(np.median(rates)), "runs": rates}


def structures(n_copies: int = 100) -> dict:
    from pymatgen.core import Lattice, Structure

    from serving import Predictor

    p = Predictor.load()
    rng = np.random.default_rng(0)
    # synthetic disordered cells (Na sites partially occupied) of 8-64 sites: what the parse->composition path costs
    structs = []
    for _ in range(n_copies):
        occ = float(rng.uniform(0.6, 1.0))
        s = Structure(Lattice.cubic(7.0), [{"Na": occ}, "P", "S", "S"],
                      [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], [0.75, 0.75, 0.25]])
        s.make_supercell([int(rng.integers(1, 3))] * 3)
        structs.append(s)
    t = time.perf_counter()
    p.predict_many(structs)
    dt_obj = time.perf_counter() - t
    tmp = ROOT / "build" / "bench_cifs"
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, s in enumerate(structs):
        path = tmp / f"s{i}.cif"
        s.to(filename=str(path))
        paths.append(path)
    t = time.perf_counter()
    p.predict_many(paths)
    dt_cif = time.perf_counter() - t
    return {"n": len(structs), "structure_objects_per_s": len(structs) / dt_obj, "cif_files_per_s": len(paths) / dt_cif}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_test(n: int = 1000) -> dict:
    import httpx

    port = _free_port()
    proc = subprocess.Popen([str(Path(PY).with_name("nacond")), "serve", "--port", str(port)], cwd=ROOT,
                            env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        rss0 = _rss_mb(proc.pid)
        good = candidates(n, seed=4)
        rnd = random.Random(0)
        codes: dict[int, int] = {}
        lat = []
        with httpx.Client(base_url=url, timeout=10) as c:
            for i in range(n):
                kind = i % 10
                if kind == 0:  # malformed: bad formula, bad JSON, wrong type, empty body, oversized batch
                    bad = rnd.choice([{"json": {"formula": "Xx2O"}}, {"content": b"{oops"},
                                      {"json": {"formula": 5}}, {"json": {}},
                                      {"json": {"formulas": ["Na3PS4"] * 1001}}])
                    t = time.perf_counter()
                    r = c.post("/predict", headers={"content-type": "application/json"}, **bad)
                elif kind == 1:
                    t = time.perf_counter()
                    r = c.post("/predict", json={"formulas": good[i:i + 20]})
                else:
                    t = time.perf_counter()
                    r = c.post("/predict", json={"formula": good[i]})
                lat.append(time.perf_counter() - t)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
        rss1 = _rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    lat_ms = np.array(lat) * 1e3
    return {"requests": n, "status_codes": codes, "server_errors_5xx": sum(v for k, v in codes.items() if k >= 500),
            "rss_mb_start": rss0, "rss_mb_end": rss1, "p50_ms": float(np.percentile(lat_ms, 50)),
            "p99_ms": float(np.percentile(lat_ms, 99))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/bench")
    args = ap.parse_args()
    res = {"cold_start": cold_start(), "latency": latency(), "throughput": throughput(),
           "structures": structures(), "load_test": load_test()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res["dataset"] = dataset_stamp()  # which data.csv these numbers come from
    (out / "serving.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
