"""ONNX export of the evaluated network (:class:`FeatureNetwork`) with a dynamic batch axis.

Needs the ``onnx`` install extra (``pip install -e ".[onnx]"``: onnx, onnxruntime, and
onnxscript, which PyTorch's default ``torch.export``-based ONNX exporter uses).
"""

import os

import torch

# Names of the graph's input and output, and of its batch axis.
INPUT_NAME, OUTPUT_NAME, BATCH_AXIS = "images", "features", "batch"
# Images in the example batch traced by the exporter (any value above 1 keeps the axis dynamic).
EXAMPLE_BATCH = 2
# fast-reid's input range: 0-255 RGB.
PIXEL_RANGE = 255.0
# Modules the export needs, with the install extra that provides them.
REQUIRED_MODULES = ("onnx", "onnxscript")
INSTALL_HINT = 'pip install -e ".[onnx]"'


def check_onnx_available():
    """Raise ImportError naming the missing module and the install extra."""
    for module in REQUIRED_MODULES:
        try:
            __import__(module)
        except ImportError as err:
            raise ImportError(f"ONNX export needs the '{module}' package: {INSTALL_HINT} ({err})") from err


def export_onnx(network, path, height, width):
    """Write ``network`` as an ONNX graph taking ``images`` ``[batch, 3, height, width]``
    (float32, 0-255 RGB, fast-reid's test-transform output) and returning ``features``
    ``[batch, C]``; the batch axis is dynamic, height and width are fixed.

    Args:
        network (nn.Module): e.g. a :class:`~fastreid_mmt.modeling.feature_network.FeatureNetwork`;
            exported in eval mode, on the CPU.
        path (str): the ``.onnx`` file to write (its folder is created); weights are stored
            inside it, not as external data.
        height (int): image height (``INPUT.SIZE_TEST[0]``).
        width (int): image width (``INPUT.SIZE_TEST[1]``).

    Returns:
        str: ``path``.
    """
    check_onnx_available()
    network = network.cpu().eval()
    example = torch.rand(EXAMPLE_BATCH, 3, int(height), int(width)) * PIXEL_RANGE
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    batch = torch.export.Dim(BATCH_AXIS)
    with torch.no_grad():
        program = torch.onnx.export(network, (example,), dynamo=True, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},), verbose=False)
    program.save(path, external_data=False)
    return path
