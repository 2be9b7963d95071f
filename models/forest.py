"""Fast, exact prediction of a LightGBM model: the forest packed into tables, evaluated without branches.

Walking a few hundred trees node by node is limited on a CPU by unpredictable branches, so the forest
is repacked for a branch-free evaluation in C (``forest_kernel.c``: model-independent, compiled once per
machine with ``gcc -O3 -march=native``, vectorised by the compiler):

* **Quantised features.** LightGBM splits on histogram bin bounds, so a feature has at most a few hundred
  distinct thresholds. With a feature's sorted thresholds ``t_0 < … < t_{m-1}``, the integer code
  ``c(x)`` = number of thresholds below ``x`` satisfies ``x <= t_k  ⇔  c(x) <= k`` exactly: every input
  reaches the leaf LightGBM reaches.
* **Missing values, LightGBM's rules** (``Tree::NumericalDecision`` / ``CategoricalDecision``).
  A numerical node of missing type ``NaN`` sends NaN to its default side; of missing type ``None`` it
  compares NaN as 0.0; a categorical node sends NaN and negative values right. Each node reads a
  *virtual feature*, the feature's code with NaN mapped so that the plain rule does the right thing:
  to the code of 0.0, to −1 (always left) or to INT32_MAX (always right); categorical codes are the
  integer category, NaN and categories ≥ 32 as 32. Missing type ``Zero`` (``zero_as_missing``) and
  splits on categories ≥ 32 are refused.
* **Leaf-mask tables** (trees of at most 32 leaves, LightGBM's default 31). Number each tree's leaves
  left to right; a node whose test fails (the row goes right) rules out the leaves of its left subtree,
  and the exit leaf is the leftmost leaf not ruled out (Lucchese et al. 2015, QuickScorer, SIGIR).
  Since the codes are small integers, the AND of the "ruled out" masks of all nodes of a virtual
  feature that a code sends right is tabulated per code and tree, so one row's exit leaves in all
  trees are the lowest set bits of the AND of one table row per virtual feature — a few hundred
  vector ANDs per row. Larger trees are walked level by level without branches instead (children side
  by side, ``node = left[node] + !go_left``, leaves pointing to themselves, the tree's depth in steps).

Leaf values are summed in float64 and the objective's output transform applied (sigmoid for
``cross_entropy``/``binary``), so results equal ``Booster.predict`` up to the rounding of the sum.
Without a C compiler, :func:`predict_numpy` evaluates the same walk in numpy (slower, same results).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catalog import settings

KERNEL_SOURCE = Path(__file__).with_name("forest_kernel.c")
MAX_VIRTUAL_FEATURES = 64  # MAX_VF in the kernel
NAN_CATEGORY = 32
_SIGMOID_OBJECTIVES = ("cross_entropy", "xentropy", "binary")
_IDENTITY_OBJECTIVES = ("regression", "regression_l2", "l2", "mean_squared_error", "mse")
# virtual feature kinds (vf_kind in the kernel)
NAN_AS_ZERO, NAN_LEFT, NAN_RIGHT, CATEGORICAL = 0, 1, 2, 3


@dataclass
class PackedForest:
    """A LightGBM model as flat arrays (the layout ``forest_kernel.c`` reads)."""

    n_features: int
    vf_src: np.ndarray  # int32 [n_vf]
    vf_kind: np.ndarray  # int32 [n_vf]
    thr_start: np.ndarray  # int32 [n_features + 1]
    thresholds: np.ndarray  # float64
    tree_start: np.ndarray  # int32 [n_trees + 1]
    tree_depth: np.ndarray  # int32 [n_trees]
    node_word: np.ndarray  # int32: left child | virtual feature << 16 | categorical << 24
    node_thr: np.ndarray  # int32: code threshold, or category bit mask
    node_value: np.ndarray  # float64 leaf values
    sigmoid: bool
    sigmoid_scale: float
    # leaf-mask tables (None when a tree has more than 32 leaves)
    masks: np.ndarray | None = None  # uint32 [rows, n_trees_pad]
    mask_start: np.ndarray | None = None  # int64 [n_vf]
    mask_rows: np.ndarray | None = None  # int32 [n_vf]
    leaf_value: np.ndarray | None = None  # float64 [n_trees_pad * 32]

    @property
    def n_trees(self) -> int:
        return len(self.tree_depth)


def _objective(dump: dict) -> tuple[bool, float]:
    words = str(dump.get("objective", "regression")).split()
    name = words[0] if words else "regression"
    if name in _SIGMOID_OBJECTIVES:
        scale = [w.split(":", 1)[1] for w in words if w.startswith("sigmoid:")]
        return True, float(scale[0]) if scale and name == "binary" else 1.0
    if name in _IDENTITY_OBJECTIVES:
        return False, 1.0
    raise ValueError(f"LightGBM objective {name!r} is not supported by the fast prediction path")


def _text_thresholds(model_text: str) -> list[list[float]]:
    """Each tree's ``threshold=`` line of the model text (full precision, unlike the JSON dump)."""
    out = []
    for block in model_text.split("\nTree=")[1:]:
        m = re.search(r"^threshold=(.*)$", block, flags=re.M)
        out.append([float(v) for v in m.group(1).split()] if m else [])
    return out


