"""``radedge triton``: the model repository it writes, checked against Triton's own config schema,
and its Python models run on real DICOM files against ``radedge.load_model(...).predict``.

What runs here: every config.pbtxt parsed as Triton's ``inference.ModelConfig`` protobuf (the
classes Triton publishes in ``tritonclient.grpc.model_config_pb2``); the ensemble's wiring
checked with the rules Triton applies when it loads an ensemble (every input of every step
mapped once, names and outputs that exist, types and shapes that agree); the preprocess and
postprocess ``model.py`` files loaded from the written repository and driven through
``initialize`` / ``execute`` with a stand-in for ``triton_python_backend_utils``
(tests/export/triton_python_backend_stub, data carrying only), with a real ONNX Runtime
session on the repository's ``model.onnx`` between them as the network step.

What does not run here: tritonserver itself; its model loading, ensemble scheduler and dynamic
batcher; the Python backend's stub process and shared-memory tensors; the onnxruntime and
TensorRT backends inside the server (no TensorRT plan is built); any GPU execution.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import radedge
from radedge.bundle import load_bundle, pack_bundle, write_bundle
from radedge.errors import BundleError, BundleIntegrityError, NotDicomError, OutOfScopeError
from radedge.export.loaders import ExportError
from radedge.export.triton import (
    DICOM,
    GEOMETRY,
    GEOMETRY_FIELDS,
    IMAGE_INFO,
    PREDICTION,
    pack_geometry,
    unpack_geometry,
    write_triton_repository,
)
from radedge.ops.preprocess import PreprocessSpec, resize_geometry

from ..models import tiny

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "sdk" / "radedge" / "models"
EXAMPLES = ROOT / "examples"
STUB = Path(__file__).resolve().parent / "triton_python_backend_stub"

# Every bundled model that serves on the whole image, with the example files in its scope.
CASES = {
    "bone-tumor": sorted((EXAMPLES / "radiographs").glob("*.dcm")),
    "vcf": sorted((EXAMPLES / "spine").glob("lumbar_spine_*.dcm")),
    "spine-lesions": [EXAMPLES / "spine" / "lumbar_spine_lesions.dcm"],
}
ONNX_TYPES = {"FLOAT": "TYPE_FP32", "FLOAT16": "TYPE_FP16"}


@pytest.fixture(scope="module")
def model_config():
    """Triton's model configuration schema: ``ModelConfig``, ``DataType``... (model_config.proto)."""
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        pytest.skip(
            f"Triton's ModelConfig protobuf classes do not import ({exc}); install the test extra "
            "(pip install tritonclient grpcio)"
        )
    return model_config_pb2


@pytest.fixture(scope="module")
def repositories(tmp_path_factory):
    root = tmp_path_factory.mktemp("triton")
    return {model: write_triton_repository(MODELS / model, root / model) for model in CASES}


@pytest.fixture(scope="module")
def pb_utils():
    sys.path.insert(0, str(STUB))
    try:
        import triton_python_backend_utils

        yield triton_python_backend_utils
    finally:
        sys.path.remove(str(STUB))
        sys.modules.pop("triton_python_backend_utils", None)


def parse(model_config, path: Path):
    from google.protobuf import text_format

    return text_format.Parse(path.read_text(), model_config.ModelConfig())


def configs(model_config, repository: Path) -> dict:
    """Every model of the repository by name, its config.pbtxt parsed; each folder is named as its model."""
    parsed = {}
    for path in sorted(repository.glob("*/config.pbtxt")):
        config = parse(model_config, path)
        assert config.name == path.parent.name
        parsed[config.name] = config
    return parsed


def onnx_io(path: Path):
    graph = onnx.load(str(path)).graph

    def described(value):
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        return value.name, ONNX_TYPES[onnx.TensorProto.DataType.Name(tensor.elem_type)], dims

    return [described(v) for v in graph.input], [described(v) for v in graph.output]


def declared(tensors, data_type_name) -> list:
    return [(t.name, data_type_name(t.data_type), list(t.dims)) for t in tensors]


