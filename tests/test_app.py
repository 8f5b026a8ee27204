"""``tinydiffusion app``: each view against the library's own math and CLI, through a launched app.

One app is launched on 127.0.0.1 for the module with three tiny runs trained here (class-conditional,
context-conditional, 2-D points); ``gradio_client`` calls its endpoints as the page does, and
headless Chromium drives the page itself (required when ``TINYDIFFUSION_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO
from test_cli_errors import assert_one_line, run_cli
from tinydiffusion.cli.main import main
from tinydiffusion.errors import UserError
from tinydiffusion.rng import SeededNoise, Stream, stream
from tinydiffusion.samplers import SAMPLERS
from tinydiffusion.schedule import NoiseSchedule
from tinydiffusion.viz.forward import forward_trajectory
from tinydiffusion.viz.grid import to_uint8
from tinydiffusion.viz.samples import label_names

gradio_client = pytest.importorskip("gradio_client", reason="the app tests need the [test] extra (gradio_client)")
pytest.importorskip("gradio", reason="the app tests need the [test] extra (gradio)")

from tinydiffusion.app import forward_view, training_view  # noqa: E402
from tinydiffusion.app.compare_view import compare_samplers  # noqa: E402
from tinydiffusion.app.launch import start  # noqa: E402
from tinydiffusion.app.points_view import forward_points, reverse_points, training_points, window_for  # noqa: E402
from tinydiffusion.app.runs import Limits, RunRegistry  # noqa: E402
from tinydiffusion.app.sample_view import cell_scale, sample_images, samples_grid  # noqa: E402
from tinydiffusion.app.sampling import draw  # noqa: E402

LIMITS = Limits(max_n=16, max_steps=50, max_points=500)
SLIDERS_OFF = [0.0] * 8  # the eight context sliders of the Sample view, all at 0
DLI = "recipe dli-fashion16: linear β 0.0001→0.02, T=150"
FASHION16 = "fashion-mnist-mini, 16 px (seed 000)"
SEED_000_SCHEDULE = NoiseSchedule.from_config({"kind": "linear", "timesteps": 150, "beta_start": 1e-4,
                                               "beta_end": 0.02}, warn=False)


# ------------------------------------------------------------------------------------------ fixtures
def _loopback(host: object) -> bool:
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return host in ("localhost", None)


@pytest.fixture(scope="module")
def outbound():
    """Every name lookup or connection the test process makes beyond the loopback interface while the app runs."""
    attempts: list[object] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):  # noqa: ANN001
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            attempts.append(address)
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):  # noqa: ANN001
        if not _loopback(host):
            attempts.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(socket.socket, "connect", connect)
    patch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    patch.undo()


@pytest.fixture(scope="module")
def points_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed 004's S-curve recipe, tiny (T = 100)."""
    out = tmp_path_factory.mktemp("runs") / "curve"
    assert main(["train", "--recipe", "s-curve", "--out", str(out), "--steps", "2", "--set", "data.n=64",
                 "--set", "optim.batch_size=8", "--set", "preview.n=16", "--set", "model.hidden=16",
                 "--set", "log.every=1", "--set", "log.tensorboard=off", "--set", "log.progress=false"]) == 0
    return out


@pytest.fixture(scope="module")
def registry(tiny_run: Path, context_run: Path, points_run: Path) -> RunRegistry:
    return RunRegistry([tiny_run, context_run, points_run], "cpu")


def name(registry: RunRegistry, path: Path) -> str:
    return next(n for n, r in registry.runs.items() if r.path == path)


@pytest.fixture(scope="module")
def server(registry: RunRegistry, outbound):
    server = start(registry, LIMITS, quiet=True)
    yield server
    server.close()