def pack(booster) -> PackedForest:
    """Pack a ``lightgbm.Booster`` (all its trees) for the branch-free walk."""
    dump = booster.dump_model()
    sigmoid, scale = _objective(dump)
    n_features = int(dump["max_feature_idx"]) + 1
    if n_features > MAX_VIRTUAL_FEATURES:
        raise ValueError(f"more than {MAX_VIRTUAL_FEATURES} features: not supported by the fast path")
    text_thr = _text_thresholds(booster.model_to_string())
    trees = [t["tree_structure"] for t in dump["tree_info"]]

    def inner(tree):
        stack = [tree]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                yield node
                stack += [node["left_child"], node["right_child"]]

    # exact numeric thresholds: the text model's, indexed by split_index
    per_feature: list[set[float]] = [set() for _ in range(n_features)]
    categorical = np.zeros(n_features, dtype=bool)
    for tree, thr in zip(trees, text_thr, strict=True):
        for node in inner(tree):
            f = node["split_feature"]
            if node["decision_type"] == "==":
                categorical[f] = True
                continue
            if node.get("missing_type", "None") == "Zero":
                raise ValueError("models trained with zero_as_missing are not supported by the fast path")
            node["_threshold"] = thr[node["split_index"]]
            per_feature[f].add(node["_threshold"])
    thresholds = [np.array(sorted(t), dtype=np.float64) for t in per_feature]
    thr_start = np.zeros(n_features + 1, dtype=np.int32)
    thr_start[1:] = np.cumsum([len(t) for t in thresholds])

    vf_index: dict[tuple[int, int], int] = {}

    def virtual(f: int, kind: int) -> int:
        if (f, kind) not in vf_index:
            if len(vf_index) >= MAX_VIRTUAL_FEATURES:
                raise ValueError(f"more than {MAX_VIRTUAL_FEATURES} virtual features")
            vf_index[(f, kind)] = len(vf_index)
        return vf_index[(f, kind)]

    words, thrs, values, tree_start, depths = [], [], [], [0], []
    mask_nodes: list[tuple[int, int, int, object]] = []  # (tree, virtual feature, leaf mask, test)
    leaf_lists: list[list[float]] = []
    for t_index, tree in enumerate(trees):
        leaves, left_masks = _in_order_leaves(tree)
        leaf_lists.append(leaves)
        # breadth-first with siblings side by side: node i's children are left[i], left[i] + 1
        order, depth_of = [tree], {id(tree): 0}
        slot = {id(tree): 0}
        i = 0
        while i < len(order):
            node = order[i]
            if "split_feature" in node:
                for child in (node["left_child"], node["right_child"]):
                    slot[id(child)] = len(order)
                    depth_of[id(child)] = depth_of[id(node)] + 1
                    order.append(child)
            i += 1
        if len(order) > 0xFFFF:
            raise ValueError("tree too large for the fast path")
        for k, node in enumerate(order):
            if "split_feature" not in node:
                words.append(k)  # leaf: points to itself, any code <= INT32_MAX goes "left"
                thrs.append(np.iinfo(np.int32).max)
                values.append(float(node["leaf_value"]))
                continue
            f = node["split_feature"]
            left = slot[id(node["left_child"])]
            if node["decision_type"] == "==":
                cats = [int(c) for c in str(node["threshold"]).split("||")]
                if max(cats) >= NAN_CATEGORY:
                    raise ValueError(
                        f"category {max(cats)} >= {NAN_CATEGORY}: not supported by the fast path"
                    )
                mask = 0
                for c in cats:
                    mask |= 1 << c
                vf = virtual(f, CATEGORICAL)
                words.append(left | vf << 16 | 1 << 24)
                thrs.append(int(np.array(mask, dtype=np.uint32).view(np.int32)))
                mask_nodes.append((t_index, vf, left_masks[id(node)], frozenset(cats)))
            else:
                if node.get("missing_type", "None") == "NaN":
                    kind = NAN_LEFT if node["default_left"] else NAN_RIGHT
                else:
                    kind = NAN_AS_ZERO
                k_thr = int(np.searchsorted(thresholds[f], node["_threshold"], side="left"))
                vf = virtual(f, kind)
                words.append(left | vf << 16)
                thrs.append(k_thr)
                mask_nodes.append((t_index, vf, left_masks[id(node)], k_thr))
            values.append(0.0)
        tree_start.append(tree_start[-1] + len(order))
        depths.append(max(depth_of.values()))
    src = np.array([f for f, _ in vf_index], dtype=np.int32)
    kind = np.array([k for _, k in vf_index], dtype=np.int32)
    tables = {}
    if max(len(v) for v in leaf_lists) <= 32:
        tables = _mask_tables(leaf_lists, mask_nodes, src, kind, [len(t) for t in thresholds])
    return PackedForest(
        n_features=n_features,
        vf_src=src if len(src) else np.zeros(1, np.int32),
        vf_kind=kind if len(kind) else np.zeros(1, np.int32),
        thr_start=thr_start,
        thresholds=np.concatenate(thresholds) if thr_start[-1] else np.zeros(1),
        tree_start=np.array(tree_start, dtype=np.int32),
        tree_depth=np.array(depths, dtype=np.int32),
        node_word=np.array(words, dtype=np.int32),
        node_thr=np.array(thrs, dtype=np.int32),
        node_value=np.array(values, dtype=np.float64),
        sigmoid=sigmoid,
        sigmoid_scale=scale,
        **tables,
    )