def check_ensemble(ensemble, models: dict) -> None:
    """The checks Triton makes when it loads an ensemble (core: ensemble_utils.cc), stricter
    in one point: a step may only read tensors that an earlier step or the request made."""
    assert ensemble.platform == "ensemble"

    def full_dims(dims, batching):
        return ([-1] if batching else []) + list(dims)

    def agree(a, b):
        return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b))

    def consistent(tensor, data_type, dims, batching, where):
        known_type, known_dims, known_batching = tensor
        assert known_type == data_type, where
        assert agree(known_dims, dims) or agree(full_dims(known_dims, known_batching), full_dims(dims, batching)), where

    batching = ensemble.max_batch_size > 0
    tensors = {i.name: (i.data_type, list(i.dims), batching) for i in ensemble.input}
    for step in ensemble.ensemble_scheduling.step:
        assert step.model_name in models, f"the ensemble names {step.model_name}, which the repository lacks"
        model = models[step.model_name]
        model_batching = model.max_batch_size > 0
        assert model.max_batch_size == 0 or model.max_batch_size >= ensemble.max_batch_size
        inputs = {i.name: i for i in model.input}
        assert set(step.input_map) == set(inputs), f"{step.model_name}: every input mapped, no other"
        for key, value in step.input_map.items():
            assert value in tensors, f"{step.model_name} reads {value}, which nothing before it made"
            where = f"{step.model_name}.{key}"
            consistent(tensors[value], inputs[key].data_type, inputs[key].dims, model_batching, where)
        outputs = {o.name: o for o in model.output}
        assert set(step.output_map) <= set(outputs)
        assert len(set(step.output_map.values())) == len(step.output_map)
        for key, value in step.output_map.items():
            made = (outputs[key].data_type, list(outputs[key].dims), model_batching)
            if value in tensors:
                consistent(tensors[value], *made, f"{step.model_name}.{key}")
            tensors[value] = made
    for output in ensemble.output:
        assert output.name in tensors, f"no step makes the ensemble's output {output.name}"
        consistent(tensors[output.name], output.data_type, output.dims, batching, output.name)


@pytest.mark.parametrize("model", list(CASES))
def test_configs_parse_as_triton_model_configs_and_match_the_onnx_file(model_config, repositories, model):
    repository = repositories[model]
    bundle = load_bundle(MODELS / model)
    name = bundle.manifest.model_id
    models = configs(model_config, repository)
    assert set(models) == {name, f"{name}_preprocess", f"{name}_model", f"{name}_postprocess"}
    data_type = model_config.DataType.Name
    onnx_file = repository / f"{name}_model" / "1" / "model.onnx"
    assert onnx_file.read_bytes() == bundle.read("model.onnx")
    onnx_inputs, onnx_outputs = onnx_io(onnx_file)
    assert all(dims[0] == -1 for _, _, dims in onnx_inputs + onnx_outputs), "the bundles leave the batch axis free"

    network = models[f"{name}_model"]
    assert network.platform == "onnxruntime_onnx" and network.max_batch_size == 8
    assert declared(network.input, data_type) == [(n, t, dims[1:]) for n, t, dims in onnx_inputs]
    assert declared(network.output, data_type) == [(n, t, dims[1:]) for n, t, dims in onnx_outputs]
    assert network.HasField("dynamic_batching")
    # One file per request into and out of the Python models: batch 1 there.
    onnx_inputs = [(n, t, [1, *dims[1:]]) for n, t, dims in onnx_inputs]
    onnx_outputs = [(n, t, [1, *dims[1:]]) for n, t, dims in onnx_outputs]

    pre = models[f"{name}_preprocess"]
    assert pre.backend == "python" and pre.max_batch_size == 0
    assert declared(pre.input, data_type) == [(DICOM, "TYPE_UINT8", [-1])]
    assert declared(pre.output, data_type) == [
        *onnx_inputs, (GEOMETRY, "TYPE_FP32", [len(GEOMETRY_FIELDS)]), (IMAGE_INFO, "TYPE_STRING", [1])
    ]
    post = models[f"{name}_postprocess"]
    assert post.backend == "python" and post.max_batch_size == 0
    assert declared(post.input, data_type) == [
        *onnx_outputs, (GEOMETRY, "TYPE_FP32", [len(GEOMETRY_FIELDS)]), (IMAGE_INFO, "TYPE_STRING", [1])
    ]
    assert declared(post.output, data_type) == [(PREDICTION, "TYPE_STRING", [1])]
    for python_model in (pre, post):
        assert python_model.parameters["bundle_sha256"].string_value == bundle.digest
        version = repository / python_model.name / "1"
        assert (version / "model.py").is_file()
        assert load_bundle(version / python_model.parameters["bundle"].string_value).digest == bundle.digest
    assert post.parameters["precision"].string_value == "fp32"

    ensemble = models[name]
    assert declared(ensemble.input, data_type) == [(DICOM, "TYPE_UINT8", [-1])]
    assert declared(ensemble.output, data_type) == [(PREDICTION, "TYPE_STRING", [1])]
    assert [s.model_name for s in ensemble.ensemble_scheduling.step] == [
        f"{name}_preprocess", f"{name}_model", f"{name}_postprocess"
    ]
    check_ensemble(ensemble, models)
    assert (repository / name / "1").is_dir(), "Triton loads an ensemble only with a version folder"
    assert not (repository / f"{name}_model" / "2").exists(), "an empty version 2 would fail to load"


