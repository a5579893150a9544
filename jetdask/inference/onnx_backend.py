"""ONNX taggers through ``onnxruntime``: the model object :func:`~.batching.predict` calls.

The layout's arrays feed the session's inputs in order (input ``k`` of the session gets the
``k``-th array of the layout); their count and fixed dimensions are checked when the model is
loaded. The first output is the score (``output=`` in the spec picks another by name).
Sessions use ``intra_op_num_threads`` = the torch thread count of :mod:`.batching`
(one thread setting for both backends) and the CUDA provider when ``device`` is CUDA and
onnxruntime has it.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFileError


class OnnxModel:
    """An ``onnxruntime.InferenceSession`` with the layout check; ``model.run(arrays)`` -> scores."""

    backend = "onnx"

    def __init__(self, path: str, device: str = "cpu", threads: int | None = None, output: str | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelFileError("ONNX taggers need onnxruntime: pip install 'jetdask[onnx]'", path) from None
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(path, sess_options=opts, providers=providers)
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own pybind exception classes
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise ModelFileError(f"onnxruntime cannot load it: {first}", path) from None
        self.path = path
        self.inputs = [(i.name, tuple(i.shape)) for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if output is not None and output not in outputs:
            raise ModelFileError(f"no output {output!r}; outputs: {outputs}", path)
        self.output = output or outputs[0]
        self.providers = self.session.get_providers()

    def check_layout(self, layout) -> None:
        """Refuse a layout whose inputs do not match the session's (count, fixed dimensions)."""
        specs = layout.specs
        if len(specs) != len(self.inputs):
            raise ModelFileError(f"the model has {len(self.inputs)} inputs {[n for n, _ in self.inputs]}, layout "
                                 f"{layout.name!r} gives {len(specs)} {[s.name for s in specs]}", self.path)
        for spec, (name, shape) in zip(specs, self.inputs):
            want = (None,) + tuple(spec.shape)
            ok = len(shape) == len(want) and all(
                not isinstance(d, int) or w is None or d == w for d, w in zip(shape, want))
            if not ok:
                raise ModelFileError(f"input {name!r} has shape {list(shape)}, layout {layout.name!r} gives "
                                     f"{spec.name} {['N', *spec.shape]}", self.path)

    def run(self, arrays: list) -> np.ndarray:
        feed = {name: np.ascontiguousarray(a, dtype=np.float32) for (name, _), a in zip(self.inputs, arrays)}
        return np.asarray(self.session.run([self.output], feed)[0], dtype=np.float32)

    def parameters(self):          # the torch-module interface the registry touches
        return iter(())


def export_deepjet_cmssw(model, path: str, *, opset: int = 17) -> str:
    """Write a jetdask :class:`~jetdask.models.DeepJet` as ONNX taking the ``deepjet-cmssw`` inputs.

    The file has the production interface: inputs ``input_1..input_4`` = glob, cpf, npf, sv in
    the CMSSW order (permuted to the model's order inside the graph), output ``ID_pred`` = the
    six class probabilities (softmax applied). Needs ``onnx`` (``pip install 'jetdask[onnx]'``).
    """
    import warnings

    import torch

    from .layouts import get_layout
    cmssw = {s.name: s for s in get_layout("deepjet-cmssw").specs}
    own = {s.name: s for s in get_layout(getattr(model, "layout", "deepjet")).specs}
    index = {n: torch.tensor([cmssw[n].features.index(f) for f in own[n].features]) for n in cmssw}

    class _CmsswOrder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            for n, idx in index.items():
                self.register_buffer(f"idx_{n}", idx)

        def forward(self, glob, cpf, npf, sv):
            y = self.model(glob[:, self.idx_glob], cpf[..., self.idx_cpf], npf[..., self.idx_npf],
                           sv[..., self.idx_sv])
            return torch.softmax(y, dim=1)

    wrapper = _CmsswOrder().eval()
    names = ["input_1", "input_2", "input_3", "input_4"]
    x = tuple(torch.zeros(2, *cmssw[n].shape) for n in ("glob", "cpf", "npf", "sv"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # exporter notes on LSTM batch sizes and the legacy exporter
        torch.onnx.export(wrapper, x, path, input_names=names, output_names=["ID_pred"], opset_version=opset,
                          dynamic_axes={n: {0: "N"} for n in names + ["ID_pred"]}, dynamo=False)
    return path