def _in_order_leaves(tree: dict) -> tuple[list[float], dict[int, int]]:
    """Leaf values left to right, and per inner node the bit mask of the leaves of its left subtree."""
    leaves: list[float] = []
    left_masks: dict[int, int] = {}

    def visit(node) -> tuple[int, int]:  # (first leaf, leaf count) of the subtree
        if "split_feature" not in node:
            leaves.append(float(node["leaf_value"]))
            return len(leaves) - 1, 1
        first, n_left = visit(node["left_child"])
        _, n_right = visit(node["right_child"])
        left_masks[id(node)] = ((1 << n_left) - 1) << first
        return first, n_left + n_right

    visit(tree)
    return leaves, left_masks


def _mask_tables(leaf_lists, mask_nodes, vf_src, vf_kind, n_thresholds) -> dict:
    """Per virtual feature and code, per tree: AND of ~(left-subtree mask) of the nodes sent right.

    Table rows of a numerical virtual feature with m thresholds: index 0 is code −1 (NaN sent left),
    index c + 1 is code c (0…m), index m + 2 is INT32_MAX (NaN sent right); a node with threshold
    code K sends codes > K right. Categorical: index c is category c (0…31), 32 is NaN/negative/other;
    a node sends right every category outside its set.
    """
    n_trees = len(leaf_lists)
    n_pad = -(-n_trees // 16) * 16
    rows = np.array(
        [33 if k == CATEGORICAL else n_thresholds[f] + 3 for f, k in zip(vf_src, vf_kind, strict=True)],
        dtype=np.int32,
    )
    start = np.zeros(len(rows), dtype=np.int64)
    start[1:] = np.cumsum(rows)[:-1]
    masks = np.full((int(rows.sum()), n_pad), 0xFFFFFFFF, dtype=np.uint32)
    for tree, vf, left_mask, test in mask_nodes:
        keep = np.uint32(~left_mask & 0xFFFFFFFF)
        first = start[vf]
        if vf_kind[vf] == CATEGORICAL:
            right = [c for c in range(NAN_CATEGORY + 1) if c not in test]
            masks[first + np.array(right), tree] &= keep
        else:  # codes K + 1 … m and INT32_MAX: table rows K + 2 … m + 2
            masks[first + test + 2 : first + rows[vf], tree] &= keep
    leaf_value = np.zeros((n_pad, 32))
    for t, leaves in enumerate(leaf_lists):
        leaf_value[t, : len(leaves)] = leaves
    return {"masks": masks, "mask_start": start, "mask_rows": rows, "leaf_value": leaf_value.ravel()}


# --- the compiled kernel -------------------------------------------------------------------------


class _Forest(ctypes.Structure):
    _fields_ = [
        ("n_features", ctypes.c_int32),
        ("n_vf", ctypes.c_int32),
        ("vf_src", ctypes.c_void_p),
        ("vf_kind", ctypes.c_void_p),
        ("thr_start", ctypes.c_void_p),
        ("thresholds", ctypes.c_void_p),
        ("n_trees", ctypes.c_int32),
        ("tree_start", ctypes.c_void_p),
        ("tree_depth", ctypes.c_void_p),
        ("node_word", ctypes.c_void_p),
        ("node_thr", ctypes.c_void_p),
        ("node_value", ctypes.c_void_p),
        ("sigmoid", ctypes.c_int32),
        ("sigmoid_scale", ctypes.c_double),
        ("masks", ctypes.c_void_p),
        ("mask_start", ctypes.c_void_p),
        ("mask_rows", ctypes.c_void_p),
        ("leaf_value", ctypes.c_void_p),
        ("n_trees_pad", ctypes.c_int32),
    ]


_kernel_lock = threading.Lock()
_kernel: ctypes.CDLL | None = None


def cache_dir() -> Path:
    """Where compiled kernels are kept (:attr:`catalog.settings.Settings.cache_dir`)."""
    return settings.current().cache_dir


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return os.uname().machine


def kernel() -> ctypes.CDLL | None:
    """The compiled kernel (built on first use, then loaded from the cache); None without gcc."""
    global _kernel
    with _kernel_lock:
        if _kernel is not None:
            return _kernel
        cc = shutil.which(settings.current().text("CC", "gcc"))
        if cc is None:
            return None
        source = KERNEL_SOURCE.read_bytes()
        flags = ["-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno"]
        key = hashlib.sha256(source + " ".join([cc, *flags, _cpu_flags()]).encode()).hexdigest()[:16]
        so = cache_dir() / f"forest_kernel-{key}.so"
        if not so.is_file():
            so.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=so.parent)
            os.close(fd)
            try:
                subprocess.run(
                    [cc, *flags, "-o", tmp, str(KERNEL_SOURCE), "-lm"], check=True, capture_output=True
                )
                os.replace(tmp, so)
            except subprocess.CalledProcessError as e:
                raise RuntimeError(
                    f"compiling {KERNEL_SOURCE.name} failed: {e.stderr.decode()[-500:]}"
                ) from e
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        lib = ctypes.CDLL(str(so))
        lib.forest_predict.argtypes = [
            ctypes.POINTER(_Forest),
            ctypes.c_void_p,
            ctypes.c_long,
            ctypes.c_void_p,
        ]
        lib.forest_predict.restype = ctypes.c_int
        _kernel = lib
        return lib


