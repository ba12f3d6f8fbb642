"""Screenshots of the MLflow UI (experiment runs table, run page, the parity plot among the run's artifacts) and of
the REST API's offline /docs page, taken with headless Chromium; written to docs/img/.

    .venv/bin/python docs/screenshots.py            # trains into a temporary store first (~1 min on 2 cores)
    .venv/bin/python docs/screenshots.py --tracking-uri sqlite:///$PWD/mlflow.db   # the runs of `make run`

Needs Debian's chromium (``apt-get install -y chromium``); node + npm install playwright-core once into ~/.cache to
close the MLflow UI's first-visit panels and pick metric columns (docs/screenshots.js), else plain
``chromium --screenshot``. Nothing leaves 127.0.0.1: `nacond ui` and `nacond serve` run on free local ports and are
stopped (SIGTERM) at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--force-device-scale-factor=1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float = 60.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("no chromium on PATH: apt-get install -y chromium")


def playwright_modules() -> Path | None:
    """node_modules with playwright-core (installed once from npm into ~/.cache; it drives the system chromium and
    downloads no browser), or None without node/npm: then plain ``chromium --screenshot`` is used."""
    cache = Path.home() / ".cache" / "nacond-screenshots"
    mods = cache / "node_modules"
    if (mods / "playwright-core").is_dir():
        return mods
    if not (shutil.which("node") and shutil.which("npm")):
        return None
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(cache),
                    "playwright-core@1"], check=True, timeout=300)
    return mods


def shoot_all(jobs: list[dict]) -> None:
    """Screenshots of each job's URL (see docs/screenshots.js): with playwright-core the MLflow UI's first-visit
    panels are closed and columns picked; without it, one plain ``chromium --screenshot`` per URL."""
    mods = playwright_modules()
    if mods is not None:
        env = {**os.environ, "NODE_PATH": str(mods), "CHROMIUM": chromium()}
        subprocess.run(["node", str(ROOT / "docs" / "screenshots.js"), json.dumps(jobs, default=str)], check=True,
                       env=env, timeout=600)
        return
    for j in jobs:
        with tempfile.TemporaryDirectory() as profile:
            cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                   f"--window-size={j.get('width', 1440)},{j.get('height', 900)}", "--virtual-time-budget=15000",
                   f"--screenshot={j['path']}", j["url"]]
            subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        print(f"{j['path']} <- {j['url']}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracking-uri", help="store with a `nacond train` run (default: train into a temp store)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="nacond-shots-"))
    uri = args.tracking_uri
    if uri is None:
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        subprocess.run([str(BIN / "nacond"), "train", "--data", str(ROOT / "datasets" / "na_sse"), "--cv", "grouped",
                        "--out", str(tmp / "model"), "--tracking-uri", uri], check=True, cwd=tmp)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("nacond")
    run = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)[0]
    eid, rid = exp.experiment_id, run.info.run_id

    port = free_port()
    ui = subprocess.Popen([str(BIN / "nacond"), "ui", "--tracking-uri", uri, "--port", str(port)], cwd=tmp,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/#/experiments/{eid}"
        wait_http(f"http://127.0.0.1:{port}/health", 90)
        # the runs table shows no metric column until one is picked: drop two attribute columns, add the headline
        pick = [{"role": "button", "name": "Columns"}] + [
            {"click": c, "exact": True, "last": True, "wait": 400} for c in ("Source", "Models")
        ] + [
            {"click": m, "exact": True, "wait": 400} for m in ("cv_mae_log10_sigma", "cv_mae_ea_eV",
                                                               "baseline_family_mae_log10_sigma",
                                                               "baseline_mae_log10_sigma")
        ] + [{"key": "Escape"}]
        shoot_all([
            {"url": f"{base}?workflowType=machine_learning", "path": args.out / "mlflow_experiment.png",
             "width": 1600, "height": 420, "actions": pick},
            {"url": f"{base}/runs/{rid}?workflowType=machine_learning", "path": args.out / "mlflow_run.png",
             "width": 1440, "height": 1180},
            {"url": f"{base}/runs/{rid}/artifacts/evaluation/parity_grouped.png?workflowType=machine_learning",
             "path": args.out / "mlflow_run_parity.png", "width": 1440, "height": 760},
        ])
    finally:
        stop(ui)
    parity = Path(client.download_artifacts(rid, "evaluation/parity_grouped.png", str(tmp)))
    api_port = free_port()
    api = subprocess.Popen([str(BIN / "nacond"), "serve", "--port", str(api_port)], cwd=tmp,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{api_port}/health", 60)
        shoot_all([
            {"url": parity.as_uri(), "path": args.out / "parity_grouped.png", "width": 1265, "height": 572,
             "wait": 500},
            {"url": f"http://127.0.0.1:{api_port}/docs", "path": args.out / "rest_docs.png", "width": 1280,
             "height": 1000, "actions": [{"click": "/predict", "exact": True, "wait": 1000}]},
        ])
    finally:
        stop(api)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