def test_the_ensemble_check_catches_a_miswired_step(model_config, repositories):
    """check_ensemble is what the previous test leans on; it must be able to fail."""
    models = configs(model_config, repositories["bone-tumor"])
    ensemble = models["bone-tumor"]
    del ensemble.ensemble_scheduling.step[2].input_map["GEOMETRY"]
    with pytest.raises(AssertionError, match="every input mapped"):
        check_ensemble(ensemble, models)
    models = configs(model_config, repositories["bone-tumor"])
    models["bone-tumor_postprocess"].input[0].dims[2] = 64
    with pytest.raises(AssertionError, match="lesion_logits"):
        check_ensemble(models["bone-tumor"], models)


def dynamic_batch_bundle(directory: Path) -> Path:
    """tiny_bone_tumor with its batch axis left free, as an exporter with a dynamic batch writes it."""
    source = load_bundle(tiny("tiny_bone_tumor"))
    model = onnx.load_model_from_string(source.read("model.onnx"))
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    document = {k: v for k, v in source.manifest.raw.items() if k not in ("files", "manifest_sha256", "schema_version")}
    return write_bundle(directory, document, {"model.onnx": model.SerializeToString()})


def test_a_free_batch_axis_gets_triton_batching_on_the_network_only(model_config, tmp_path):
    bundle = dynamic_batch_bundle(tmp_path / "bundle")
    repository = write_triton_repository(bundle, tmp_path / "repository", max_batch_size=4)
    models = configs(model_config, repository)
    network = models["tiny-bone-tumor_model"]
    assert network.max_batch_size == 4
    assert [list(t.dims) for t in network.input] == [[1, 64, 64]]
    assert [list(t.dims) for t in network.output] == [[1, 64, 64], [3]]
    assert network.HasField("dynamic_batching")
    # The Python models and the ensemble keep one file per request; Triton's batcher joins
    # the network runs of concurrent requests.
    assert {m.max_batch_size for n, m in models.items() if n != "tiny-bone-tumor_model"} == {0}
    assert [list(t.dims) for t in models["tiny-bone-tumor_postprocess"].input[:2]] == [[1, 1, 64, 64], [1, 3]]
    check_ensemble(models["tiny-bone-tumor"], models)
    assert "--maxShapes=image:4,1,64,64" in (repository / "README.txt").read_text()

    default = configs(model_config, write_triton_repository(bundle, tmp_path / "default"))
    assert default["tiny-bone-tumor_model"].max_batch_size == 8


def test_a_fixed_batch_of_one_cannot_be_batched(tmp_path):
    with pytest.raises(ExportError, match="fixes its batch axis at 1"):
        write_triton_repository(tiny("tiny_bone_tumor"), tmp_path / "repository", max_batch_size=4)
    assert not (tmp_path / "repository").exists()


def test_geometry_survives_the_float32_tensor():
    spec = PreprocessSpec(height=256, width=256, resize="letterbox")
    for rows, columns, crop in [(2400, 2000, None), (3001, 997, (13, 101, 640, 1999)), (1, 65535, None)]:
        geometry = resize_geometry(rows, columns, spec, crop)
        vector = pack_geometry(geometry)
        assert vector.dtype == np.float32 and vector.shape == (len(GEOMETRY_FIELDS),)
        assert unpack_geometry(vector) == geometry  # scales included, to the last bit


