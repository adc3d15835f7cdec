"""Triton Python backend model: the network's raw outputs + GEOMETRY + IMAGE_INFO -> radedge's
head decoders -> flag rules -> PREDICTION, one JSON document.

Written by ``radedge triton``; the work is ``radedge.export.triton.PostprocessStep``.
"""

import json
from pathlib import Path

import triton_python_backend_utils as pb_utils

from radedge import RadedgeError
from radedge.export.triton import PostprocessStep


class TritonPythonModel:
    def initialize(self, args):
        # The bundle is verified here, so a damaged copy stops the model loading instead of answering.
        config = json.loads(args["model_config"])
        self.step = PostprocessStep.from_config(config, Path(args["model_repository"]) / args["model_version"])

    def execute(self, requests):
        responses = []
        for request in requests:
            inputs = {
                name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.step.input_names
            }
            try:
                outputs = self.step(inputs)
            except (RadedgeError, ValueError) as exc:
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(exc))))
                continue
            tensors = [pb_utils.Tensor(name, array) for name, array in outputs.items()]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