class Forest:
    """A packed model ready to predict (keeps the arrays the C struct points to alive)."""

    def __init__(self, packed: PackedForest):
        self.packed = packed
        p = packed
        self._struct = _Forest(
            p.n_features,
            len(p.vf_src),
            p.vf_src.ctypes.data,
            p.vf_kind.ctypes.data,
            p.thr_start.ctypes.data,
            p.thresholds.ctypes.data,
            p.n_trees,
            p.tree_start.ctypes.data,
            p.tree_depth.ctypes.data,
            p.node_word.ctypes.data,
            p.node_thr.ctypes.data,
            p.node_value.ctypes.data,
            int(p.sigmoid),
            p.sigmoid_scale,
            *(
                (None, None, None, None, 0)
                if p.masks is None
                else (
                    p.masks.ctypes.data,
                    p.mask_start.ctypes.data,
                    p.mask_rows.ctypes.data,
                    p.leaf_value.ctypes.data,
                    p.masks.shape[1],
                )
            ),
        )

    def __reduce__(self):
        # the ctypes struct points into this process's arrays: rebuild it where the forest lands
        return (Forest, (self.packed,))

    @classmethod
    def from_booster(cls, booster) -> Forest:
        return cls(pack(booster))

    def predict(self, x: np.ndarray, *, n_jobs: int = 2) -> np.ndarray:
        """Predictions for the matrix ``x`` (rows × features), equal to ``Booster.predict``."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.packed.n_features:
            raise ValueError(f"expected a (rows, {self.packed.n_features}) matrix, got {x.shape}")
        lib = kernel()
        if lib is None:
            return predict_numpy(self.packed, x)
        out = np.empty(len(x))
        n_jobs = max(1, min(n_jobs, len(x) // 4096 or 1))
        bounds = np.linspace(0, len(x), n_jobs + 1).astype(int)
        ref = ctypes.byref(self._struct)

        def run(k: int) -> None:
            a, b = bounds[k], bounds[k + 1]
            if lib.forest_predict(ref, x[a:].ctypes.data, b - a, out[a:].ctypes.data) != 0:
                raise MemoryError("forest_predict could not allocate its work space")

        if n_jobs == 1:
            run(0)
        else:
            with ThreadPoolExecutor(n_jobs) as pool:
                list(pool.map(run, range(n_jobs)))
        return out


def quantise_numpy(p: PackedForest, x: np.ndarray) -> np.ndarray:
    """The code matrix (rows × virtual features) the kernel computes, in numpy."""
    codes = np.empty((len(x), len(p.vf_src)), dtype=np.int64)
    for k, (j, kind) in enumerate(zip(p.vf_src, p.vf_kind, strict=True)):
        v = x[:, j]
        t = p.thresholds[p.thr_start[j] : p.thr_start[j + 1]]
        nan = np.isnan(v)
        if kind == CATEGORICAL:
            ok = ~nan & (v > -1) & (v < NAN_CATEGORY)
            codes[:, k] = np.where(ok, np.trunc(np.where(ok, v, 0)), NAN_CATEGORY)
            continue
        num = np.searchsorted(t, v, side="left")  # NaN sorts last; replaced below
        nan_code = {
            NAN_AS_ZERO: np.searchsorted(t, 0.0, side="left"),
            NAN_LEFT: -1,
            NAN_RIGHT: np.iinfo(np.int32).max,
        }[int(kind)]
        codes[:, k] = np.where(nan, nan_code, num)
    return codes


def predict_numpy(p: PackedForest, x: np.ndarray) -> np.ndarray:
    """The kernel's walk in numpy: one level of one tree for all rows at a time."""
    codes = quantise_numpy(p, x)
    rows = np.arange(len(x))
    s = np.zeros(len(x))
    for t in range(p.n_trees):
        base = p.tree_start[t]
        node = np.zeros(len(x), dtype=np.int64)
        for _ in range(p.tree_depth[t]):
            w = p.node_word[base + node].astype(np.int64)
            thr = p.node_thr[base + node].astype(np.int64)
            c = codes[rows, (w >> 16) & 0xFF]
            cat = ((thr & 0xFFFFFFFF) >> np.clip(c, 0, 31)) & 1 & (c < NAN_CATEGORY)
            left = np.where((w >> 24) & 1 == 1, cat == 1, c <= thr)
            node = (w & 0xFFFF) + ~left
        s += p.node_value[base + node]
    return 1.0 / (1.0 + np.exp(-p.sigmoid_scale * s)) if p.sigmoid else s