def load_python_model(pb_utils, model_config, repository: Path, name: str):
    """``<name>/1/model.py`` of the written repository, initialised as the Python backend does."""
    from google.protobuf import json_format

    config = parse(model_config, repository / name / "config.pbtxt")
    path = repository / name / "1" / "model.py"
    spec = importlib.util.spec_from_file_location(f"{name.replace('-', '_')}_model_py", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    model.initialize({
        "model_config": json_format.MessageToJson(config, preserving_proto_field_name=True),
        "model_instance_kind": "CPU",
        "model_instance_device_id": "0",
        "model_repository": str(repository / name),
        "model_version": "1",
        "model_name": name,
    })
    return model


class Chain:
    """The ensemble's three steps by hand: preprocess model.py -> an ONNX Runtime session on the
    repository's model.onnx (what Triton's onnxruntime backend runs) -> postprocess model.py."""

    def __init__(self, pb_utils, model_config, repository: Path, name: str):
        self.pb_utils = pb_utils
        self.preprocess = load_python_model(pb_utils, model_config, repository, f"{name}_preprocess")
        self.postprocess = load_python_model(pb_utils, model_config, repository, f"{name}_postprocess")
        self.network = ort.InferenceSession(str(repository / f"{name}_model" / "1" / "model.onnx"),
                                            providers=["CPUExecutionProvider"])

    def __call__(self, files: list[bytes]):
        pb = self.pb_utils
        requests = [pb.InferenceRequest([pb.Tensor(DICOM, np.frombuffer(data, np.uint8))]) for data in files]
        prepared = self.preprocess.execute(requests)
        answers = []
        for response in prepared:
            if response.has_error():
                answers.append(response)
                continue
            tensors = {t.name(): t for t in response.output_tensors()}
            network_input = self.network.get_inputs()[0].name
            raw = self.network.run(None, {network_input: tensors[network_input].as_numpy()})
            inputs = [pb.Tensor(o.name, value) for o, value in zip(self.network.get_outputs(), raw)]
            request = pb.InferenceRequest([*inputs, tensors[GEOMETRY], tensors[IMAGE_INFO]])
            (answer,) = self.postprocess.execute([request])
            answers.append(answer)
        return answers


def assert_same(got, expected, where="prediction"):
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), where
        for key in expected:
            assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for index, (a, b) in enumerate(zip(got, expected)):
            assert_same(a, b, f"{where}[{index}]")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-6), where
    else:
        assert got == expected, where


@pytest.mark.parametrize("model", list(CASES))
def test_python_models_predict_what_radedge_predicts(pb_utils, model_config, repositories, model):
    chain = Chain(pb_utils, model_config, repositories[model], model)
    local = radedge.load_model(MODELS / model, warm_up=False)
    files = CASES[model]
    answers = chain([path.read_bytes() for path in files])
    flagged = 0
    for path, answer in zip(files, answers):
        assert not answer.has_error(), answer.error().message()
        (prediction,) = pb_utils.get_output_tensor_by_name(answer, PREDICTION).as_numpy()
        served = json.loads(prediction)
        expected = local.predict(path).to_dict()
        for key in ("flags", "classifications", "segmentations", "detections", "heatmaps", "cams", "verdict",
                    "display_head", "image", "preprocess_geometry", "notes"):
            assert_same(served[key], expected[key], f"{path.name}: {key}")
        for key in ("model_id", "model_version", "bundle_sha256", "radedge_version"):
            assert served["provenance"][key] == expected["provenance"][key]
        assert served["provenance"]["precision"] == "fp32"
        assert set(served["timings_ms"]) == {"read", "lut", "preprocess", "decode", "flags"}
        flagged += bool(served["flags"])
    assert flagged, f"no example raised a flag on {model}: the comparison would not cover flags"


def test_a_file_radedge_refuses_is_an_error_response_and_the_model_serves_on(pb_utils, model_config, repositories):
    chain = Chain(pb_utils, model_config, repositories["bone-tumor"], "bone-tumor")
    not_dicom = b"%PDF-1.7 a referral letter, not an image" * 8
    out_of_scope = (EXAMPLES / "spine" / "lumbar_spine_fracture.dcm").read_bytes()
    good = (EXAMPLES / "radiographs" / "femur_malignant.dcm").read_bytes()
    refused, outside, served = chain([not_dicom, out_of_scope, good])
    local = radedge.load_model(MODELS / "bone-tumor", warm_up=False)
    with pytest.raises(NotDicomError) as not_dicom_error:
        local.predict(not_dicom)
    with pytest.raises(OutOfScopeError) as out_of_scope_error:
        local.predict(out_of_scope)
    assert refused.has_error() and refused.output_tensors() == []
    assert refused.error().message() == str(not_dicom_error.value)
    assert outside.has_error() and outside.error().message() == str(out_of_scope_error.value)
    assert not served.has_error()


