"""Attack: tampered, truncated and pickled files. A ``model.safetensors`` with edited metadata or NaN weights,
and training states with missing or mistyped fields or pickled code, end in one line naming the file and
the field, exit 2, no code run, and every file byte-identical."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import safetensors.torch
import torch

from attack import assert_clean_error, assert_unchanged, attack, run_cli, snapshot
from conftest import tiny_args
from tinydiffusion import checkpoint


@pytest.fixture
def run(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the finished tiny run (states at steps 1, 2 and 3)."""
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    return copy


def _edit_metadata(path: Path, edit) -> None:  # noqa: ANN001
    """Rewrite the metadata document of a model.safetensors (bypassing every check of save_model)."""
    tensors, doc = checkpoint.read_model_file(path)
    edit(doc, tensors)
    safetensors.torch.save_file(tensors, path, metadata={checkpoint.META_KEY: json.dumps(doc)})


def _drop(*keys: str):  # noqa: ANN202
    def edit(doc: dict, tensors: dict) -> None:
        target = doc
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return edit


def _set(value, *keys: str):  # noqa: ANN001, ANN202
    def edit(doc: dict, tensors: dict) -> None:
        target = doc
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


def _nan_weight(doc: dict, tensors: dict) -> None:
    name = sorted(tensors)[0]
    tensors[name] = torch.full_like(tensors[name], float("nan"))


METADATA_CASES = {
    "no schedule": (_drop("schedule"), "lacks the field 'schedule'"),
    "no data": (_drop("data"), "lacks the field 'data'"),
    "no model": (_drop("model"), "lacks the field 'model'"),
    "no model_config": (_drop("model_config"), "lacks the field 'model_config'"),
    "schedule is text": (_set("linear", "schedule"), "field 'schedule' should be a table"),
    "data is a list": (_set([], "data"), "field 'data' should be a table"),
    "data.kind video": (_set("video", "data", "kind"), "'data.kind' must be 'image' or 'points'"),
    "channels as text": (_set("1", "data", "channels"), "field 'channels' should be a whole number"),
    "image_size -1": (_set(-1, "data", "image_size"), "'data.image_size' must be at least 1"),
    "no image_size": (_drop("data", "image_size"), "lacks the field 'image_size'"),
    "no data.spec": (_drop("data", "spec"), "lacks the field 'spec'"),
    "sample.clip_x0 as text": (_set("yes", "sample", "clip_x0"), "the run's sample.clip_x0"),
    "prediction zzz": (_set("zzz", "prediction"), "'prediction' must be one of epsilon, x0, v"),
    "step as text": (_set("3", "step"), "field 'step' should be a whole number"),
    "network of 1e12 weights": (_set([10**6, 10**6], "model_config", "block_out_channels"),
                                "needs at least"),
    "1e9 classes": (_set(10**9, "model_config", "num_classes"), "needs at least"),
    "norm_groups as text": (_set("x", "model_config", "norm_groups"), "does not describe a 'unet' network"),
    "unknown network": (_set("transformer", "model"), "unknown model 'transformer'"),
    "unknown model setting": (_set(3, "model_config", "wings"), "has no setting(s) wings"),
    "1e12 timesteps": (_set(10**12, "schedule", "timesteps"), "'schedule.timesteps' = 1,000,000,000,000"),
    "schedule kind zzz": (_set("zzz", "schedule", "kind"), "unknown beta schedule 'zzz'"),
    "timesteps as text": (_set("abc", "schedule", "timesteps"), "'schedule.timesteps' should be a whole number"),
    "schedule setting zzz": (_set(1, "schedule", "zzz"), "metadata field 'schedule': unknown schedule setting"),
    "sample.steps 0": (_set(0, "sample", "steps"), "the run's sample.steps"),
    "sample.sampler zzz": (_set("zzz", "sample", "sampler"), "the run's sample.sampler"),
    "sample.eta nan": (_set(float("nan"), "sample", "eta"), "the run's sample.eta"),
    "NaN weights": (_nan_weight, "holds NaN or infinite weights"),
    "format 9": (_set("tinydiffusion-model/9", "format"), "this version reads tinydiffusion-model/1"),
}


