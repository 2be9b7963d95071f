"""Fast prediction path: the version's LightGBM text models compiled to native code with lleaves.

lleaves (Böhm 2021) turns a LightGBM ``model.txt`` into LLVM IR and machine code that gives the same
predictions as ``Booster.predict`` (including the objective's output transform, e.g. the sigmoid of
the EF model's cross-entropy objective). Compiling takes seconds to minutes, so the binary is cached
in the version folder (``compiled/<model>.so``, built in a temporary file and renamed into place) and
loaded from there afterwards. Compiled with float64 thresholds, as LightGBM itself compares.

lleaves 1.3.0 optimises the generated IR with LLVM's legacy ``PassManagerBuilder`` and calls
``llvmlite.binding.initialize()``, both gone from llvmlite 0.50; :class:`_Model` keeps lleaves' parser,
code generator and entry-point signature and does the O3 optimisation (new pass manager), MCJIT
compilation and object caching itself.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import lleaves
import llvmlite.binding as llvm
import llvmlite.ir
import numpy as np
from lleaves.compiler.ast import parse_to_ast
from lleaves.compiler.codegen import gen_forest
from lleaves.lleaves import get_entry_func_type

from models import registry
from models.emulator import MODEL_NAMES

_lock = threading.Lock()
_loaded: dict[tuple[str, str], _Model] = {}


def _target_machine():
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:
        features = ""
    # "large" code model: forests of many hundred trees overflow the small one
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=features, reloc="pic", codemodel="large"
    )


def _machine_code(module, cache: str | None):
    """MCJIT engine for ``module``; the object file is written to / read from ``cache``."""
    engine = llvm.create_mcjit_compiler(module, _target_machine())
    if cache and Path(cache).exists():
        blob = Path(cache).read_bytes()
        engine.set_object_cache(getbuffer_func=lambda _module: blob)
    elif cache:
        engine.set_object_cache(notify_func=lambda _module, buffer: Path(cache).write_bytes(buffer))
    engine.finalize_object()
    engine.run_static_constructors()
    return engine


class _Model(lleaves.Model):
    """lleaves model whose IR is optimised with llvmlite's new pass manager (O3, inlining on)."""

    def compile(self, cache=None):
        self.use_fp64 = True
        if cache is None or not Path(cache).exists():
            forest = parse_to_ast(self.model_file)
            forest.raw_score = False
            ir = llvmlite.ir.Module(name="forest")
            gen_forest(forest, ir, 34, "forest_root", True)
            ir.triple = llvm.get_process_triple()
            module = llvm.parse_assembly(str(ir))
            module.verify()
            pto = llvm.create_pipeline_tuning_options(speed_level=3)
            pto.inlining_threshold = 1
            builder = llvm.create_pass_builder(_target_machine(), pto)
            builder.getModulePassManager().run(module, builder)
        else:
            module = llvm.parse_assembly("")
        self._execution_engine = _machine_code(module, cache)
        addr = self._execution_engine.get_function_address("forest_root")
        self._c_entry_func = get_entry_func_type(True)(addr)
        self.is_compiled = True


def cache_path(version: str, model: str) -> Path:
    return registry.version_dir(version) / "compiled" / f"{model}.so"


def compiled_model(version: str, model: str) -> _Model:
    """The compiled booster ``model`` of ``version`` (compiled once, then loaded from the cache)."""
    if model not in MODEL_NAMES:
        raise ValueError(f"model must be one of {MODEL_NAMES}, not {model!r}")
    key = (str(registry.version_dir(version)), model)
    with _lock:
        if key in _loaded:
            return _loaded[key]
        text = registry.version_dir(version) / f"{model}.txt"
        so = cache_path(version, model)
        llm = _Model(model_file=str(text))
        if not so.is_file():
            so.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{model}-", suffix=".so", dir=so.parent)
            os.close(fd)
            os.unlink(tmp)  # lleaves writes the cache only where no file exists
            try:
                llm.compile(cache=tmp)
                os.replace(tmp, so)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            llm.compile(cache=str(so))
        _loaded[key] = llm
        return llm


def predict(version: str, model: str, x: np.ndarray, *, n_jobs: int = 2) -> np.ndarray:
    """Predictions of booster ``model`` of ``version`` for the float64 matrix ``x`` (rows × features)."""
    return compiled_model(version, model).predict(np.ascontiguousarray(x, dtype=np.float64), n_jobs=n_jobs)
