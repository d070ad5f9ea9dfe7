"""Device, dtype and kernel choice for in-process models, and that they key the cache (no GPU needed)."""

from __future__ import annotations

import pytest

from harness.core.api import UserError, sha256_json
from harness.models import load_backend
from harness.models.devices import Hardware, Placement, needs_device_map, place, resolve_device, resolve_dtype
from harness.models.hf import HFBackend
from harness.train.common import precision_args

CPU = Hardware()
A100 = Hardware(cuda_count=2, bf16=True, flash_attn=True)
T4 = Hardware(cuda_count=1, bf16=False)
MAC = Hardware(mps=True)


@pytest.mark.parametrize(("hw", "requested", "expected"), [
    (CPU, "auto", "cpu"), (A100, "auto", "cuda:0"), (MAC, "auto", "mps"), (A100, "cuda", "cuda:0"),
    (A100, "cuda:1", "cuda:1"), (A100, "cpu", "cpu"), (MAC, "mps", "mps")])
def test_device_resolution(hw: Hardware, requested: str, expected: str) -> None:
    assert resolve_device(requested, hw) == expected


def test_auto_device_under_torchrun_takes_the_ranks_gpu() -> None:
    assert resolve_device("auto", A100, local_rank=1) == "cuda:1"
    assert resolve_device("auto", CPU, local_rank=1) == "cpu"


@pytest.mark.parametrize(("hw", "requested", "words"), [
    (CPU, "cuda", "no CUDA GPU"), (T4, "cuda:1", r"has 1 CUDA GPU\(s\)"), (CPU, "mps", "no Apple MPS"),
    (CPU, "tpu", "unknown device"), (CPU, "cuda:x", "unknown device")])
def test_unavailable_or_unknown_devices_are_user_errors(hw: Hardware, requested: str, words: str) -> None:
    with pytest.raises(UserError, match=words) as err:
        resolve_device(requested, hw)
    assert "--device" in str(err.value)


@pytest.mark.parametrize(("hw", "device", "expected"), [
    (CPU, "cpu", "float32"), (A100, "cuda:0", "bfloat16"), (T4, "cuda:0", "float16"), (MAC, "mps", "float32")])
def test_auto_dtype(hw: Hardware, device: str, expected: str) -> None:
    assert resolve_dtype("auto", device, hw) == expected
    assert resolve_dtype("float16", device, hw) == "float16"  # an explicit dtype is kept


def test_unknown_dtype() -> None:
    with pytest.raises(UserError, match="unknown dtype 'fp8'"):
        resolve_dtype("fp8", "cpu", CPU)


def test_flash_attention_only_where_it_runs() -> None:
    assert place("auto", "auto", A100) == Placement("cuda:0", "bfloat16", "flash_attention_2")
    assert place("cuda", "float32", A100).attention == "sdpa"  # flash-attn needs half precision
    assert place("auto", "auto", Hardware(cuda_count=1, bf16=True)).attention == "sdpa"  # not installed
    assert place("auto", "auto", CPU) == Placement("cpu", "float32", "sdpa")


def test_device_map_only_for_a_model_larger_than_one_gpu() -> None:
    gib = 1 << 30
    on_gpu = place("auto", "auto", A100)
    assert needs_device_map(100 * gib, on_gpu, A100, device_memory=lambda i: 80 * gib)
    assert not needs_device_map(10 * gib, on_gpu, A100, device_memory=lambda i: 80 * gib)
    assert not needs_device_map(100 * gib, place("auto", "auto", T4), T4, device_memory=lambda i: 16 * gib)
    assert not needs_device_map(100 * gib, place("cpu", "auto", A100), A100, device_memory=lambda i: 80 * gib)


def test_fingerprint_holds_device_type_dtype_and_kernel(tiny_model) -> None:
    cpu = HFBackend.from_spec(str(tiny_model), hardware=CPU)
    gpu = HFBackend.from_spec(str(tiny_model), hardware=A100)
    gpu1 = HFBackend.from_spec(str(tiny_model), device="cuda:1", hardware=A100)
    fp_cpu, fp_gpu = cpu.fingerprint(), gpu.fingerprint()
    assert (fp_cpu["device"], fp_cpu["dtype"], fp_cpu["attention"]) == ("cpu", "float32", "sdpa")
    assert (fp_gpu["device"], fp_gpu["dtype"], fp_gpu["attention"]) == ("cuda", "bfloat16", "flash_attention_2")
    assert sha256_json(fp_cpu) != sha256_json(fp_gpu)  # a cached CPU answer is never served for the GPU
    assert gpu1.fingerprint() == fp_gpu  # which GPU of one kind does not change answers
    # the chat template depends on the tokenizer only, so templated prompts are shared across devices
    assert cpu.tokenizer_hash() == gpu.tokenizer_hash()


def test_load_backend_on_this_machine_resolves_auto(tiny_model) -> None:
    backend = load_backend(str(tiny_model))
    assert isinstance(backend, HFBackend)
    expected = place("auto", "auto")
    assert (backend.device, backend.dtype) == (expected.device, expected.dtype)


def test_load_options_for_a_gpu(tiny_model) -> None:
    import torch

    one_gpu = Hardware(cuda_count=1, bf16=True, flash_attn=True)  # one GPU: device_map needs no memory probe
    gpu = HFBackend.from_spec(str(tiny_model), hardware=one_gpu)
    options = gpu._load_options(one_gpu)
    assert options == {"dtype": torch.bfloat16, "attn_implementation": "flash_attention_2"}


def test_endpoint_options_are_refused_for_in_process_models(tiny_model) -> None:
    with pytest.raises(UserError, match="--base-url applies to endpoint models"):
        load_backend(str(tiny_model), base_url="http://127.0.0.1:1/v1")


@pytest.mark.parametrize(("device", "dtype", "cpu", "bf16_ok", "expected"), [
    ("auto", "auto", True, False, {"use_cpu": True, "bf16": False, "fp16": False}),
    ("cpu", "auto", False, True, {"use_cpu": True, "bf16": False, "fp16": False}),
    ("auto", "auto", False, True, {"bf16": True, "fp16": False}),
    ("auto", "auto", False, False, {"bf16": False, "fp16": True}),
    ("cuda", "float32", False, True, {"bf16": False, "fp16": False}),
    ("cuda", "float16", False, True, {"bf16": False, "fp16": True})])
def test_training_precision_through_training_arguments(device, dtype, cpu, bf16_ok, expected) -> None:
    assert precision_args(device, dtype, cpu=cpu, bf16_ok=bf16_ok) == expected


def test_training_refuses_what_the_machine_cannot_do() -> None:
    with pytest.raises(ValueError, match="no CUDA GPU"):
        precision_args("cuda", "auto", cpu=True, bf16_ok=False)
    with pytest.raises(ValueError, match="only on a GPU"):
        precision_args("auto", "bfloat16", cpu=True, bf16_ok=False)
