"""Robustness campaign (issue 14): random formulas, malformed CIFs, REST requests from parallel loopback clients,
bit flips in model files and broken training files. Every input must give a result with finite numbers or a
``ValueError`` subclass naming the input, within 15 s; anything else is a crash, anything slower a hang.

    .venv/bin/python benchmarks/bench_robustness.py --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ml.data import dataset_stamp

ROOT = Path(__file__).resolve().parents[1]
HANG_S = 15.0
SYMBOLS = ["Na", "Li", "K", "P", "S", "Se", "Cl", "Br", "I", "O", "Zr", "Si", "Sc", "Y", "B", "H", "C", "N", "Al",
           "Ga", "Sb", "W", "Sn", "Ge", "Og", "Rf", "Xx", "D", "T", "Uue", "e", "Q"]
JUNK = ["(", ")", "[", "]", "{", "}", ".", "·", "*", " ", "-", "+", "/", "e309", "1e5", "0", "0.0", "nan", "inf",
        "∞", "\t", "\n", "'", '"', ",", ";", "%", "$", "\\", "ü", "H2O", ".10H2O", " 10H2O", "x", "δ", "²", "₃"]


def random_formula(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 8)):
        r = rng.random()
        if r < 0.55:
            parts.append(rng.choice(SYMBOLS) + rng.choice(["", str(rng.randint(0, 12)), f"{rng.uniform(0, 5):.2f}"]))
        else:
            parts.append(rng.choice(JUNK))
    if rng.random() < 0.05:
        parts.append("Na" * rng.randint(50, 200))
    return "".join(parts)


class Tally:
    def __init__(self, name: str):
        self.name, self.tried, self.ok, self.clear, self.crash, self.hang = name, 0, 0, 0, 0, 0
        self.examples: list[str] = []
        self.slowest = 0.0

    def record(self, label: str, fn) -> None:
        self.tried += 1
        t = time.perf_counter()
        try:
            out = fn()
        except ValueError as exc:  # every nacond input error is a ValueError subclass
            kind = "clear"
            msg = str(exc)
            if not msg:
                kind = "crash"
        except Exception as exc:  # noqa: BLE001 - crashes are what the campaign counts
            kind, msg = "crash", f"{type(exc).__name__}: {exc}"
        else:
            silent = ("crash", "accepted silently (non-finite result or no error)")
            kind, msg = ("ok", "") if out is not False else silent
        dt = time.perf_counter() - t
        self.slowest = max(self.slowest, dt)
        if dt > HANG_S:
            self.hang += 1
            self.examples.append(f"HANG {dt:.1f}s {label!r}")
        setattr(self, kind, getattr(self, kind) + 1)
        if kind == "crash" and len(self.examples) < 10:
            self.examples.append(f"CRASH {label!r}: {msg[:200]}")

    def to_dict(self) -> dict:
        return {"tried": self.tried, "results": self.ok, "clear_errors": self.clear, "crashes": self.crash,
                "hangs": self.hang, "slowest_s": round(self.slowest, 3), "examples": self.examples}


def finite(r) -> bool:
    vals = [r.log10_sigma_S_cm, *r.log10_sigma_interval]
    return all(math.isfinite(v) for v in vals)


def formulas(predictor, n: int, seed: int) -> Tally:
    rng = random.Random(seed)
    t = Tally("formulas")
    items = [random_formula(rng) for _ in range(n)]
    for f in items:
        t.record(f, lambda f=f: finite(predictor.predict(f)))
    # the same inputs as one batch: every item a result or a failure naming it, never an exception
    batch = predictor.predict_many(items, on_error="skip")
    t.batch_consistent = all((r.ok and finite(r)) or (not r.ok and r.error) for r in batch)
    return t


def cif_cases(tmp: Path, rng: random.Random) -> list[tuple[str, object]]:
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

    good = str(CifWriter(Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                                   [[0, 0, 0], [0.5, 0.5, 0.5]])))
    cases: list[tuple[str, object]] = []
    fifo = tmp / "fifo.cif"
    fifo.parent.mkdir(parents=True, exist_ok=True)
    import os

    os.mkfifo(fifo)
    (tmp / "zero.cif").symlink_to("/dev/zero")
    (tmp / "dir.cif").mkdir()
    cases += [("fifo", fifo), ("symlink to /dev/zero", tmp / "zero.cif"), ("directory", tmp / "dir.cif"),
              ("missing", tmp / "missing.cif")]
    head, loop = good.split("loop_", 1)
    ops = "loop_\n _symmetry_equiv_pos_as_xyz\n" + "\n".join(f"  'x,y,z+{k}/20000'" for k in range(20000)) + "\n"
    many = ("loop_\n _atom_site_label\n _atom_site_type_symbol\n _atom_site_fract_x\n _atom_site_fract_y\n"
            " _atom_site_fract_z\n _atom_site_occupancy\n" +
            "\n".join(f"  Na{k} Na {rng.random():.5f} {rng.random():.5f} {rng.random():.5f} 1" for k in range(80000)))
    texts = {"20k symmetry operations": head + ops + "loop_" + loop, "80k atom sites": head + many,
             "empty": "", "binary": "\x00\x01\x02" * 1000, "no cell": "data_x\nloop_\n_atom_site_label\nNa1\n"}
    big = "data_big\n" + "#" * 6_000_000
    texts["6 MB"] = big
    for k in range(40):  # random mutations of a good CIF
        chars = list(good)
        for _ in range(rng.randint(1, 30)):
            i = rng.randrange(len(chars))
            chars[i] = rng.choice("0123456789.-+ ()'\n_abcxyzNaCl")
        texts[f"mutation {k}"] = "".join(chars)
    for name, text in texts.items():
        p = tmp / f"{name.replace(' ', '_')}.cif"
        p.write_text(text)
        cases.append((name, p))
    return cases


def cifs(predictor, seed: int) -> Tally:
    t = Tally("cifs")
    with tempfile.TemporaryDirectory() as d:
        for name, path in cif_cases(Path(d) / "cifs", random.Random(seed)):
            t.record(name, lambda path=path: finite(predictor.predict(path)))
    return t


def rest(predictor, n: int, clients: int, seed: int) -> dict:
    import httpx
    import psutil
    import uvicorn

    from serving.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(predictor), host="127.0.0.1", port=port, log_level="error"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.05)
    rng = random.Random(seed)
    bodies = []
    for _ in range(n):
        r = rng.random()
        if r < 0.6:
            bodies.append({"formula": random_formula(rng)})
        elif r < 0.8:
            bodies.append({"formulas": [random_formula(rng) for _ in range(rng.randint(1, 20))]})
        elif r < 0.9:
            bodies.append({"formula": rng.choice(["/etc/passwd.cif", "../models/default/model.json.cif", "x.cif"])})
        else:
            t = rng.choice(['"60C"', '"-400K"', '"nan"', "1e309", "NaN", '"x"'])  # raw JSON: strict clients refuse inf
            bodies.append(f'{{"formula": "Na3PS4", "temperature": {t}}}')
    codes: dict[int, int] = {}
    slow = 0
    rss0 = psutil.Process().memory_info().rss
    lock = threading.Lock()

    def send(body):
        nonlocal slow
        t = time.perf_counter()
        with httpx.Client(timeout=60) as c:
            kw = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, str) \
                else {"json": body}
            code = c.post(f"http://127.0.0.1:{port}/predict", **kw).status_code
        with lock:
            codes[code] = codes.get(code, 0) + 1
            slow += time.perf_counter() - t > HANG_S

    with ThreadPoolExecutor(clients) as ex:
        list(ex.map(send, bodies))

    def chunks():
        for _ in range(300 * 16):  # 300 MB in 64 KB chunks, no Content-Length
            yield b" " * 65536

    t = time.perf_counter()
    with httpx.Client(timeout=60) as c:
        try:
            big = c.post(f"http://127.0.0.1:{port}/predict", content=chunks(),
                         headers={"content-type": "application/json"}).status_code
        except httpx.HTTPError as exc:  # the server may close the connection after its 413
            big = f"connection closed ({type(exc).__name__})"
    big_s = time.perf_counter() - t
    rss1 = psutil.Process().memory_info().rss
    server.should_exit = True
    th.join(10)
    return {"requests": n, "clients": clients, "status_codes": {str(k): v for k, v in sorted(codes.items())},
            "server_errors_5xx": sum(v for k, v in codes.items() if k >= 500), "hangs": slow,
            "chunked_300MB_status": big, "chunked_300MB_seconds": round(big_s, 2),
            "rss_growth_MB": round((rss1 - rss0) / 1e6, 1)}


def bit_flips(n: int, seed: int) -> Tally:
    from serving import Predictor

    rng = random.Random(seed)
    t = Tally("model bit flips")
    src = ROOT / "models" / "default"
    files = [p for p in src.rglob("*") if p.is_file()]
    with tempfile.TemporaryDirectory() as d:
        for k in range(n):
            dst = Path(d) / f"m{k}"
            shutil.copytree(src, dst)
            f = dst / rng.choice(files).relative_to(src)
            data = bytearray(f.read_bytes())
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
            f.write_bytes(bytes(data))

            def load(dst=dst):
                Predictor.load(dst)
                return False  # loading a flipped model is a failure of the check, counted as a crash

            t.record(str(f.relative_to(dst)), load)
            shutil.rmtree(dst)
    return t


def training_files(seed: int) -> Tally:
    import pandas as pd

    from training.config import TrainConfig
    from training.train import prepare

    t = Tally("broken training files")
    base = pd.read_csv(ROOT / "tests" / "fixtures" / "tiny.csv", dtype=str, keep_default_na=False)
    edits = {
        "Ea 50 eV": ("ea_eV", "50"), "negative sigma": ("sigma_S_cm", "-1e-3"), "zero sigma": ("sigma_S_cm", "0"),
        "inf sigma": ("sigma_S_cm", "inf"), "nan sigma": ("sigma_S_cm", "nan"), "T = 25 K": ("temperature_K", "25"),
        "T = 1e309": ("temperature_K", "1e309"),
        "formula Na1e309Cl": ("formula", "Na1e309Cl"),
        "formula NaRf2O3": ("formula", "NaRf2O3"), "formula empty": ("formula", ""), "no provenance": ("doi", ""),
        "DOI upper case": ("doi", "10.1039/ABC"), "text in Ea": ("ea_eV", "0.3 eV"),
        "censor ?": ("sigma_censor", "?"),
        "family unknown": ("family", "perovskite-ish"), "id empty": ("entry_id", ""),
        "same_as unknown": ("same_as", "X-1"),
        "mobile ion missing": ("mobile_ion", "K"), "form odd": ("form", "liquid"), "measure odd": ("measure", "ionic"),
    }
    with tempfile.TemporaryDirectory() as d:
        cases = []
        for name, (col, val) in edits.items():
            df = base.copy()
            df.loc[0, col] = val
            if name == "no provenance":
                df.loc[0, ["seed_ref", "reference"]] = ""
            cases.append((name, df))
        cases += [("header only", base.iloc[:0]), ("two rows", base.iloc[:2]),
                  ("no Ea at all", base[base["sigma_S_cm"].ne("") & base["temperature_K"].ne("")]
                   .assign(ea_eV="", ea_T_range_K="")),
                  ("columns missing", base.drop(columns=["formula"])),
                  ("duplicate row", pd.concat([base, base.iloc[:1]]))]
        for k, (name, df) in enumerate(cases):
            p = Path(d) / f"c{k}.csv"
            df.to_csv(p, index=False)

            def run(p=p, name=name):
                prepare(TrainConfig(data=str(p), mobile_ion="Na"))
                return None if name == "no Ea at all" else False  # the others must be refused

            t.record(name, run)
        junk = Path(d) / "junk.csv"
        junk.write_bytes(b"\x00\xff\xfe garbage")
        t.record("binary file", lambda: prepare(TrainConfig(data=str(junk))))
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    ap.add_argument("--formulas", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=2_000)
    ap.add_argument("--flips", type=int, default=400)
    args = ap.parse_args()
    from serving import Predictor

    p = Predictor.load()
    t0 = time.perf_counter()
    f = formulas(p, args.formulas, seed=0)
    res = {"formulas": {**f.to_dict(), "batch_consistent": f.batch_consistent}, "cifs": cifs(p, seed=1).to_dict(),
           "rest": rest(p, args.requests, clients=8, seed=2),
           "model_bit_flips": bit_flips(args.flips, seed=3).to_dict(),
           "training_files": training_files(seed=4).to_dict(), "seconds": round(time.perf_counter() - t0, 1),
           "hang_threshold_s": HANG_S}
    args.out.mkdir(parents=True, exist_ok=True)
    res["dataset"] = dataset_stamp()  # which data.csv these numbers come from
    (args.out / "robustness.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "examples"} if isinstance(v, dict) else v
                      for k, v in res.items()}, indent=1))


if __name__ == "__main__":
    main()
