"""Triton Python backend model: one file's bytes (DICOM) -> the network input, GEOMETRY and
IMAGE_INFO, through radedge's read -> intensity table -> preprocess op.

Written by ``radedge triton``; the work is ``radedge.export.triton.PreprocessStep``.
"""

import json
from pathlib import Path

import triton_python_backend_utils as pb_utils

from radedge import RadedgeError
from radedge.export.triton import DICOM, PreprocessStep


class TritonPythonModel:
    def initialize(self, args):
        # The bundle is verified here, so a damaged copy stops the model loading instead of answering.
        config = json.loads(args["model_config"])
        self.step = PreprocessStep.from_config(config, Path(args["model_repository"]) / args["model_version"])

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                outputs = self.step(pb_utils.get_input_tensor_by_name(request, DICOM).as_numpy())
            except (RadedgeError, ValueError) as exc:
                # A file radedge refuses is that request's answer; the model goes on serving.
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(exc))))
                continue
            tensors = [pb_utils.Tensor(name, array) for name, array in outputs.items()]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