@attack("files")
@pytest.mark.parametrize("case", list(METADATA_CASES))
def test_tampered_model_file(case: str, run: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYDIFFUSION_MAX_MEMORY_GB", "64")
    edit, needle = METADATA_CASES[case]
    model = run / "model.safetensors"
    _edit_metadata(model, edit)
    before = snapshot(run)
    code, err = run_cli(["sample", str(run), "-n", "2", "--out", str(tmp_path / "x.png")], capsys)
    assert_clean_error(code, err, str(model), needle)
    assert not (tmp_path / "x.png").exists(), "nothing may be drawn from a damaged file (grey images)"
    assert_unchanged(before, run)


@attack("files")
@pytest.mark.parametrize("how, needle", [
    ("truncated", "not a readable safetensors file"),
    ("pickle", "not a readable safetensors file"),
    ("foreign", "without tinydiffusion metadata"),
    ("not json", "damaged tinydiffusion metadata"),
    ("json list", "damaged tinydiffusion metadata (not a JSON object)"),
])
def test_damaged_model_file(how: str, needle: str, run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = run / "model.safetensors"
    data = model.read_bytes()
    marker = tmp_path / "payload-ran"
    if how == "truncated":
        model.write_bytes(data[: len(data) // 2])
    elif how == "pickle":
        model.write_bytes(pickle.dumps(_Payload(marker)))
    elif how == "foreign":
        safetensors.torch.save_file({"w": torch.zeros(2)}, model)
    else:
        safetensors.torch.save_file({"w": torch.zeros(2)}, model, metadata={
            checkpoint.META_KEY: "{not json" if how == "not json" else "[1, 2]"})
    code, err = run_cli(["sample", str(run), "--out", str(tmp_path / "x.png")], capsys)
    assert_clean_error(code, err, needle)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------- training states
class _Payload:
    """Unpickling this creates ``path`` (by ``how``): the proof that pickled code ran."""

    def __init__(self, path: Path, how: str = "open"):
        self.path, self.how = str(path), how

    def __reduce__(self):  # noqa: ANN204
        if self.how == "system":
            return (os.system, (f"touch {self.path}",))
        if self.how == "eval":
            return (eval, (f"open({self.path!r}, 'w')",))
        if self.how == "exec":
            return (exec, (f"open({self.path!r}, 'w')",))
        if self.how == "popen":
            return (subprocess.Popen, (["touch", self.path],))
        return (open, (self.path, "w"))


def _torch_zip_with_payload(marker: Path) -> bytes:
    """A well-formed torch zip checkpoint whose data.pkl is replaced by a payload."""
    buffer = io.BytesIO()
    torch.save({"step": 1}, buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("data.pkl"):
                data = pickle.dumps({"step": _Payload(marker)}, protocol=2)
            z.writestr(item, data)
    return out.getvalue()


def _payload_bytes(kind: str, marker: Path) -> bytes:
    if kind in ("open", "system", "eval", "exec", "popen"):
        return pickle.dumps(_Payload(marker, kind))
    if kind == "nested":
        return pickle.dumps({"step": 3, "model": {"w": _Payload(marker)}})
    if kind == "torch zip":
        return _torch_zip_with_payload(marker)
    buffer = io.BytesIO()  # "legacy torch": the pre-zip torch format, with a payload inside
    torch.save({"step": _Payload(marker)}, buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


PAYLOADS = ["open", "system", "eval", "exec", "popen", "nested", "torch zip", "legacy torch"]


def _resume(run: Path) -> list[str]:
    return tiny_args(run, 5) + ["--resume"]


@attack("files")
@pytest.mark.parametrize("kind", PAYLOADS)
def test_pickle_payloads_in_state_files_never_run(kind: str, run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "payload-ran"
    newest = checkpoint.list_states(run)[-1][1]
    newest.write_bytes(_payload_bytes(kind, marker))
    before = snapshot(run)
    code, err = run_cli(_resume(run), capsys)
    assert_clean_error(code, err, str(newest))
    assert not marker.exists(), "pickled code ran"
    assert_unchanged(before, run)


def _state_edit(edit):  # noqa: ANN001, ANN202
    def apply(path: Path) -> None:
        state = torch.load(path, weights_only=True)
        state = edit(state)
        torch.save(state, path)
    return apply


def _without(key: str):  # noqa: ANN202
    return _state_edit(lambda s: {k: v for k, v in s.items() if k != key})


def _with(key: str, value):  # noqa: ANN001, ANN202
    return _state_edit(lambda s: {**s, key: value})


STATE_CASES = {
    "no step": (_without("step"), "lacks the field 'step'"),
    "no rng_cpu": (_without("rng_cpu"), "lacks the field 'rng_cpu'"),
    "no model": (_without("model"), "lacks the field 'model'"),
    "no optimizer": (_without("optimizer"), "lacks the field 'optimizer'"),
    "step as text": (_with("step", "3"), "field 'step' has the wrong type (str)"),
    "step -1": (_with("step", -1), "field 'step' is negative"),
    "rng_cpu float": (_with("rng_cpu", torch.zeros(8)), "'rng_cpu' is not a random-generator state"),
    "model a list": (_with("model", [1, 2]), "field 'model' has the wrong type (list)"),
    "model of numbers": (_with("model", {"w": 1.0}), "field 'model' is not a table of tensors"),
    "a list": (_state_edit(lambda s: [1, 2, 3]), "is not a training state (it holds a list"),
    "empty file": (lambda p: p.write_bytes(b""), "is not a readable training state"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:1000]), "is not a readable training state"),
}


@attack("files")
@pytest.mark.parametrize("case", list(STATE_CASES))
def test_tampered_newest_state_is_named_not_skipped(case: str, run: Path, capsys: pytest.CaptureFixture) -> None:
    """The damaged newest state is an error naming it and the older states, never a silent fall-back."""
    edit, needle = STATE_CASES[case]
    newest = checkpoint.list_states(run)[-1][1]
    edit(newest)
    before = snapshot(run)
    code, err = run_cli(_resume(run), capsys)
    line = assert_clean_error(code, err, str(newest), needle, "step-00000002.pt, step-00000001.pt")
    assert_unchanged(before, run)
    _assert_named_files_exist(line, run)


def _assert_named_files_exist(line: str, run: Path) -> None:
    named = set(re.findall(r"step-\d{8}\.pt(?!\.bad)", line))
    assert named and all((run / "state" / name).exists() for name in named), line


@attack("files")
def test_when_every_state_is_bad_the_message_names_files_that_exist(run: Path, capsys: pytest.CaptureFixture) -> None:
    for _, path in checkpoint.list_states(run):
        path.write_bytes(path.read_bytes()[:500])
    before = snapshot(run)
    code, err = run_cli(_resume(run), capsys)
    line = assert_clean_error(code, err, "step-00000003.pt is not a readable training state")
    assert_unchanged(before, run)
    _assert_named_files_exist(line, run)


@attack("files")
def test_the_only_state_damaged(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "one"
    assert run_cli(tiny_args(run, 1), capsys)[0] == 0
    (state,) = [p for _, p in checkpoint.list_states(run)]
    state.write_bytes(b"\x00" * 64)
    code, err = run_cli(tiny_args(run, 2) + ["--resume"], capsys)
    assert_clean_error(code, err, str(state), "the run's only checkpoint, so start a new run directory")
