"""The networks: the seeds' exact parameter counts, diffusers' UNet2DModel as an oracle for the U-Net,
and the one model contract (shapes, gradients, timesteps, conditions, memory formats, autocast,
config round trips) checked for every registered network."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import torch
from torch import nn

from tinydiffusion.conditioning import null_condition
from tinydiffusion.errors import UserError
from tinydiffusion.interop.unet import diffusers_name
from tinydiffusion.models import MODELS, build_model, count_parameters
from tinydiffusion.models.pulfer_unet import pulfer_sinusoidal_table
from tinydiffusion.models.unet import UNetConfig
from tinydiffusion.models.unet_blocks import Upsample

# ---------------------------------------------------------------------------------------------- seeds

SEED_001_UNET2D = dict(channels=1, image_size=28, block_out_channels=(32, 64, 64), layers_per_block=2,
                       attention_levels=(1, 2), mid_attention=True, attention_head_dim=8, time_conditioning="add",
                       norm_groups=32, dropout=0.0)


@pytest.mark.parametrize("name, config, count", [
    ("dli-unet", dict(channels=1, image_size=16, down_channels=(16, 32, 64)), 240_385),
    ("basic-unet", dict(channels=1), 309_057),
    ("context-unet", dict(channels=3, n_feat=64, context_dim=5, image_size=16), 1_481_027),
    ("pulfer-unet", dict(channels=1, image_size=28, num_timesteps=1000, time_emb_dim=100), 606_852),
    ("mlp-2d", dict(dim=2, num_timesteps=100, hidden=128), 72_066),
    ("unet", SEED_001_UNET2D, 1_707_009),
])
def test_seed_parameter_counts(name, config, count):
    assert count_parameters(build_model(name, config)) == count


def test_context_unet_registers_the_seeds_per_call_shortcut_once():
    model = build_model("context-unet", dict(channels=3, n_feat=64, context_dim=5, image_size=16))
    shortcut = sum(p.numel() for p in model.init_conv.shortcut.parameters())
    assert shortcut == 3 * 64 + 64
    assert count_parameters(model) - shortcut == 1_480_771  # what the seed's model.parameters() counts


def test_pulfer_table_is_the_seeds_formula_and_frozen():
    def seed_sinusoidal_embedding(n, d):  # seed 003, as written
        embedding = torch.zeros(n, d)
        wk = torch.tensor([1 / 10_000 ** (2 * j / d) for j in range(d)]).reshape((1, d))
        t = torch.arange(n).reshape((n, 1))
        embedding[:, ::2] = torch.sin(t * wk[:, ::2])
        embedding[:, 1::2] = torch.cos(t * wk[:, ::2])
        return embedding

    torch.testing.assert_close(pulfer_sinusoidal_table(1000, 100), seed_sinusoidal_embedding(1000, 100),
                               atol=2e-4, rtol=0)  # the seed computes in float32, the table in float64
    model = build_model("pulfer-unet")
    assert not model.time_embed.weight.requires_grad
    assert model.time_embed.weight.numel() == 100_000
    torch.testing.assert_close(model.time_embed.weight, pulfer_sinusoidal_table(1000, 100))


def test_mlp_2d_matches_seed_004_code():
    class MLPDiffusion(nn.Module):  # seed 004, as written
        def __init__(self, n_steps, num_units=128):
            super().__init__()
            self.linears = nn.ModuleList([nn.Linear(2, num_units), nn.ReLU(), nn.Linear(num_units, num_units),
                                          nn.ReLU(), nn.Linear(num_units, num_units), nn.ReLU(),
                                          nn.Linear(num_units, 2)])
            self.step_embeddings = nn.ModuleList([nn.Embedding(n_steps, num_units) for _ in range(3)])

        def forward(self, x, t):
            for idx, embedding_layer in enumerate(self.step_embeddings):
                t_embedding = embedding_layer(t)
                x = self.linears[2 * idx](x)
                x += t_embedding
                x = self.linears[2 * idx + 1](x)
            return self.linears[-1](x)

    torch.manual_seed(0)
    seed = MLPDiffusion(100)
    ours = build_model("mlp-2d")
    ours.load_state_dict(seed.state_dict())  # same keys, same shapes
    x, t = torch.randn(64, 2), torch.randint(0, 100, (64,))
    torch.testing.assert_close(ours(x, t), seed(x, t))


def test_basic_unet_matches_seed_001_code():
    class SeedBasicUNet(nn.Module):  # seed 001, as written, minus its debug prints
        def __init__(self):
            super().__init__()
            self.down_layers = nn.ModuleList([nn.Conv2d(1, 32, 5, padding=2), nn.Conv2d(32, 64, 5, padding=2),
                                              nn.Conv2d(64, 64, 5, padding=2)])
            self.up_layers = nn.ModuleList([nn.Conv2d(64, 64, 5, padding=2), nn.Conv2d(64, 32, 5, padding=2),
                                            nn.Conv2d(32, 1, 5, padding=2)])
            self.act = nn.SiLU()
            self.downscale = nn.MaxPool2d(2)
            self.upscale = nn.Upsample(scale_factor=2)

        def forward(self, x):
            h = []
            for i, l in enumerate(self.down_layers):
                x = self.act(l(x))
                if i < 2:
                    h.append(x)
                    x = self.downscale(x)
            for i, l in enumerate(self.up_layers):
                if i > 0:
                    x = self.upscale(x)
                    x += h.pop()
                x = self.act(l(x))
            return x

    torch.manual_seed(0)
    seed = SeedBasicUNet()
    x, t = torch.randn(2, 1, 28, 28), torch.zeros(2)
    as_written = build_model("basic-unet", {"out_activation": True})
    as_written.load_state_dict(seed.state_dict())
    torch.testing.assert_close(as_written(x, t), seed(x))
    default = build_model("basic-unet")  # no SiLU at the end: x̂_0 can reach −1
    default.load_state_dict(seed.state_dict())
    torch.testing.assert_close(nn.functional.silu(default(x, t)), seed(x))


def _captured_input(module: nn.Module, run) -> torch.Tensor:
    seen = []
    handle = module.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    run()
    handle.remove()
    return seen[0]


def test_dli_unet_divides_t_by_T_once():
    model = build_model("dli-unet", {"num_timesteps": 150}).eval()
    t = torch.tensor([0, 75, 149])
    seen = _captured_input(model.tembs[0], lambda: model(torch.randn(3, 1, 16, 16), t))
    torch.testing.assert_close(seen, t / 150)


def test_context_unet_sees_t_plus_offset_over_T():
    model = build_model("context-unet", dict(channels=3, n_feat=8, num_timesteps=500, t_offset=1)).eval()
    t = torch.tensor([0, 499])
    seen = _captured_input(model.timeembed1, lambda: model(torch.randn(2, 3, 16, 16), t))
    torch.testing.assert_close(seen, (t + 1) / 500)


def test_context_unet_classes_are_one_hot_contexts():
    classes = build_model("context-unet", dict(channels=3, n_feat=8, context_dim=0, num_classes=5)).eval()
    contexts = build_model("context-unet", dict(channels=3, n_feat=8, context_dim=5)).eval()
    contexts.load_state_dict(classes.state_dict())
    x, t = torch.randn(6, 3, 16, 16), torch.full((6,), 100)
    ids = torch.tensor([0, 1, 2, 3, 4, -1])
    one_hot = torch.cat([torch.eye(5), torch.zeros(1, 5)])
    torch.testing.assert_close(classes(x, t, ids), contexts(x, t, one_hot))
    torch.testing.assert_close(classes(x, t), contexts(x, t, torch.zeros(6, 5)))  # no condition: zero context


# ---------------------------------------------------------------------------------------- diffusers


@pytest.mark.parametrize("time_conditioning, num_classes", [("add", 0), ("scale_shift", 3)])
def test_unet_equals_diffusers_unet2dmodel(time_conditioning, num_classes):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    reference = diffusers.UNet2DModel(
        sample_size=28, in_channels=1, out_channels=1, layers_per_block=2, block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        resnet_time_scale_shift="default" if time_conditioning == "add" else "scale_shift",
        attn_norm_num_groups=32, num_class_embeds=num_classes + 1 if num_classes else None).eval()
    ours = build_model("unet", {**SEED_001_UNET2D, "time_conditioning": time_conditioning,
                                "num_classes": num_classes}).eval()
    theirs = reference.state_dict()
    shapes = sorted(tuple(p.shape) for p in ours.parameters())
    assert shapes == sorted(tuple(p.shape) for p in reference.parameters())
    if time_conditioning == "add" and not num_classes:
        assert count_parameters(reference) == count_parameters(ours) == 1_707_009
    ours.load_state_dict({k: theirs[diffusers_name(k)] for k in ours.state_dict()})
    assert {diffusers_name(k) for k in ours.state_dict()} == set(theirs)

    x, t = torch.randn(3, 1, 28, 28), torch.tensor([0, 417, 999])
    labels = torch.tensor([0, 2, -1]) if num_classes else None
    with torch.no_grad():
        expected = reference(x, t, class_labels=None if labels is None else labels % (num_classes + 1)).sample
        torch.testing.assert_close(ours(x, t, labels), expected, atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------------- the model contract

# (name, small config, condition kind) covering every registered network and condition kind
CASES = [
    ("unet", dict(channels=1, image_size=16, block_out_channels=(16, 32), layers_per_block=1, norm_groups=8,
                  attention_head_dim=8), None),
    ("unet", dict(channels=1, image_size=16, block_out_channels=(16, 32), layers_per_block=1, norm_groups=8,
                  attention_head_dim=8, num_classes=3), "class"),
    ("unet", dict(channels=3, image_size=16, block_out_channels=(16, 32), layers_per_block=1, norm_groups=8,
                  attention_head_dim=8, context_dim=4, time_conditioning="add"), "context"),
    ("dli-unet", dict(channels=1, image_size=8, down_channels=(4, 8, 8), num_timesteps=50), None),
    ("basic-unet", dict(channels=2, image_size=8), None),
    ("context-unet", dict(channels=3, image_size=8, n_feat=8, context_dim=5, num_timesteps=50), "context"),
    ("context-unet", dict(channels=1, image_size=8, n_feat=8, context_dim=0, num_classes=4, block_norm="group"),
     "class"),
    ("pulfer-unet", dict(channels=1, num_timesteps=50, time_emb_dim=8), None),
    ("mlp-2d", dict(num_timesteps=20, hidden=16), None),
    ("mlp-2d-sin", dict(hidden=16, blocks=2, embedding_dim=8), None),
    ("mlp-2d-sin", dict(hidden=16, blocks=2, embedding_dim=8, num_classes=3), "class"),
]
TABLE_NETWORKS = {"pulfer-unet", "mlp-2d"}  # one embedding row per integer timestep
IGNORES_T = {"basic-unet"}
IDS = [f"{name}-{kind or 'uncond'}" for name, _, kind in CASES]
BATCH = 3


def test_cases_cover_every_network_and_its_conditions():
    covered = {(name, kind) for name, _, kind in CASES}
    for name, entry in MODELS.items():
        assert (name, None) in covered or entry.conditions, name
        for kind in entry.conditions:
            assert (name, kind) in covered, (name, kind)


def _inputs(name, config, kind, generator_seed=0):
    g = torch.Generator().manual_seed(generator_seed)
    model = build_model(name, config)
    cfg = model.config
    if hasattr(cfg, "dim"):
        x = torch.randn(BATCH, cfg.dim, generator=g)
    else:
        x = torch.randn(BATCH, cfg.channels, cfg.image_size, cfg.image_size, generator=g)
    T = getattr(cfg, "num_timesteps", 1000)
    t = torch.tensor([0, T // 2, T - 1])
    if kind == "class":
        cond = torch.tensor([0, 1, -1])
    elif kind == "context":
        cond = torch.rand(BATCH, cfg.context_dim, generator=g)
    else:
        cond = None
    return model, x, t, cond


@pytest.mark.parametrize("name, config, kind", CASES, ids=IDS)
def test_shape_and_gradients_reach_every_trainable_parameter(name, config, kind):
    torch.manual_seed(0)
    model, x, t, cond = _inputs(name, config, kind)
    model.train()
    out = model(x, t, cond)
    assert out.shape == x.shape
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{pname} got no gradient"
            assert torch.isfinite(p.grad).all(), pname
        else:
            assert p.grad is None, pname


@pytest.mark.parametrize("name, config, kind", CASES, ids=IDS)
def test_timesteps_int_and_float(name, config, kind):
    model, x, t, cond = _inputs(name, config, kind)
    model.eval()
    with torch.no_grad():
        out_int = model(x, t, cond)
        torch.testing.assert_close(model(x, t.float(), cond), out_int, atol=0, rtol=0)
        fractional = model(x, t.float() + 0.3, cond)
        assert torch.isfinite(fractional).all()
        if name in TABLE_NETWORKS:  # rounds to the nearest row
            torch.testing.assert_close(fractional, out_int, atol=0, rtol=0)
        if name not in IGNORES_T:  # t is used
            other = model(x, t.flip(0), cond)
            assert not torch.allclose(other, out_int)


@pytest.mark.parametrize("name, config, kind", [c for c in CASES if c[2]], ids=[i for i, c in zip(IDS, CASES) if c[2]])
def test_conditions_and_the_null_condition(name, config, kind):
    model, x, t, cond = _inputs(name, config, kind)
    model.eval()
    with torch.no_grad():
        conditioned = model(x, t, cond)
        unconditioned = model(x, t, None)
        torch.testing.assert_close(unconditioned, model(x, t, null_condition(cond)), atol=0, rtol=0)
    assert conditioned.shape == x.shape
    assert not torch.allclose(conditioned[:2], unconditioned[:2])  # the condition is used (row 2 is null)
    if kind == "context":
        with pytest.raises(ValueError, match=f"takes context vectors of length {cond.shape[1]}, got shape"):
            model(x, t, torch.rand(BATCH, cond.shape[1] + 1))
        with pytest.raises(ValueError, match="takes context vectors \\(float\\), not class ids"):
            model(x, t, torch.tensor([0, 1, 2]))
    else:
        with pytest.raises(ValueError, match="takes class ids \\(int64\\), not context vectors"):
            model(x, t, torch.rand(BATCH, 5))
    with pytest.raises(ValueError, match="condition batch 2 does not match image batch 3"):
        model(x, t, cond[:2])


@pytest.mark.parametrize("name, config, kind", [c for c in CASES if not c[2]],
                         ids=[i for i, c in zip(IDS, CASES) if not c[2]])
def test_unconditional_networks_refuse_a_condition(name, config, kind):
    model, x, t, _ = _inputs(name, config, kind)
    with pytest.raises(ValueError, match=f"{name} was built without conditioning, but a condition was passed; "
                                         "set num_classes or context_dim when building it"):
        model(x, t, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="built without conditioning"):
        model(x, t, torch.rand(BATCH, 5))


IMAGE_CASES = [(c, i) for c, i in zip(CASES, IDS) if not c[0].startswith("mlp")]


@pytest.mark.parametrize("name, config, kind", [c for c, _ in IMAGE_CASES], ids=[i for _, i in IMAGE_CASES])
def test_channels_last_matches_contiguous(name, config, kind):
    model, x, t, cond = _inputs(name, config, kind)
    model.eval()
    with torch.no_grad():
        expected = model(x, t, cond)
        model.to(memory_format=torch.channels_last)
        out = model(x.to(memory_format=torch.channels_last), t, cond)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name, config, kind", CASES, ids=IDS)
def test_bf16_autocast_on_cpu(name, config, kind):
    model, x, t, cond = _inputs(name, config, kind)
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, t, cond)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name, config, kind", CASES, ids=IDS)
def test_config_round_trip(name, config, kind):
    model, x, t, cond = _inputs(name, config, kind)
    stored = json.loads(json.dumps(dataclasses.asdict(model.config)))  # what a checkpoint's metadata holds
    rebuilt = build_model(name, stored)
    assert rebuilt.config == model.config
    ours, theirs = model.state_dict(), rebuilt.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    rebuilt.load_state_dict(ours)
    model.eval(), rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x, t, cond), model(x, t, cond), atol=0, rtol=0)


# ------------------------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("size, levels", [(16, [16, 8, 4, 2]), (28, [28, 14, 7, 4]), (32, [32, 16, 8, 4]),
                                          (64, [64, 32, 16, 8])])
@pytest.mark.parametrize("channels", [1, 3])
def test_unet_sizes(size, levels, channels):
    config = dict(channels=channels, image_size=size, block_out_channels=(8, 16, 16, 16), layers_per_block=1,
                  norm_groups=8, attention_head_dim=8, attention_levels=(-1, -2))
    model = build_model("unet", config).eval()
    assert model.config.level_sizes() == levels
    x = torch.randn(2, channels, size, size)
    with torch.no_grad():
        assert model(x, torch.tensor([3, 500])).shape == x.shape


def test_upsample_reaches_the_exact_skip_size_without_padding_or_cropping():
    """4 → 7 (the way back from 28's odd level 7): nearest rows floor(i·4/7) = 0,0,1,1,2,2,3, every
    source row used and nothing padded or cut; 4 → 8 is the plain ×2."""
    up = Upsample(1)
    with torch.no_grad():  # make the convolution the identity to see the resampling alone
        up.conv.weight.zero_()
        up.conv.weight[0, 0, 1, 1] = 1.0
        up.conv.bias.zero_()
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    rows = torch.tensor([0, 0, 1, 1, 2, 2, 3])
    torch.testing.assert_close(up(x, torch.Size([7, 7])), x[..., rows, :][..., rows])
    torch.testing.assert_close(up(x, torch.Size([8, 8])), x.repeat_interleave(2, -1).repeat_interleave(2, -2))


@pytest.mark.parametrize("config, message", [
    (dict(image_size=4, block_out_channels=(32, 32, 32, 32)), "4x4 images cannot be halved 3 times"),
    (dict(block_out_channels=(48, 64)), "must be divisible by norm_groups"),
    (dict(attention_levels=(3,)), "attention level 3 does not exist; there are 3 levels"),
    (dict(attention_head_dim=48), "attention_head_dim 48 must divide"),
    (dict(num_classes=3, context_dim=4), "either class ids (num_classes) or context vectors (context_dim), not both"),
    (dict(time_conditioning="film"), "time_conditioning must be one of add, scale_shift"),
])
def test_unet_config_errors(config, message):
    with pytest.raises(UserError, match=re.escape(message)):
        UNetConfig(**config)


@pytest.mark.parametrize("name, config, message", [
    ("pulfer-unet", dict(image_size=32), "pulfer-unet only works on 28x28 images"),
    ("dli-unet", dict(image_size=18), "image_size 18 must be a multiple of 4"),
    ("context-unet", dict(image_size=18), "image_size must be a multiple of 4"),
    ("context-unet", dict(num_classes=3), "set context_dim=0 to condition on classes"),
    ("basic-unet", dict(image_size=30), "image_size must be a multiple of 4"),
    ("unet", dict(sample_size=28), "model 'unet' has no setting(s) sample_size"),
])
def test_seed_config_errors(name, config, message):
    with pytest.raises(UserError, match=re.escape(message)):
        build_model(name, config)


@pytest.mark.parametrize("name", ["dli-unet", "context-unet", "pulfer-unet"])
def test_fixed_layout_networks_name_the_expected_size(name):
    model = build_model(name)
    cfg = model.config
    x = torch.randn(2, cfg.channels, cfg.image_size + 4, cfg.image_size + 4)
    with pytest.raises(ValueError, match=f"{name} was built for {cfg.channels}-channel "
                                         f"{cfg.image_size}x{cfg.image_size} images"):
        model(x, torch.tensor([0, 1]))


@pytest.mark.parametrize("name, config, kind", [c for c, _ in IMAGE_CASES], ids=[i for _, i in IMAGE_CASES])
def test_image_networks_name_the_expected_channels(name, config, kind):
    model, x, t, cond = _inputs(name, config, kind)
    with pytest.raises(ValueError, match=f"{name} was built for {model.config.channels}-channel"):
        model(torch.cat([x, x[:, :1]], 1), t, cond)


# ------------------------------------------------------------------------------------------ compile


@pytest.mark.parametrize("name, config, kind", CASES, ids=IDS)
def test_traces_as_one_graph(name, config, kind):
    """No graph breaks under torch.compile (what CUDA-graph capture needs); the eager backend keeps it fast."""
    model, x, t, cond = _inputs(name, config, kind)
    model.eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(x, t, cond), model(x, t, cond))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning")
def test_torch_compile_quickstart_unet():
    """Inductor end to end (C++ kernels on CPU, about 50 s on 2 cores)."""
    config = dict(channels=1, image_size=16, block_out_channels=(32, 64, 64), layers_per_block=2)
    model = build_model("unet", config).eval()
    x, t = torch.randn(4, 1, 16, 16), torch.tensor([0, 10, 500, 999])
    compiled = torch.compile(model)
    with torch.no_grad():
        expected = model(x, t)
        out = compiled(x, t)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)