@pytest.fixture(scope="module")
def client(server, tmp_path_factory: pytest.TempPathFactory):
    import huggingface_hub.constants

    # The test's own client is kept offline too: it would otherwise fetch an agent list from huggingface.co.
    patch = pytest.MonkeyPatch()
    patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    yield gradio_client.Client(server.url, analytics_enabled=False, verbose=False,
                               download_files=str(tmp_path_factory.mktemp("downloads")))
    patch.undo()


def pixels(path: str) -> np.ndarray:
    """An image file as uint8 (H, W, C)."""
    array = np.asarray(Image.open(path))
    return array[..., None] if array.ndim == 2 else array


def pixels_of(image: Image.Image) -> np.ndarray:
    """A PIL image as uint8 (H, W, C)."""
    array = np.asarray(image)
    return array[..., None] if array.ndim == 2 else array


def wait_for(condition, timeout: float = 120, what: str = "the page"):  # noqa: ANN001
    """Poll ``condition()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def cli_npz(tmp_path: Path, run: Path, *flags: str) -> np.lib.npyio.NpzFile:
    out = tmp_path / f"cli-{len(list(tmp_path.iterdir()))}.npz"
    assert main(["sample", str(run), "--out", str(out), *flags]) == 0
    return np.load(out)


# ------------------------------------------------------------------------------------------ forward process
def test_chain_equals_the_closed_form_with_its_merged_noise() -> None:
    """x_t step by step (DDPM eq. 2) = √ᾱ_t x_0 + √(1−ᾱ_t) ε̄_t (eq. 4), with ε̄_t ~ N(0, I)."""
    schedule = SEED_000_SCHEDULE
    images, _, _ = forward_view.load_images(forward_view.DataSource("dcss-tiles", 32))
    x0 = torch.from_numpy(images[5]).permute(2, 0, 1)[None].float() / 127.5 - 1
    chain, merged = forward_view.forward_chain(schedule, x0, seed=7)
    assert chain.shape == merged.shape == (150, 3, 32, 32)
    for t in (0, 1, 75, 149):
        same_chain = forward_trajectory(schedule, x0, SeededNoise([7]), [t])[0, 0]
        assert torch.equal(chain[t], same_chain)  # the noise of `tinydiffusion show forward --seed 7`
        closed = schedule.q_sample(x0, torch.tensor(t), merged[t][None])[0]
        torch.testing.assert_close(closed, chain[t], atol=3e-6, rtol=0)
    last = merged[-1].double()
    assert abs(float(last.mean())) < 0.06 and abs(float(last.std()) - 1) < 0.04


def test_forward_endpoint_shows_x_t_of_q_sample(client) -> None:
    update, caption, x0_file, _, chain_file, closed_file, table, _, note = client.predict(
        FASHION16, 3, DLI, 1000, 1e-4, 0.02, 7, 60, api_name="/forward")
    assert update["maximum"] == 149 and update["value"] == 60
    assert caption == "image 3 of 10,000, class Dress"
    schedule = SEED_000_SCHEDULE
    images, _, _ = forward_view.load_images(forward_view.BUNDLED_SOURCES[FASHION16])
    x0 = torch.from_numpy(images[3]).permute(2, 0, 1)[None].float() / 127.5 - 1
    scale = 160 // 16
    np.testing.assert_array_equal(pixels(x0_file)[::scale, ::scale], images[3])
    x_chain = forward_trajectory(schedule, x0, SeededNoise([7]), [60])[0]
    np.testing.assert_array_equal(pixels(chain_file)[::scale, ::scale], to_uint8(x_chain)[0])
    # the closed form with the chain's own noise, ε̄ = (x_t − √ᾱ x_0)/√(1 − ᾱ), drawn by q_sample
    ab = schedule.alpha_bar64[60]
    eps_bar = ((x_chain.double() - ab.sqrt() * x0.double()) / (1 - ab).sqrt()).float()
    expected = to_uint8(schedule.q_sample(x0, torch.tensor(60), eps_bar))[0].astype(int)
    assert np.abs(pixels(closed_file)[::scale, ::scale].astype(int) - expected).max() <= 1
    assert f"| {float(ab):.4g} |" in table and "ᾱ_t" in table
    assert "x_T keeps 47% of the image" in note  # seed 000's T=150 schedule does not reach noise


def test_forward_schedule_from_the_page_moves_the_slider_range(client) -> None:
    update, *_ = client.predict(FASHION16, 0, "custom: cosine", 50, None, None, 0, 120, api_name="/forward")
    assert update == {"maximum": 49, "value": 49, "__type__": "update"}  # t clamped to the new T − 1


# ------------------------------------------------------------------------------------------ sample
def test_sample_endpoint_equals_the_cli_bit_for_bit(client, registry: RunRegistry, tiny_run: Path,
                                                    tmp_path: Path) -> None:
    summary, grid_file, gif_file, npz_file, strip, frame_file = client.predict(
        name(registry, tiny_run), [], "", 2.0, "ddim", 3, 5, 12, *SLIDERS_OFF, api_name="/sample")
    cli = cli_npz(tmp_path, tiny_run, "-n", "12", "--seed", "5", "--sampler", "ddim", "--steps", "3",
                  "--guidance", "2")
    app = np.load(npz_file)
    np.testing.assert_array_equal(app["images"], cli["images"])
    np.testing.assert_array_equal(app["labels"], cli["labels"])
    assert app["labels"].tolist() == [0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # every class, one row each
    names = [str(c) for c in cli["class_names"]]
    expected_grid = samples_grid(cli["images"], cli["labels"], names, cell_scale(16))
    np.testing.assert_array_equal(pixels(grid_file), pixels_of(expected_grid))
    assert f"{SAMPLERS['ddim'].network_calls(3)} network calls" in summary
    assert strip == {"maximum": 2, "value": 2, "__type__": "update"}  # the 3 steps of the trajectory
    with Image.open(gif_file) as gif:
        assert gif.n_frames == 4  # x_T and the output of each step
    assert Image.open(frame_file).size[0] > 2 * 2 * 16 * (cell_scale(16) // 2)  # x_t beside x̂₀, half size


def test_chosen_classes_and_guidance_like_the_cli(client, registry: RunRegistry, tiny_run: Path,
                                                  tmp_path: Path) -> None:
    _, _, _, npz_file, _, _ = client.predict(name(registry, tiny_run), [3, 7], "", 3.0, "dpm++", 2, 11, 5,
                                             *SLIDERS_OFF, api_name="/sample")
    cli = cli_npz(tmp_path, tiny_run, "-n", "5", "--seed", "11", "--sampler", "dpm++", "--steps", "2",
                  "--class", "3", "7", "--guidance", "3")
    app = np.load(npz_file)
    assert app["labels"].tolist() == [3, 3, 3, 7, 7]  # in blocks, one grid row per class
    np.testing.assert_array_equal(app["images"], cli["images"])


def test_typed_and_slider_contexts_like_the_cli(client, registry: RunRegistry, context_run: Path,
                                                tmp_path: Path) -> None:
    run = name(registry, context_run)
    _, _, _, typed, _, _ = client.predict(run, [], "1,0,0.5,0,0,0; 0,0,0,1,0,0", 2.0, "ddim", 2, 3, 4, *SLIDERS_OFF,
                                          api_name="/sample")
    cli = cli_npz(tmp_path, context_run, "-n", "4", "--seed", "3", "--sampler", "ddim", "--steps", "2",
                  "--context", "1,0,0.5,0,0,0", "--context", "0,0,0,1,0,0", "--guidance", "2")
    np.testing.assert_array_equal(np.load(typed)["images"], cli["images"])
    np.testing.assert_array_equal(np.load(typed)["contexts"], cli["contexts"])
    sliders = [0.0, 1.0, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0]
    _, _, _, slid, _, _ = client.predict(run, [], "", 2.0, "ddim", 2, 3, 2, *sliders, api_name="/sample")
    cli = cli_npz(tmp_path, context_run, "-n", "2", "--seed", "3", "--sampler", "ddim", "--steps", "2",
                  "--context", "0,1,0,0,0.25,0", "--guidance", "2")
    np.testing.assert_array_equal(np.load(slid)["images"], cli["images"])
    assert np.load(slid)["images"].shape == (2, 16, 16, 3)


@pytest.mark.parametrize("cond, names", [
    (np.array([0, 0, 1]), ["T-shirt", "T-shirt", "Trouser"]),  # class ids: the class names
    (np.eye(3, dtype=np.float32)[[0, 2]], ["hero", "spell"]),  # one-hot contexts: the axis names
    (np.array([[1, 0, 0.5]], dtype=np.float32), ["hero 1, spell 0.5"]),  # a mixed context: its entries
])
def test_grid_rows_are_named_by_their_condition(cond: np.ndarray, names: list[str]) -> None:
    axes = ["T-shirt", "Trouser"] if cond.ndim == 1 else ["hero", "non-hero", "spell"]
    assert label_names(cond, axes) == names
    grid = np.asarray(samples_grid(np.full((len(cond), 16, 16, 3), 128, np.uint8), cond, axes, 2))
    assert grid.shape[1] > 2 * 16 and grid.min() < 100  # the names are in the picture


@pytest.mark.parametrize("inputs, message", [
    (dict(steps=0), "the number of sampler steps must be between 1 and 50, got 0"),
    (dict(steps=51), "the number of sampler steps must be between 1 and 50, got 51"),
    (dict(n=17), "the number of images must be between 1 and 16, got 17"),
    (dict(n=0), "the number of images must be between 1 and 16, got 0"),
    (dict(context="1,0"), "takes no context vectors; choose classes instead"),
    (dict(run="context", context="1,0"), "the context '1,0' has 2 values, but this model's context vectors have 6"),
    (dict(run="context", context="1,0,x,0,0,0"), "holds 'x', which is not a number"),
    (dict(classes=[12]), "class id 12 is out of range: this model knows classes 0..9"),
    (dict(sampler="x0-step"), "x0-step needs a model that predicts x0"),
    (dict(run="nope"), "unknown run 'nope'"),
])
def test_bad_input_is_a_message_and_the_app_keeps_serving(client, registry: RunRegistry, tiny_run: Path,
                                                          context_run: Path, inputs: dict, message: str) -> None:
    runs = {"tiny": name(registry, tiny_run), "context": name(registry, context_run), "nope": "nope"}
    args = dict(run="tiny", classes=[], context="", sampler="ddim", steps=2, n=4) | inputs
    with pytest.raises(gradio_client.exceptions.AppError, match=re.escape(message)):
        client.predict(runs[args["run"]], args["classes"], args["context"], 1.0, args["sampler"], args["steps"], 0,
                       args["n"], *SLIDERS_OFF, api_name="/sample")
    summary, *_ = client.predict(runs["tiny"], [], "", 1.0, "ddim", 2, 0, 2, *SLIDERS_OFF, api_name="/sample")
    assert "2 network calls" in summary  # the next good request works


def test_generated_files_older_than_an_hour_are_deleted(registry: RunRegistry, tiny_run: Path, tmp_path: Path) -> None:
    old = tmp_path / "reverse-old.gif"
    old.write_bytes(b"GIF89a")
    an_hour_ago = time.time() - 3700
    os.utime(old, (an_hour_ago, an_hour_ago))
    result = sample_images(registry.get(name(registry, tiny_run)), 2, limits=LIMITS, out_dir=tmp_path, steps=2)
    assert not old.exists() and sorted(tmp_path.iterdir()) == sorted([result.gif, result.npz])


# ------------------------------------------------------------------------------------------ compare samplers
def test_compare_counts_the_network_calls_of_each_sampler(client, registry: RunRegistry, tiny_run: Path) -> None:
    picture, table = client.predict(name(registry, tiny_run), [2], 1.0, 3, 0, "ddim", 4, "heun", 3,
                                    "ddpm-no-noise", 5, "off", 1, api_name="/compare")
    rows = table["data"]
    assert [r[:3] for r in rows] == [["ddim", 4, 4], ["heun", 3, 5], ["ddpm-no-noise", 5, 5]]
    assert all(r[3] > 0 for r in rows)
    width = Image.open(picture).size[0]
    assert width > 3 * 16 * cell_scale(16)  # three grids side by side
    with pytest.raises(gradio_client.exceptions.AppError, match="choose 2 to 4 samplers"):
        client.predict(name(registry, tiny_run), [], 1.0, 3, 0, "ddim", 4, "off", 1, "off", 1, "off", 1,
                       api_name="/compare")


def test_compare_uses_the_same_seeds_as_sample(registry: RunRegistry, tiny_run: Path, tmp_path: Path) -> None:
    run = registry.get(name(registry, tiny_run))
    comparison = compare_samplers(run, [("ddim", 3), ("ddpm", 4)], 4, limits=LIMITS, seed=9)
    alone = sample_images(run, 4, limits=LIMITS, out_dir=tmp_path, sampler="ddpm", steps=4, seed=9)
    np.testing.assert_array_equal(comparison.columns[1].images, alone.images)


# ------------------------------------------------------------------------------------------ training
def test_training_view_follows_a_growing_log(client, registry: RunRegistry, tiny_run: Path, tmp_path: Path) -> None:
    status, loss_file, gallery = client.predict(name(registry, tiny_run), api_name="/training")
    assert "step **3** of 3 (100%)" in status and status.endswith("· finished")
    assert Image.open(loss_file).size[0] >= 500
    assert [g["caption"] for g in gallery] == ["step 3 (EMA)", "step 3 (raw weights)", "step 2 (EMA)", "step 1 (EMA)"]

    run = tmp_path / "growing"  # a run being written: its log gets a row and a new preview appears
    run.mkdir()
    (run / "config.toml").write_bytes((tiny_run / "config.toml").read_bytes())
    (run / "log.csv").write_text("step,epoch,loss,lr,images_per_s,grad_norm,elapsed_s\n1,0.1,0.9,0.001,50,1,1\n")
    before = training_view.snapshot_stamp(run)
    first = training_view.training_snapshot(run, now=(run / "log.csv").stat().st_mtime + 5)
    assert "step **1** of 3 (33%)" in first.status and first.status.endswith("· last log row 5 s ago")
    assert first.previews == []
    with open(run / "log.csv", "a") as f:
        f.write("2,0.2,0.5,0.001,50,1,2\n")
    (run / "samples").mkdir()
    Image.new("L", (20, 20), 128).save(run / "samples" / "step-00000002.png")
    assert training_view.snapshot_stamp(run) != before
    second = training_view.training_snapshot(run, now=(run / "log.csv").stat().st_mtime + 600)
    assert "step **2** of 3 (67%)" in second.status and second.status.endswith("· last log row 10 min ago")
    assert [caption for _, caption in second.previews] == ["step 2"]


# ------------------------------------------------------------------------------------------ 2-D
def test_points_forward_is_q_sample_of_the_training_points(client, registry: RunRegistry, points_run: Path) -> None:
    assert Image.open(client.predict(name(registry, points_run), 30, 2, "data", api_name="/points_forward")).size \
        == (400, 400)
    run = registry.get(name(registry, points_run))
    shown = forward_points(run, 30, seed=2)
    x0 = torch.from_numpy(training_points(run))
    assert x0.shape == (64, 2)  # the run's data.n
    noise = SeededNoise.range(2, len(x0)).randn((2,), stream(Stream.FORWARD_JUMP, 0))
    expected = run.load().schedule.to("cpu").q_sample(x0, torch.tensor(30), noise)
    np.testing.assert_array_equal(shown.points, expected.numpy())


def test_points_windows_fit_the_data_or_every_step() -> None:
    data, far = np.array([[0.1, -0.05], [-0.1, 0.02]]), np.array([[3.0, 0.0]])
    assert window_for("data", data, [far]) == pytest.approx((-0.1575, 0.1575))  # 1.5 × (0.1 + 5 % margin)
    assert window_for("all steps", data, [far]) == pytest.approx((-3.15, 3.15))
    with pytest.raises(UserError, match="unknown window 'zoom'; choose one of data, all steps"):
        window_for("zoom", data, [far])


def test_points_reverse_equals_the_cli(client, registry: RunRegistry, points_run: Path, tmp_path: Path) -> None:
    summary, strip, picture = client.predict(name(registry, points_run), "ddpm", 20, 300, 4, "all steps",
                                             api_name="/points_sample")
    assert "20 network calls" in summary and strip["maximum"] == 20  # x_T and 20 steps
    kept = reverse_points(registry.get(name(registry, points_run)), 300, limits=LIMITS, sampler="ddpm", steps=20,
                          seed=4)
    cli = cli_npz(tmp_path, points_run, "-n", "300", "--seed", "4", "--sampler", "ddpm", "--steps", "20")
    np.testing.assert_array_equal(kept.frames[-1], cli["points"])
    assert kept.frames.shape == (21, 300, 2)
    with pytest.raises(gradio_client.exceptions.AppError, match="number of points must be between 1 and 500"):
        client.predict(name(registry, points_run), "ddpm", 20, 501, 4, "data", api_name="/points_sample")


# ------------------------------------------------------------------------------------------ serving
def test_one_request_at_a_time_per_model(registry: RunRegistry, tiny_run: Path) -> None:
    run = registry.get(name(registry, tiny_run))
    done = threading.Event()
    with run.lock:  # another request is sampling from this model
        worker = threading.Thread(target=lambda: (draw(run, 2, limits=LIMITS, steps=2), done.set()))
        worker.start()
        assert not done.wait(0.5)
    worker.join(60)
    assert done.is_set()


@pytest.mark.gpu
def test_samples_on_the_gpu_like_on_the_cpu(tiny_run: Path, tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    gpu = RunRegistry([tiny_run], "cuda")
    run = next(iter(gpu.runs.values()))
    result = sample_images(run, 8, limits=LIMITS, out_dir=tmp_path, sampler="ddim", steps=3, seed=2)
    assert "on cuda" in result.summary and next(run.load().model.parameters()).is_cuda
    cli = cli_npz(tmp_path, tiny_run, "-n", "8", "--seed", "2", "--sampler", "ddim", "--steps", "3", "--device", "cpu")
    assert np.abs(result.images.astype(int) - cli["images"].astype(int)).max() <= 2  # float rounding differs


# ------------------------------------------------------------------------------------------ command line
def test_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # as if Gradio were not installed
    code, err = run_cli(["app"], capsys)
    assert_one_line(code, err, "the app needs Gradio", "pip install 'tinydiffusion[app]'")


def test_busy_port_and_missing_run_are_one_line(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = run_cli(["app", str(tiny_run), "--port", str(port)], capsys)
    assert_one_line(code, err, f"port {port} on 127.0.0.1 is in use", "--port")
    code, err = run_cli(["app", str(tmp_path / "nowhere")], capsys)
    assert_one_line(code, err, "nowhere does not exist")
    code, err = run_cli(["app", str(tmp_path)], capsys)
    assert_one_line(code, err, "is not a run directory and holds none")
    code, err = run_cli(["app", str(tiny_run), "--max-n", "0"], capsys)
    assert_one_line(code, err, "--max-n must be at least 1, got 0")


def test_the_command_module_imports_nothing_heavy() -> None:
    """``cli/app_cmd.py`` adds no import to the package's own (no Gradio, no torch), so --help stays fast."""
    probe = ("import sys, tinydiffusion; before = set(sys.modules); import tinydiffusion.cli.app_cmd; "
             "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] not in sys.stdlib_module_names))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.stdout.strip() == "['tinydiffusion.cli', 'tinydiffusion.cli.app_cmd']"  # the standard library only


@pytest.mark.slow
def test_command_serves_on_localhost_and_stops_on_ctrl_c(tiny_run: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "tinydiffusion", "app", str(tiny_run), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        def page() -> str | None:
            assert process.poll() is None, process.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    return response.read().decode()
            except OSError:
                return None

        assert "tinydiffusion explorer" in wait_for(page, timeout=300, what="the app to serve")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "runs: " in err and "sampling on cpu" in err and err.rstrip().endswith("tinydiffusion app: stopped")
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------ the page itself
@pytest.fixture
def browser(tmp_path: Path):
    from test_report_browser import CHROMEDRIVER, CHROMIUM, FLAGS, _need_browser

    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def image_src(driver, elem_id: str) -> str | None:  # noqa: ANN001
    return driver.execute_script(
        f"const im = document.querySelector('#{elem_id} img'); "
        "return im && im.complete && im.naturalWidth > 0 ? im.src : null;")


@pytest.mark.browser
def test_page_moves_t_and_samples_in_chromium(server, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server.url)
    first = wait_for(lambda: image_src(browser, "forward-chain"), what="the forward process")
    slider = browser.find_element(By.CSS_SELECTOR, "#forward-t input[type=range]")
    before = slider.get_attribute("value")
    slider.send_keys(Keys.END)  # t = T − 1: pure noise
    wait_for(lambda: "149 of 0..149" in browser.find_element(By.ID, "forward-table").text, what="the numbers at t")
    assert slider.get_attribute("value") == "149" != before
    wait_for(lambda: image_src(browser, "forward-chain") not in (None, first), what="x_t at the new t")

    browser.find_element(By.XPATH, "//button[@role='tab'][normalize-space()='Sample']").click()
    steps = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "#sample-steps input"), what="the Sample tab")
    steps.clear()
    steps.send_keys("0")  # bad input: a message in the page, and the app keeps serving
    browser.find_element(By.ID, "sample-button").click()
    wait_for(lambda: "sampler steps must be between 1 and 50" in browser.find_element(By.TAG_NAME, "body").text,
             what="the error message")
    assert image_src(browser, "sample-grid") is None
    steps.clear()
    steps.send_keys("2")
    browser.find_element(By.ID, "sample-button").click()
    wait_for(lambda: image_src(browser, "sample-grid"), what="the samples")
    grid = browser.find_element(By.CSS_SELECTOR, "#sample-grid img")
    shot = np.asarray(Image.open(io.BytesIO(grid.screenshot_as_png)).convert("L"), dtype=float)
    assert shot.std() > 20  # a grid of images, not a blank box
    assert "2 network calls" in browser.find_element(By.ID, "sample-summary").text

    requests = {json.loads(entry["message"])["message"].get("params", {}).get("request", {}).get("url", "")
                for entry in browser.get_log("performance")}
    web = {u for u in requests if u.startswith(("http:", "https:", "ws:", "wss:"))}
    origin = server.url.rstrip("/")
    assert web and all(u.startswith(origin) for u in web), sorted(u for u in web if not u.startswith(origin))


# ------------------------------------------------------------------------------------------ last: offline
def test_the_app_is_local_and_offline(server, outbound) -> None:
    """Runs last: no test above (page loads, sampling, training views) made this process reach the network."""
    assert server.url.startswith("http://127.0.0.1:")
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False" and server.app.analytics_enabled is False
    assert server.app.share is False
    assert outbound == []  # nothing in this process reached past the loopback interface
