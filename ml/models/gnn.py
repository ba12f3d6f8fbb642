"""A crystal graph network for log10 sigma (25 degC) and Ea, native to disordered structures.

* Graph (:func:`structure_to_graph`): one node per site; node features are the site's occupancy vector over
  the elements (vacancy = 1 - sum of occupancies as its own channel), so a linear layer on it is an
  occupancy-weighted element embedding and a half-occupied Na site is half a Na embedding. Edges are the
  ``max_neighbors`` nearest periodic neighbours within ``cutoff`` from pymatgen's neighbour list (PyG's
  ``radius_graph`` needs pyg-lib, which is not installable here, and ignores periodic images), with a Gaussian
  expansion of the distance.
* Network (``CrystalGNN``): embedding -> ``n_layers`` gated CGConv-style convolutions (Xie & Grossman 2018) ->
  occupancy-weighted mean pool -> MLP -> two heads (log10 sigma, Ea), trained with a masked MSE on
  standardised targets so a structure with only one target still teaches the other head.
* Ensemble (:class:`GNNEnsemble`): ``n_models`` networks, each on a bootstrap of the compositions; the
  ensemble mean is the prediction and the members' spread is reported; out-of-bag residuals give split-conformal
  90 % intervals (each composition is scored only by members that never saw it).
* scikit-learn-style ``fit(graphs, Y)`` / ``predict(graphs)``; save/load as ``model.json`` + ``weights.pt``
  (state dicts, loaded with ``weights_only=True``).
* Mobile-ion channel (``GNNConfig(mobile_channel=True)``): one more node channel, the occupancy of the mobile
  ion on the site (Na in nacond, Li in OBELiX), beside the element channels, so what a network learns about the
  mobile-ion sublattice is not tied to one element.
* Pretraining (:func:`pretrain_gnn` -> :class:`PretrainedGNN`): one network trained on (graphs, log10 sigma) of
  another mobile ion (the OBELiX Li structures, :mod:`ml.structures.obelix`); upper bounds such as ``<1E-10``
  enter as one-sided (hinge) terms, never as values. ``GNNEnsemble(config, pretrained=...)`` starts every
  member from those weights and fine-tunes it on the Na data with the usual recipe.

Training is full batch (the whole dataset is a few thousand nodes), on CPU, seeded.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ml.errors import ModelLoadError, NacondError
from ml.models.manifest import verify_manifest, write_manifest
from ml.utils import sha256_of

log = logging.getLogger(__name__)

N_ELEMENTS = 95  # channel 0: vacancy; channel Z: element Z (H..Am)
MOBILE_CHANNEL = N_ELEMENTS  # with GNNConfig.mobile_channel: the mobile ion's occupancy, after the elements
FORMAT_VERSION = 1  # unchanged by the mobile channel/pretraining: old model.json configs load with their defaults
TARGETS = ("log10_sigma_S_cm", "ea_eV")


class GraphError(NacondError):
    """A structure that cannot become a graph (no Na, isolated sites, too large)."""


def structure_to_graph(structure, *, cutoff: float = 5.0, max_neighbors: int = 8, n_rbf: int = 16,
                       mobile_ion: str = "Na", mobile_channel: bool = False):
    """A PyG ``Data`` for a (possibly disordered) pymatgen structure.

    ``x``: (n_sites, 95) occupancies (column 0 = vacancy), or (n_sites, 96) with ``mobile_channel``: column 95
    is the occupancy of ``mobile_ion`` on the site; ``edge_index``/``edge_attr``: periodic neighbours and their
    Gaussian-expanded distances; ``w``: site occupancy (pool weights).
    """
    import torch
    from torch_geometric.data import Data

    n = len(structure)
    x = np.zeros((n, N_ELEMENTS + int(mobile_channel)), dtype=np.float32)
    for i, site in enumerate(structure):
        for sp, occ in site.species.items():
            z = _atomic_number(sp.symbol if hasattr(sp, "symbol") else str(sp))
            if z >= N_ELEMENTS:
                raise GraphError(f"element {sp} (Z={z}) of {structure.composition.reduced_formula} is beyond "
                                 f"the GNN's element table")
            x[i, z] += occ
    x[:, 0] = np.clip(1.0 - x[:, 1:N_ELEMENTS].sum(1), 0.0, 1.0)
    z_mobile = _atomic_number(mobile_ion)
    if not x[:, z_mobile].sum() > 0:
        raise GraphError(f"structure {structure.composition.reduced_formula} has no {mobile_ion}")
    if mobile_channel:
        x[:, MOBILE_CHANNEL] = x[:, z_mobile]
    centers, points, _, dists = structure.get_neighbor_list(cutoff)
    keep = dists > 1e-6
    centers, points, dists = centers[keep], points[keep], dists[keep]
    count = np.bincount(centers, minlength=n)
    if (count == 0).any():
        i = int(np.argmax(count == 0))
        raise GraphError(f"site {i} ({structure[i].species_string}) of "
                         f"{structure.composition.reduced_formula} has no neighbour within {cutoff} A")
    # per site, its max_neighbors nearest (ties in list order): sort by (site, distance), keep the first ranks
    order = np.lexsort((dists, centers))
    rank = np.arange(len(order)) - np.repeat(np.cumsum(count) - count, count)
    order = order[rank < max_neighbors]
    src, dst, d = points[order], centers[order], dists[order].astype(np.float32)
    mu = _rbf_centres(cutoff, n_rbf)
    rbf = np.exp(-((d[:, None] - mu[None, :]) ** 2) / (2 * (cutoff / n_rbf) ** 2))
    return Data(x=torch.from_numpy(x),
                edge_index=torch.from_numpy(np.stack([src, dst]).astype(np.int64)),
                edge_attr=torch.from_numpy(rbf.astype(np.float32)),
                w=torch.from_numpy(x[:, 1:N_ELEMENTS].sum(1)),
                num_nodes=n)


@lru_cache(maxsize=256)
def _atomic_number(symbol: str) -> int:
    from pymatgen.core import Element

    return Element(symbol).Z


@lru_cache(maxsize=8)
def _rbf_centres(cutoff: float, n_rbf: int) -> np.ndarray:
    return np.linspace(0.0, cutoff, n_rbf, dtype=np.float32)


NODE_FEATURES = ("onehot", "descriptors")
DESCRIPTOR_NAMES = ("electronegativity", "atomic_radius", "shannon_radius", "oxidation_state", "row", "group",
                    "mendeleev_number", "atomic_mass", "is_anion", "is_mobile_ion", "vacancy")


@lru_cache(maxsize=4)
def element_descriptors(mobile_ion: str = "Na") -> np.ndarray:
    """(N_ELEMENTS, len(DESCRIPTOR_NAMES)) physical descriptors of channel Z (row 0: vacancy), each column
    standardised over the elements: Pauling electronegativity, atomic and Shannon radius (rule oxidation state:
    ``ml.chemistry``), that state, row, group, Mendeleev number, mass, anion and mobile-ion flags, and a vacancy
    flag (the three flags are 0/1, not standardised). A node's descriptor vector is its occupancy-weighted sum,
    so an element the training data never saw is still placed among its chemical neighbours (a one-hot embedding
    would give it an untrained vector)."""
    from pymatgen.core import Element

    from ml.chemistry import ANION_STATES, cation_state, ionic_radius

    E = np.zeros((N_ELEMENTS, len(DESCRIPTOR_NAMES)))
    for z in range(1, N_ELEMENTS):
        el = Element.from_Z(z)
        state = ANION_STATES.get(el.symbol) or cation_state(el.symbol)
        with warnings.catch_warnings():  # noble gases have no Pauling electronegativity: 0
            warnings.simplefilter("ignore")
            x = el.X if el.X == el.X else 0.0
        E[z, :10] = [x, float(el.atomic_radius or 0.0), ionic_radius(el.symbol, state) if state else 0.0, state,
                     el.row, el.group, el.mendeleev_no or 0, float(el.atomic_mass), el.symbol in ANION_STATES,
                     el.symbol == mobile_ion]
    mu, sd = E[1:, :8].mean(0), E[1:, :8].std(0)
    sd[sd == 0] = 1.0
    E[1:, :8] = (E[1:, :8] - mu) / sd
    E[0] = 0.0
    E[0, -1] = 1.0  # the vacancy channel
    return E.astype(np.float32)


def _network(hidden: int, n_layers: int, n_rbf: int, dropout: float, n_features: int = N_ELEMENTS,
             node_features: str = "onehot"):
    import torch
    from torch import nn
    from torch_geometric.nn import MessagePassing

    if node_features not in NODE_FEATURES:
        raise ValueError(f"node_features {node_features!r} is not one of {', '.join(NODE_FEATURES)}")

    class GatedConv(MessagePassing):
        """CGConv (Xie & Grossman 2018): x_i + sum_j sigmoid(W_f z_ij) * softplus(W_s z_ij), z_ij = [x_i, x_j, e_ij].

        The same function as ``torch_geometric.nn.CGConv``, with each linear map split into its x_i, x_j and e_ij
        blocks so the node blocks run once per node instead of once per edge (about 3x faster on CPU here).
        """

        def __init__(self):
            super().__init__(aggr="add")
            self.node_i = nn.Linear(hidden, 2 * hidden)
            self.node_j = nn.Linear(hidden, 2 * hidden, bias=False)
            self.edge = nn.Linear(n_rbf, 2 * hidden, bias=False)

        def forward(self, x, edge_index, edge_attr):
            return x + self.propagate(edge_index, a=self.node_i(x), b=self.node_j(x), e=self.edge(edge_attr))

        def message(self, a_i, b_j, e):
            if torch.is_grad_enabled():
                z = a_i + b_j + e
                f, s = z.chunk(2, dim=-1)
                return torch.sigmoid(f) * nn.functional.softplus(s)
            # inference: the same function with in-place ops on the per-edge buffers (fewer allocations)
            z = e.add_(a_i).add_(b_j)
            f, s = z.chunk(2, dim=-1)
            return nn.functional.softplus(s).mul_(f.sigmoid_())

    class CrystalGNN(nn.Module):
        def __init__(self):
            super().__init__()
            if node_features == "descriptors":  # occupancy-weighted element descriptors, a fixed (95 x d) map;
                # channels past the elements (the mobile-ion channel) pass through
                self.register_buffer("descriptors", torch.from_numpy(element_descriptors()))
                self.embed = nn.Linear(len(DESCRIPTOR_NAMES) + n_features - N_ELEMENTS, hidden, bias=False)
            else:
                self.embed = nn.Linear(n_features, hidden, bias=False)
            self.convs = nn.ModuleList([GatedConv() for _ in range(n_layers)])
            self.norms = nn.ModuleList([nn.LayerNorm(hidden) for _ in range(n_layers)])
            self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, len(TARGETS)))

        def forward(self, data):
            x = data.x
            if node_features == "descriptors":
                x = torch.cat([x[:, :N_ELEMENTS] @ self.descriptors, x[:, N_ELEMENTS:]], dim=1)
            h = self.embed(x)
            for conv, norm in zip(self.convs, self.norms, strict=True):
                h = norm(conv(h, data.edge_index, data.edge_attr))
            w = data.w.unsqueeze(1)
            num = torch.zeros(int(data.batch.max()) + 1, h.shape[1]).index_add_(0, data.batch, h * w)
            den = torch.zeros(num.shape[0], 1).index_add_(0, data.batch, w)
            return self.head(num / den.clamp_min(1e-6))

    return CrystalGNN()


@dataclass
class GNNConfig:
    hidden: int = 32
    n_layers: int = 3
    n_rbf: int = 16
    cutoff: float = 5.0
    max_neighbors: int = 8
    dropout: float = 0.1
    epochs: int = 150
    lr: float = 3e-3
    weight_decay: float = 1e-4
    n_models: int = 5
    bootstrap: bool = True
    seed: int = 0
    threads: int = 2
    node_features: str = "onehot"  # or "descriptors": physical element descriptors (tried 2026-12-07, no gain)
    mobile_channel: bool = False  # node channel 95 = mobile-ion occupancy (needed to fine-tune a pretrained net)
    # residual: the networks learn what the composition model (extra trees) gets wrong, trained on its grouped
    # out-of-fold errors; a prediction is composition model + GNN correction (:class:`GNNRegressor`, and the
    # model directory's composition/ model in serving.structure_predictor)
    residual: bool = False

    @property
    def n_features(self) -> int:
        return N_ELEMENTS + int(self.mobile_channel)

    def graph_kwargs(self) -> dict:
        """What :func:`structure_to_graph` needs to build graphs this configuration's networks read."""
        return {"cutoff": self.cutoff, "max_neighbors": self.max_neighbors, "n_rbf": self.n_rbf,
                "mobile_channel": self.mobile_channel}

    def network(self):
        return _network(self.hidden, self.n_layers, self.n_rbf, self.dropout, self.n_features, self.node_features)

    def architecture(self) -> dict:
        """The fields that fix the shapes of a network's weights (a pretrained state must match them)."""
        return {"hidden": self.hidden, "n_layers": self.n_layers, "n_rbf": self.n_rbf,
                "n_features": self.n_features, "node_features": self.node_features}