def test_postprocess_answers_tensors_it_cannot_use_with_an_error(pb_utils, model_config, repositories):
    repository = repositories["bone-tumor"]
    post = load_python_model(pb_utils, model_config, repository, "bone-tumor_postprocess")
    pb = pb_utils
    raw = [pb.Tensor("lesion_logits", np.full((1, 1, 128, 128), np.nan, np.float32)),
           pb.Tensor("tumor_logits", np.zeros((1, 3), np.float32))]
    geometry = pb.Tensor(GEOMETRY, pack_geometry(resize_geometry(512, 512, PreprocessSpec(256, 256))))
    info = pb.Tensor(IMAGE_INFO, np.array([b"{}"], dtype=np.object_))
    (bad_info,) = post.execute([pb.InferenceRequest([*raw, geometry, info])])
    assert bad_info.has_error() and IMAGE_INFO in bad_info.error().message()
    wrong = pb.Tensor(GEOMETRY, np.zeros(3, np.float32))
    (bad_geometry,) = post.execute([pb.InferenceRequest([*raw, wrong, info])])
    assert bad_geometry.has_error() and GEOMETRY in bad_geometry.error().message()


def test_a_python_model_refuses_to_load_a_changed_bundle(pb_utils, model_config, tmp_path):
    repository = write_triton_repository(tiny("tiny_bone_tumor"), tmp_path / "repository")
    onnx_copy = repository / "tiny-bone-tumor_preprocess" / "1" / "bundle" / "model.onnx"
    data = bytearray(onnx_copy.read_bytes())
    data[-1] ^= 1
    onnx_copy.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError):
        load_python_model(pb_utils, model_config, repository, "tiny-bone-tumor_preprocess")
    config = repository / "tiny-bone-tumor_postprocess" / "config.pbtxt"
    text = config.read_text()
    digest = load_bundle(tiny("tiny_bone_tumor")).digest
    config.write_text(text.replace(digest, "0" * 64))
    with pytest.raises(BundleError, match="not .* the bundle this repository was written for"):
        load_python_model(pb_utils, model_config, repository, "tiny-bone-tumor_postprocess")


def test_a_radedge_archive_is_served_from_the_same_verified_bundle(pb_utils, model_config, tmp_path):
    archive = pack_bundle(tiny("tiny_bone_tumor"), tmp_path / "tiny.radedge")
    repository = write_triton_repository(archive, tmp_path / "repository")
    model = load_python_model(pb_utils, model_config, repository, "tiny-bone-tumor_postprocess")
    assert model.step.bundle.digest == load_bundle(archive).digest


def test_a_second_stage_model_is_refused(tmp_path):
    with pytest.raises(ExportError, match="second-stage"):
        write_triton_repository(MODELS / "tumor-cls", tmp_path / "repository")


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import radedge.export.triton as triton

    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(triton, "_readme", fail)
    with pytest.raises(OSError, match="disk full"):
        write_triton_repository(tiny("tiny_bone_tumor"), tmp_path / "repository")
    assert list(tmp_path.iterdir()) == []


def radedge_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radedge", *args], capture_output=True, text=True, timeout=300)


def test_cli_writes_a_repository_and_refuses_a_folder_in_use(tmp_path):
    target = tmp_path / "served"
    result = radedge_cli("triton", str(tiny("tiny_detector")), str(target), "--name", "detector")
    assert result.returncode == 0, result.stderr
    assert f"tritonserver --model-repository {target.resolve()}" in result.stdout
    assert "detector_model/1/model.onnx" in result.stdout
    assert sorted(p.name for p in target.iterdir()) == [
        "README.txt", "detector", "detector_model", "detector_postprocess", "detector_preprocess"
    ]
    before = (target / "detector" / "config.pbtxt").read_text()

    again = radedge_cli("triton", str(tiny("tiny_bone_tumor")), str(target))
    assert again.returncode == 7 and "--force" in again.stderr
    assert (target / "detector" / "config.pbtxt").read_text() == before

    forced = radedge_cli("triton", str(tiny("tiny_bone_tumor")), str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in target.iterdir())[:2] == ["README.txt", "tiny-bone-tumor"]
    assert not (target / "detector").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["served"], "no staging folder is left behind"
