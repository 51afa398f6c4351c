"""Loads an rfpga QONNX export into hls4ml 1.3 (its ONNX front end, the QONNX clean-up and
channels-last passes it documents), builds the HLS model (no synthesis, no compilation), and
prints the layer kinds it made. Exits non-zero if hls4ml refuses the graph.

Usage: .venv-onnx/bin/python scripts/hls4ml_load.py MODEL.onnx OUTPUT_DIR
"""
import json
import sys

import hls4ml
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
from qonnx.transformation.gemm_to_matmul import GemmToMatMul
from qonnx.util.cleanup import cleanup_model


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    m = ModelWrapper(sys.argv[1])
    shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim[1:]]
    classes = m.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    m.set_tensor_shape("input", [1] + shape)
    m.set_tensor_shape("logits", [1, classes])
    m = cleanup_model(m)
    m = m.transform(ConvertToChannelsLastAndClean())
    m = m.transform(GemmToMatMul())
    m = cleanup_model(m)
    cfg = hls4ml.utils.config.config_from_onnx_model(m, granularity="name", backend="Vitis", default_precision="fixed<16,6>")
    h = hls4ml.converters.convert_from_onnx_model(m, output_dir=sys.argv[2], io_type="io_stream", backend="Vitis", hls_config=cfg)
    kinds = [l.class_name for l in h.get_layers()]
    print(json.dumps({"hls4ml": hls4ml.__version__, "layers": len(kinds), "kinds": sorted(set(kinds))}))


main()