@dataclass
class PretrainedGNN:
    """One network's weights after pretraining, with what they were trained on (``meta``: source, counts,
    epochs, seconds, the standardisation of the pretraining targets, ``architecture``)."""

    state: dict
    meta: dict

    def check(self, config: GNNConfig) -> None:
        arch = self.meta.get("architecture")
        if arch != config.architecture():
            raise NacondError(f"pretrained GNN ({self.meta.get('source', '?')}) has architecture {arch}, the "
                              f"configuration to fine-tune needs {config.architecture()}")

    def save(self, path: str | Path) -> Path:
        import torch

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state": self.state, "meta": json.dumps(self.meta, default=str)}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> PretrainedGNN:
        import torch

        path = Path(path)
        if not path.is_file():
            raise NacondError(f"pretrained GNN file {str(path)!r} does not exist")
        try:
            blob = torch.load(path, weights_only=True)
            return cls(state=dict(blob["state"]), meta=json.loads(blob["meta"]))
        except Exception as exc:
            raise NacondError(f"pretrained GNN file {str(path)!r} cannot be read: {type(exc).__name__}: "
                              f"{exc}") from None


def pretrain_gnn(graphs: list, y: np.ndarray, config: GNNConfig, *, upper: np.ndarray | None = None,
                 epochs: int = 100, lr: float = 3e-3, batch_size: int = 32, seed: int = 0,
                 source: str = "") -> PretrainedGNN:
    """Train one network of ``config``'s architecture on log10 sigma of ``graphs`` (the Ea head gets no
    signal). ``y`` holds values (NaN where unknown); ``upper`` (optional, same length) holds upper bounds in
    log10 S/cm (NaN where none): such a row costs ``relu(pred - bound)^2`` and is never given a value.
    Mini-batches of ``batch_size`` graphs, AdamW with a cosine schedule, seeded."""
    import torch
    from torch_geometric.data import Batch

    y = np.asarray(y, dtype=np.float64).reshape(-1)
    upper = np.full(len(y), np.nan) if upper is None else np.asarray(upper, dtype=np.float64).reshape(-1)
    if len(graphs) != len(y) or len(upper) != len(y):
        raise ValueError(f"pretraining: {len(graphs)} graphs, {len(y)} targets and {len(upper)} bounds differ")
    has = np.isfinite(y)
    if has.sum() < 2:
        raise ValueError(f"pretraining needs at least 2 structures with a value, got {int(has.sum())}")
    if graphs[0].x.shape[1] != config.n_features:
        raise NacondError(f"pretraining graphs have {graphs[0].x.shape[1]} node channels, the configuration "
                          f"needs {config.n_features} (mobile_channel={config.mobile_channel})")
    t0 = time.perf_counter()
    torch.set_num_threads(config.threads)
    mean, std = float(y[has].mean()), float(y[has].std()) or 1.0
    z = torch.tensor(np.nan_to_num((y - mean) / std), dtype=torch.float32)
    zu = torch.tensor(np.nan_to_num((upper - mean) / std), dtype=torch.float32)
    m_val = torch.tensor(has, dtype=torch.float32)
    m_up = torch.tensor(np.isfinite(upper) & ~has, dtype=torch.float32)
    torch.manual_seed(seed)
    net = config.network()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=config.weight_decay)
    n_batches = int(np.ceil(len(graphs) / batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * n_batches)
    rng = np.random.default_rng(seed)
    net.train()
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(graphs))
        tot = 0.0
        for b in range(n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            p = net(Batch.from_data_list([graphs[i] for i in idx]))[:, 0]
            it = torch.from_numpy(idx)
            loss = ((((p - z[it]) ** 2) * m_val[it]).sum()
                    + ((torch.relu(p - zu[it]) ** 2) * m_up[it]).sum()) / (m_val[it] + m_up[it]).sum().clamp_min(1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
        losses.append(tot / len(graphs))
    net.eval()
    meta = {"source": source, "n_structures": len(graphs), "n_values": int(has.sum()),
            "n_upper_bounds": int(m_up.sum()), "epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
            "y_mean": mean, "y_std": std, "final_loss": round(losses[-1], 4),
            "seconds": round(time.perf_counter() - t0, 1), "architecture": config.architecture()}
    return PretrainedGNN(state={k: v.detach().clone() for k, v in net.state_dict().items()}, meta=meta)


class GNNEnsemble:
    """Ensemble of :class:`CrystalGNN` with OOB split-conformal intervals; sklearn-style fit/predict on graphs.

    ``Y`` is (n, 2) with NaN where a target is unknown; predictions come back in physical units.
    ``pretrained``: every member starts from these weights (:func:`pretrain_gnn`) instead of a random draw.
    """

    def __init__(self, config: GNNConfig | None = None, *, pretrained: PretrainedGNN | None = None, **overrides):
        self.config = config or GNNConfig(**overrides)
        self.pretrained = pretrained
        if pretrained is not None:
            pretrained.check(self.config)
        self.members: list = []
        self.y_mean = np.zeros(len(TARGETS))
        self.y_std = np.ones(len(TARGETS))
        self.q90 = np.full(len(TARGETS), np.nan)
        # weight of the ensemble's output per target: 1, except for a residual GNN, whose correction is scaled by
        # what its out-of-bag predictions support (least squares through 0, clipped to [0, 1])
        self.shrink = np.ones(len(TARGETS))
        self.oob_slope = np.full(len(TARGETS), np.nan)  # a residual GNN's slope before clipping (diagnostic)
        self.fit_seconds = 0.0
        self.meta: dict = {}

    # -- training ---------------------------------------------------------------------------------------
    def fit(self, graphs: list, Y: np.ndarray, on_epoch: Callable[[], None] | None = None) -> GNNEnsemble:
        """Train ``n_models`` members; ``on_epoch`` (e.g. a progress bar's advance) is called after every epoch
        of every member."""
        import torch
        from torch_geometric.data import Batch

        cfg = self.config
        Y = np.asarray(Y, dtype=np.float64).reshape(len(graphs), len(TARGETS))
        if len(graphs) < 2:
            raise ValueError(f"the GNN needs at least 2 training structures, got {len(graphs)}")
        t0 = time.perf_counter()
        torch.set_num_threads(cfg.threads)
        known = np.isfinite(Y)
        n_known = known.sum(0)
        # a target with no value in this training set (possible in a CV fold) keeps mean 0 / std 1; its head
        # is then untrained and its predictions are not used by the masked loss
        self.y_mean = np.array([Y[known[:, t], t].mean() if n_known[t] else 0.0 for t in range(len(TARGETS))])
        std = np.array([Y[known[:, t], t].std() if n_known[t] > 1 else 0.0 for t in range(len(TARGETS))])
        self.y_std = np.where(std > 0, std, 1.0)
        Z = (Y - self.y_mean) / self.y_std
        rng = np.random.default_rng(cfg.seed)
        n = len(graphs)
        oob_pred = [[[] for _ in range(n)] for _ in TARGETS]
        self.members = []
        for k in range(cfg.n_models):
            torch.manual_seed(cfg.seed * 1000 + k)
            idx = rng.choice(n, size=n, replace=True) if cfg.bootstrap else np.arange(n)
            net = cfg.network()
            if self.pretrained is not None:
                net.load_state_dict(self.pretrained.state)
            self._train_one(net, Batch.from_data_list([graphs[i] for i in idx]), Z[idx], on_epoch)
            self.members.append(net)
            out = np.setdiff1d(np.arange(n), idx)
            if len(out):
                p = self._raw(net, [graphs[i] for i in out])
                for t in range(len(TARGETS)):
                    for j, i in enumerate(out):
                        oob_pred[t][i].append(p[j, t])
        self._calibrate(graphs, Z, oob_pred)
        if cfg.residual:
            log.info("residual GNN: out-of-bag weight of its correction %s",
                     ", ".join(f"{t} {w:.2f} (slope {b:+.2f})"
                               for t, w, b in zip(TARGETS, self.shrink, self.oob_slope, strict=True)))
        self.fit_seconds = time.perf_counter() - t0
        return self

    def _train_one(self, net, batch, Z: np.ndarray, on_epoch: Callable[[], None] | None = None) -> None:
        import torch

        cfg = self.config
        y = torch.tensor(np.nan_to_num(Z), dtype=torch.float32)
        mask = torch.tensor(np.isfinite(Z), dtype=torch.float32)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
        net.train()
        for _ in range(cfg.epochs):
            opt.zero_grad()
            loss = (((net(batch) - y) ** 2) * mask).sum() / mask.sum().clamp_min(1.0)
            loss.backward()
            opt.step()
            sched.step()
            if on_epoch is not None:
                on_epoch()
        net.eval()

    def _calibrate(self, graphs, Z, oob_pred) -> None:
        """Split-conformal q90 of the absolute out-of-bag residual (standardised units). Each composition is
        scored only by members that never saw it. Not normalised by the ensemble spread: with five members the
        spread is too noisy a scale (normalised scores under-covered on grouped CV, docs/benchmarks.md).

        A residual GNN first gets its shrink factor per target from the same out-of-bag predictions: the
        least-squares slope of the composition model's errors on the GNN's corrections, clipped to [0, 1] (0 =
        the structure adds nothing the held-out compositions confirm). Scores are then those of the shrunk
        correction."""
        for t in range(len(TARGETS)):
            have = [i for i in range(len(graphs)) if np.isfinite(Z[i, t]) and oob_pred[t][i]]
            oob = np.array([float(np.mean(oob_pred[t][i])) for i in have])
            z = np.array([Z[i, t] for i in have])
            self.shrink[t] = 1.0
            if self.config.residual and len(have) >= 5:
                # corrections in physical units are (oob * std + mean); z likewise; the slope is scale-free
                c, r = oob * self.y_std[t] + self.y_mean[t], z * self.y_std[t] + self.y_mean[t]
                denom = float(c @ c)
                self.oob_slope[t] = float(c @ r / denom) if denom > 0 else 0.0
                self.shrink[t] = float(np.clip(self.oob_slope[t], 0.0, 1.0))
                scores = list(np.abs(self.shrink[t] * c - r) / self.y_std[t])
            else:
                scores = list(np.abs(oob - z))
            if len(scores) >= 5:
                n = len(scores)
                self.q90[t] = float(np.quantile(scores, min(1.0, np.ceil(0.9 * (n + 1)) / n)))

    # -- prediction -------------------------------------------------------------------------------------
    @staticmethod
    def _raw(net, graphs) -> np.ndarray:
        import torch
        from torch_geometric.data import Batch

        with torch.no_grad():
            return net(Batch.from_data_list(graphs)).numpy().astype(np.float64)

    def _member_preds(self, graphs) -> np.ndarray:
        import torch
        from torch_geometric.data import Batch

        if not self.members:
            raise NacondError("the GNN ensemble is not trained; call fit() or load() first")
        torch.set_num_threads(self.config.threads)
        batch = Batch.from_data_list(graphs)  # collated once for every member
        with torch.inference_mode():
            return np.stack([m(batch).numpy().astype(np.float64) for m in self.members])  # (k, n, 2) standardised

    def predict(self, graphs: list) -> dict[str, np.ndarray]:
        """Mean, 90 % interval and ensemble spread per target, in physical units."""
        if not graphs:
            return {f"{t}{s}": np.array([]) for t in TARGETS for s in ("", "_lo", "_hi", "_spread")}
        P = self._member_preds(graphs)
        mean, spread = P.mean(0), P.std(0)
        out = {}
        for t, name in enumerate(TARGETS):
            half = np.full(len(graphs), self.q90[t])
            out[name] = self.shrink[t] * (mean[:, t] * self.y_std[t] + self.y_mean[t])
            out[f"{name}_lo"] = out[name] - half * self.y_std[t]
            out[f"{name}_hi"] = out[name] + half * self.y_std[t]
            out[f"{name}_spread"] = self.shrink[t] * spread[:, t] * self.y_std[t]
        return out

    # -- persistence --------------------------------------------------------------------------------------
    def save(self, path: str | Path, extra: dict | None = None) -> Path:
        import torch

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save({f"m{k}.{name}": v for k, m in enumerate(self.members) for name, v in m.state_dict().items()},
                   path / "weights.pt")
        meta = {"class": "GNNEnsemble", "format_version": FORMAT_VERSION, "config": asdict(self.config),
                "targets": list(TARGETS), "y_mean": self.y_mean.tolist(), "y_std": self.y_std.tolist(),
                "q90": [None if not np.isfinite(v) else float(v) for v in self.q90],
                "shrink": [float(v) for v in self.shrink],
                "oob_slope": [None if not np.isfinite(v) else float(v) for v in self.oob_slope],
                "n_members": len(self.members),
                "fit_seconds": round(self.fit_seconds, 2), "weights_sha256": sha256_of(path / "weights.pt"),
                "pretrained": None if self.pretrained is None else self.pretrained.meta,
                **(extra or {})}
        (path / "model.json").write_text(json.dumps(meta, indent=2, default=str))
        write_manifest(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> GNNEnsemble:
        path = Path(path)
        verify_manifest(path)
        try:
            return cls._load(path)
        except ModelLoadError:
            raise
        except Exception as exc:  # malformed weights or metadata: never a raw traceback
            raise ModelLoadError(f"GNN model {str(path)!r} cannot be loaded: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _load(cls, path: Path) -> GNNEnsemble:
        import torch

        try:
            meta = json.loads((path / "model.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"GNN model {str(path)!r} cannot be read: {exc}") from None
        if meta.get("class") != "GNNEnsemble" or meta.get("format_version") != FORMAT_VERSION:
            raise ModelLoadError(f"{str(path)!r} is not a GNN model of format {FORMAT_VERSION}")
        if sha256_of(path / "weights.pt") != meta["weights_sha256"]:
            raise ModelLoadError(f"GNN weights in {str(path)!r} do not match their sha256 (corrupted?)")
        self = cls(GNNConfig(**meta["config"]))
        state = torch.load(path / "weights.pt", weights_only=True)
        for k in range(meta["n_members"]):
            net = self.config.network()
            net.load_state_dict({n[len(f"m{k}."):]: v for n, v in state.items() if n.startswith(f"m{k}.")})
            net.eval()
            self.members.append(net)
        self.y_mean = np.array(meta["y_mean"])
        self.y_std = np.array(meta["y_std"])
        self.q90 = np.array([np.nan if v is None else v for v in meta["q90"]])
        self.shrink = np.array(meta.get("shrink", [1.0] * len(TARGETS)), dtype=float)
        self.oob_slope = np.array([np.nan if v is None else v for v in meta.get("oob_slope", [None] * len(TARGETS))],
                                  dtype=float)
        self.meta = meta
        return self


class GNNRegressor:
    """The CV harness's interface: ``fit(frame, X=graphs)`` / ``predict(frame, X=graphs)`` on per-composition
    frames (target columns as in :mod:`ml.targets`); ``X`` is a row-aligned sequence of graphs.

    With ``config.residual`` the regressor first fits the composition model (extra trees, ``preset``) on the same
    frame; the GNN ensemble learns that model's grouped out-of-fold errors (:attr:`NacondModel.oof_predictions`,
    so it sees errors as they are on unseen compositions, not the near-zero training residuals), and a prediction
    is the composition model's plus the GNN's correction (its interval: the composition model's, moved by the
    correction; :func:`add_base`)."""

    def __init__(self, config: GNNConfig | None = None, on_epoch: Callable[[], None] | None = None, *,
                 pretrained: PretrainedGNN | None = None, preset: str = "na-chem-2026-11-26", **overrides):
        self.ensemble = GNNEnsemble(config, pretrained=pretrained, **overrides)
        self.on_epoch = on_epoch
        self.preset = preset
        self.base = None  # the composition model of a residual GNN

    def fit(self, frame, X) -> GNNRegressor:
        Y = np.column_stack([frame[t].to_numpy(dtype=float) if t in frame else np.full(len(frame), np.nan)
                             for t in TARGETS])
        if self.ensemble.config.residual:
            from ml.models.composition import NacondModel

            self.base = NacondModel(learner="extra_trees", preset=self.preset, seed=self.ensemble.config.seed)
            self.base.fit(frame)
            Y = Y - residual_base(self.base)
        self.ensemble.fit(list(X), Y, on_epoch=self.on_epoch)
        return self

    def predict(self, frame, X):
        import pandas as pd

        out = self.ensemble.predict(list(X))
        if self.base is not None:
            b = self.base.predict(frame)
            out = add_base(out, {c: b[c].to_numpy() for c in b.columns})
        return pd.DataFrame({k: v for k, v in out.items() if not k.endswith("_spread")}, index=frame.index)


def residual_base(model) -> np.ndarray:
    """(n, 2) grouped out-of-fold predictions of a fitted composition model on its training rows, the base a
    residual GNN learns to correct (NaN where a target was unknown)."""
    oof = model.oof_predictions
    n = len(next(iter(oof.values())))
    return np.column_stack([oof.get(t, np.full(n, np.nan)) for t in TARGETS])


def add_base(pred: dict[str, np.ndarray], base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A residual GNN's correction (:meth:`GNNEnsemble.predict` on residual targets) added to the composition
    model's prediction ``base`` (``{t, t_lo, t_hi}`` arrays): the point and the composition model's 90 % interval
    move by the correction. The interval keeps the composition model's width, which its conformal calibration
    adapts per composition (tree spread, applicability domain); a correction with an out-of-bag weight in
    (0, 1] lowers the squared error on held-out compositions, so that width is not too narrow on average. The
    spread stays the GNN's."""
    out = dict(pred)
    for t in TARGETS:
        if t in base:
            out[t] = base[t] + pred[t]
            for s in ("_lo", "_hi"):
                out[f"{t}{s}"] = base.get(f"{t}{s}", np.full_like(pred[t], np.nan)) + pred[t]
    return out
