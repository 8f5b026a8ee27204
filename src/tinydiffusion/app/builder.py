"""The Gradio page: one tab per view, each control wired to a plain view function.

Callbacks only translate between Gradio values and the view functions; a :class:`UserError` from a
view becomes a ``gr.Error``, which the page shows as a message while the app keeps serving. Sampling
events run one at a time each (the queue's concurrency limit of 1) and hold their run's lock, so one
model never serves two requests at once.
"""

from __future__ import annotations

import functools
from pathlib import Path

import gradio as gr

from ..errors import UserError
from ..viz.grid import to_image
from .compare_view import MAX_COLUMNS, OFF, compare_samplers, default_columns
from .forward_view import CUSTOM_KINDS, custom_schedule, data_options, forward_at, schedule_options
from .points_view import WINDOWS, forward_points, reverse_frame, reverse_points
from .runs import Limits, RunRegistry
from .sample_view import RunControls, run_controls, sample_images, trajectory_frame
from .sampling import default_steps, sampler_choices
from .training_view import snapshot_stamp, training_snapshot, training_status

#: Context models get one slider per axis up to this many axes (more: type the vectors).
MAX_CONTEXT_SLIDERS = 8
#: Seconds between refreshes of the Training view.
TRAINING_REFRESH_S = 3.0
#: Pixel art stays crisp when the browser enlarges it.
CSS = ".pixelated img { image-rendering: pixelated; }"
CUSTOM_PREFIX = "custom: "

INTRO = """# tinydiffusion explorer
Move a slider and watch: how much of an image is left at step *t* of the forward process, what the network
believes the clean image is while it samples, why a sampler without fresh noise collapses to the average, what
guidance does to a class. {limits}"""


def shown(fn):
    """Turn a UserError of a view into a message in the page (``gr.Error``); the app keeps serving."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise gr.Error(str(exc), title="Please check the input", print_exception=False) from None

    return wrapper


def _progress(progress: gr.Progress):
    return lambda fraction, text: progress(fraction, desc=text)


def _plot(label: str, **kwargs) -> gr.Image:
    return gr.Image(label=label, type="pil", format="png", interactive=False, buttons=["download", "fullscreen"],
                    **kwargs)


def _pixels(label: str, **kwargs) -> gr.Image:
    return gr.Image(label=label, type="pil", format="png", interactive=False, elem_classes=["pixelated"],
                    buttons=["download", "fullscreen"], **kwargs)


def build_app(registry: RunRegistry, limits: Limits, work_dir: Path) -> gr.Blocks:
    """The explorer for the runs of ``registry``; generated files go to ``work_dir``."""
    with gr.Blocks(title="tinydiffusion explorer", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(INTRO.format(limits=limits.describe()))
        with gr.Tabs():
            with gr.Tab("Forward process", id="forward"):
                _forward_tab(app, registry)
            with gr.Tab("Sample", id="sample") as sample_tab:
                _sample_tab(app, sample_tab, registry, limits, work_dir)
            with gr.Tab("Compare samplers", id="compare") as compare_tab:
                _compare_tab(app, compare_tab, registry, limits)
            with gr.Tab("Training", id="training") as training_tab:
                _training_tab(app, training_tab, registry)
            with gr.Tab("2-D", id="points") as points_tab:
                _points_tab(app, points_tab, registry, limits)
    return app


def _no_runs(kind: str) -> str:
    return (f"No {kind} runs here yet. Train one (`tinydiffusion train --out runs/quickstart`, "
            "`tinydiffusion train --recipe s-curve --out runs/s-curve`) and start `tinydiffusion app runs`.")


def _run_dropdown(names: list[str], kind: str, elem_id: str) -> gr.Dropdown:
    return gr.Dropdown(names, value=names[0] if names else None, label="run", elem_id=elem_id, allow_custom_value=True,
                       info=None if names else _no_runs(kind))


def _refresh_runs(registry: RunRegistry, kind: str | None):
    """A tab-select callback that lists the runs again (a run in training gets its weights later)."""

    def refresh(current):
        names = registry.names(kind)
        return gr.update(choices=names, value=current if current in names else (names[0] if names else None))

    return refresh


def _choose_sampler(registry: RunRegistry):
    """A sampler-change callback: the steps field shows that sampler's default for the run."""

    @shown
    def choose(name, sampler_name):
        return default_steps(registry.get(name), sampler_name) if sampler_name else gr.skip()

    return choose


# ------------------------------------------------------------------------------------------ forward process
def _forward_tab(app: gr.Blocks, registry: RunRegistry) -> None:
    sources = data_options(registry)
    schedules = schedule_options(registry)
    schedule_names = list(schedules) + [CUSTOM_PREFIX + kind for kind in CUSTOM_KINDS]
    default_schedule = next((s for s in schedule_names if s.startswith("recipe dli-fashion16")), schedule_names[0])
    gr.Markdown("**Step by step**, x_t = √(1−β_t)·x_{t−1} + √β_t·ε_t is applied t+1 times to x₀. **In one jump**, "
                "x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε̄_t. With ε̄_t the chain's own noise merged into one Gaussian, both give "
                "the same image.")
    with gr.Row():
        with gr.Column(scale=1):
            data = gr.Dropdown(list(sources), value=next(iter(sources)), label="data")
            index = gr.Number(0, label="image number", precision=0, minimum=0)
            schedule = gr.Dropdown(schedule_names, value=default_schedule, label="schedule",
                                   info="the runs' and the recipes' schedules, or build one")
            with gr.Row(visible=False) as custom_row:
                T = gr.Number(1000, label="T", precision=0, minimum=1)
                beta_start = gr.Number(1e-4, label="β_start")
                beta_end = gr.Number(0.02, label="β_end")
            seed = gr.Number(0, label="noise seed", precision=0, minimum=0)
        with gr.Column(scale=3):
            t = gr.Slider(0, 149, value=50, step=1, label="t", elem_id="forward-t")
            caption = gr.Markdown()
            with gr.Row():
                x0 = _pixels("x₀ (data)", elem_id="forward-x0")
                noise = _pixels("ε̄ₜ, the chain's noise as one (÷3)")
                chain = _pixels("xₜ step by step", elem_id="forward-chain")
                closed = _pixels("xₜ in closed form", elem_id="forward-closed")
            table = gr.Markdown(elem_id="forward-table")
            plot = _plot("β, ᾱ and log SNR against t")
            note = gr.Markdown()

    @shown
    def show(data_name, image_number, schedule_name, custom_T, b0, b1, noise_seed, step):
        if schedule_name.startswith(CUSTOM_PREFIX):
            config = custom_schedule(schedule_name[len(CUSTOM_PREFIX):], custom_T, b0, b1)
        elif schedule_name in schedules:
            config = schedules[schedule_name]
        else:
            raise UserError(f"unknown schedule {schedule_name!r}; choose one from the list")
        if data_name not in sources:
            raise UserError(f"unknown data {data_name!r}; choose one from the list")
        r = forward_at(sources[data_name], image_number, config, step, noise_seed)
        pictures = [to_image(x) for x in (r.x0, r.noise, r.chain, r.closed)]
        return (gr.update(maximum=r.num_timesteps - 1, value=r.t), r.caption, *pictures, r.markdown(), r.plot,
                f"⚠ {r.note}" if r.note else "")

    inputs = [data, index, schedule, T, beta_start, beta_end, seed, t]
    outputs = [t, caption, x0, noise, chain, closed, table, plot, note]
    for control in (data, index, schedule, T, beta_start, beta_end, seed):
        control.change(show, inputs, outputs, api_visibility="private", trigger_mode="always_last")
    t.input(show, inputs, outputs, api_name="forward", trigger_mode="always_last", show_progress="hidden")
    schedule.change(lambda name: gr.update(visible=name.startswith(CUSTOM_PREFIX)), schedule, custom_row,
                    api_visibility="private")
    app.load(show, inputs, outputs, api_visibility="private")


# ------------------------------------------------------------------------------------------ sample
def _first(registry: RunRegistry, names: list[str]) -> RunControls | None:
    return run_controls(registry.get(names[0])) if names else None


def _condition_props(c: RunControls | None) -> list[dict]:
    """Properties of the class picker and the guidance slider for a run (hidden when unconditional)."""
    if c is None:
        return [dict(choices=[], value=[], visible=False), dict(value=1.0, visible=False)]
    return [dict(choices=c.class_choices(), value=[], visible=bool(c.num_classes)),
            dict(value=c.guidance, visible=c.conditional)]


def _sample_props(c: RunControls | None, limits: Limits) -> list[dict]:
    """Properties of the Sample view's controls for a run: classes, context sliders and text, guidance,
    sampler, steps, n (at build time for the first run, as updates when the run changes)."""
    axes = c.axis_names() if c else []
    dim = c.context_dim if c else 0
    sliders = [dict(visible=k < dim <= MAX_CONTEXT_SLIDERS, label=axes[k] if k < dim else f"axis {k}", value=0)
               for k in range(MAX_CONTEXT_SLIDERS)]
    classes, guidance = _condition_props(c)
    rows = (c.num_classes or c.context_dim) if c else 0
    return [classes, *sliders, dict(visible=bool(dim), value=""), guidance,
            dict(choices=c.samplers if c else [], value=c.sampler if c else None),
            dict(value=c.steps if c else 20), dict(value=min(limits.max_n, 4 * rows or 16))]


def _sample_tab(app: gr.Blocks, tab: gr.Tab, registry: RunRegistry, limits: Limits, work_dir: Path) -> None:
    names = registry.names("image")
    props = _sample_props(_first(registry, names), limits)
    with gr.Row():
        with gr.Column(scale=1):
            run = _run_dropdown(names, "image", "sample-run")
            classes = gr.Dropdown(multiselect=True, label="classes", allow_custom_value=True,
                                  info="empty: one row per class; chosen ids share the images, one row each", **props[0])
            sliders = [gr.Slider(0, 1, step=0.05, **p) for p in props[1:1 + MAX_CONTEXT_SLIDERS]]
            rest = props[1 + MAX_CONTEXT_SLIDERS:]
            context = gr.Textbox(label="context vectors", elem_id="sample-context",
                                 info="e.g. 1,0,0.6,0,0 (several: separate with ;). Empty: the sliders; "
                                      "all sliders at 0: one row per axis", **rest[0])
            guidance = gr.Slider(0, 10, step=0.25, label="guidance w",
                                 info="ε̂_u + w(ε̂_c − ε̂_u): 0 unconditional, 1 conditional, >1 sharper", **rest[1])
            sampler = gr.Dropdown(label="sampler", allow_custom_value=True, **rest[2])
            steps = gr.Number(label="steps", precision=0, elem_id="sample-steps", **rest[3])
            seed = gr.Number(0, label="seed (image i uses seed + i)", precision=0, minimum=0)
            n = gr.Number(label="number of images", precision=0, elem_id="sample-n", info=f"1 to {limits.max_n}",
                          **rest[4])
            button = gr.Button("Sample", variant="primary", elem_id="sample-button")
        with gr.Column(scale=2):
            summary = gr.Markdown(elem_id="sample-summary")
            with gr.Row():
                grid = _pixels("samples", show_label=False, elem_id="sample-grid")
                animation = gr.Image(label="the reverse process", type="filepath", interactive=False,
                                     elem_classes=["pixelated"], buttons=["download", "fullscreen"])
            gr.Markdown("**The reverse process, step by step**: the network's input x_t (left) and the clean image "
                        "x̂₀ it predicts from it (right).")
            step = gr.Slider(0, 59, value=59, step=1, label="step", elem_id="sample-step")
            frame = _pixels("x_t and x̂₀", show_label=False, elem_id="sample-frame")
            download = gr.File(label="images and labels (.npz, as tinydiffusion sample --out x.npz)")
    trajectory = gr.State(None)

    @shown
    def choose_run(name):
        return tuple(gr.update(**p) for p in _sample_props(run_controls(registry.get(name)), limits))

    @shown
    def sample(name, class_ids, context_text, w, sampler_name, num_steps, sample_seed, count, *axis_values,
               progress=gr.Progress()):
        the_run = registry.get(name)
        if not (context_text or "").strip() and any(axis_values):
            dim = run_controls(the_run).context_dim
            context_text = ",".join(f"{v:g}" for v in axis_values[:dim])
        result = sample_images(the_run, count, limits=limits, out_dir=work_dir, sampler=sampler_name, steps=num_steps,
                               seed=sample_seed, classes=class_ids, context_text=context_text or "", guidance=w,
                               progress=_progress(progress))
        last = len(result.trajectory) - 1
        return (result.summary, result.grid, str(result.gif), str(result.npz),
                gr.update(maximum=last, value=last), trajectory_frame(result.trajectory, last), result.trajectory)

    @shown
    def scrub(kept, k):
        return trajectory_frame(kept, k) if kept is not None else gr.skip()

    run.change(choose_run, run, [classes, *sliders, context, guidance, sampler, steps, n], api_visibility="private")
    sampler.input(_choose_sampler(registry), [run, sampler], steps, api_visibility="private")
    button.click(sample, [run, classes, context, guidance, sampler, steps, seed, n, *sliders],
                 [summary, grid, animation, download, step, frame, trajectory], api_name="sample",
                 concurrency_limit=1)
    step.input(scrub, [trajectory, step], frame, api_visibility="private", trigger_mode="always_last",
               show_progress="hidden")
    tab.select(_refresh_runs(registry, "image"), run, run, api_visibility="private")


# ------------------------------------------------------------------------------------------ compare samplers
def _compare_props(registry: RunRegistry, name: str | None, limits: Limits) -> list[dict]:
    """Properties of the Compare view's controls for a run: (sampler, steps) × 4, classes, guidance, n."""
    the_run = registry.get(name) if name else None
    c = run_controls(the_run) if the_run else None
    defaults = default_columns(the_run) if the_run else []
    out = []
    for k in range(MAX_COLUMNS):
        sampler_name, count = defaults[k] if k < len(defaults) else (OFF, 25)
        out += [dict(choices=[OFF, *(c.samplers if c else [])], value=sampler_name), dict(value=count)]
    rows = (c.num_classes or c.context_dim) if c else 0
    return [*out, *_condition_props(c), dict(value=min(limits.max_n, 2 * rows or 8))]


def _compare_tab(app: gr.Blocks, tab: gr.Tab, registry: RunRegistry, limits: Limits) -> None:
    names = registry.names("image")
    props = _compare_props(registry, names[0] if names else None, limits)
    gr.Markdown("The same seeds through each sampler: every column starts from the same noise x_T. Seed 002's "
                "lesson: DDPM without its fresh noise at every step collapses to smooth, average images.")
    with gr.Row():
        with gr.Column(scale=1):
            run = _run_dropdown(names, "image", "compare-run")
            flat = []
            for k in range(MAX_COLUMNS):
                with gr.Row():
                    flat.append(gr.Dropdown(label=f"sampler {k + 1}", scale=2, allow_custom_value=True,
                                            **props[2 * k]))
                    flat.append(gr.Number(label="steps", precision=0, scale=1, **props[2 * k + 1]))
            rest = props[2 * MAX_COLUMNS:]
            classes = gr.Dropdown(multiselect=True, label="classes", allow_custom_value=True,
                                  info="empty: one row per class", **rest[0])
            guidance = gr.Slider(0, 10, step=0.25, label="guidance w", **rest[1])
            n = gr.Number(label="images per sampler", precision=0, info=f"1 to {limits.max_n}", **rest[2])
            seed = gr.Number(0, label="seed", precision=0, minimum=0)
            button = gr.Button("Compare", variant="primary", elem_id="compare-button")
        with gr.Column(scale=2):
            picture = _pixels("samples side by side", show_label=False, elem_id="compare-picture")
            table = gr.Dataframe(headers=["sampler", "steps", "network calls", "seconds"], interactive=False,
                                 label="cost")

    @shown
    def choose_run(name):
        return tuple(gr.update(**p) for p in _compare_props(registry, name, limits))

    @shown
    def compare(name, class_ids, w, count, compare_seed, *pairs, progress=gr.Progress()):
        chosen = list(zip(pairs[0::2], pairs[1::2]))
        result = compare_samplers(registry.get(name), chosen, count, limits=limits, seed=compare_seed,
                                  classes=class_ids, guidance=w, progress=_progress(progress))
        return result.picture, result.table()

    run.change(choose_run, run, [*flat, classes, guidance, n], api_visibility="private")
    button.click(compare, [run, classes, guidance, n, seed, *flat], [picture, table], api_name="compare",
                 concurrency_limit=1)
    tab.select(_refresh_runs(registry, "image"), run, run, api_visibility="private")


# ------------------------------------------------------------------------------------------ training
def _training_tab(app: gr.Blocks, tab: gr.Tab, registry: RunRegistry) -> None:
    names = registry.names()
    with gr.Row():
        run = _run_dropdown(names, "", "training-run")
        live = gr.Checkbox(True, label=f"refresh every {TRAINING_REFRESH_S:g} s")
    status = gr.Markdown(elem_id="training-status")
    with gr.Row():
        loss = _plot("loss", scale=3, elem_id="training-loss")
        gallery = gr.Gallery(label="newest preview grids", columns=2, format="png", scale=2,
                             elem_id="training-previews", elem_classes=["pixelated"],
                             buttons=["download", "fullscreen"])
    stamp = gr.State(None)
    timer = gr.Timer(TRAINING_REFRESH_S)

    @shown
    def refresh(name, last_stamp):
        the_run = registry.get(name)
        now_stamp = (name, snapshot_stamp(the_run.path))
        if now_stamp == last_stamp:  # nothing new on disk: only the "last log row … ago" moves on
            return training_status(the_run.path), gr.skip(), gr.skip(), last_stamp
        snap = training_snapshot(the_run.path)
        return snap.status, snap.loss, snap.previews, now_stamp

    run.change(refresh, [run, stamp], [status, loss, gallery, stamp], api_name="training")
    timer.tick(refresh, [run, stamp], [status, loss, gallery, stamp], api_visibility="private", show_progress="hidden")
    live.change(lambda on: gr.Timer(active=on), live, timer, api_visibility="private")
    tab.select(_refresh_runs(registry, None), run, run, api_visibility="private")
    if names:
        app.load(refresh, [run, stamp], [status, loss, gallery, stamp], api_visibility="private")


# ------------------------------------------------------------------------------------------ 2-D
def _points_props(registry: RunRegistry, name: str | None) -> list[dict]:
    """Properties of the 2-D view's t slider, sampler and steps for a run."""
    if not name:
        return [dict(maximum=99), dict(choices=[], value=None), dict(value=100)]
    the_run = registry.get(name)
    meta = the_run.load().meta
    samplers = sampler_choices(meta)
    sampler_name = meta.get("sample", {}).get("sampler")
    sampler_name = sampler_name if sampler_name in samplers else samplers[0]
    return [dict(maximum=the_run.load().schedule.num_timesteps - 1), dict(choices=samplers, value=sampler_name),
            dict(value=default_steps(the_run, sampler_name))]


def _points_tab(app: gr.Blocks, tab: gr.Tab, registry: RunRegistry, limits: Limits) -> None:
    names = registry.names("points")
    props = _points_props(registry, names[0] if names else None)
    with gr.Row():
        run = _run_dropdown(names, "2-D", "points-run")
        window = gr.Radio(list(WINDOWS), value=WINDOWS[0], label="window", elem_id="points-window",
                          info="fixed for every step: around the training data, or around the whole process")
    with gr.Row():
        with gr.Column():
            gr.Markdown("**Forward**: the training points at step t, drawn from q(x_t | x_0) in one jump.")
            t = gr.Slider(0, value=0, step=1, label="t", elem_id="points-t", **props[0])
            forward_seed = gr.Number(0, label="noise seed", precision=0, minimum=0)
            forward_plot = _plot("forward", elem_id="points-forward")
        with gr.Column():
            gr.Markdown("**Reverse**: new points sampled from noise; the slider walks through the steps.")
            with gr.Row():
                sampler = gr.Dropdown(label="sampler", allow_custom_value=True, **props[1])
                steps = gr.Number(label="steps", precision=0, **props[2])
                n = gr.Number(min(2000, limits.max_points), label="points", precision=0,
                              info=f"1 to {limits.max_points:,}")
                seed = gr.Number(0, label="seed", precision=0, minimum=0)
            button = gr.Button("Sample", variant="primary", elem_id="points-button")
            summary = gr.Markdown()
            k = gr.Slider(0, 100, value=100, step=1, label="step of the reverse process", elem_id="points-step")
            reverse_plot = _plot("reverse", elem_id="points-reverse")
    trajectory = gr.State(None)

    @shown
    def choose_run(name):
        return tuple(gr.update(**p) for p in _points_props(registry, name))

    @shown
    def show_forward(name, step, noise_seed, window_kind):
        return forward_points(registry.get(name), step, noise_seed, window_kind).picture

    @shown
    def sample(name, sampler_name, num_steps, count, sample_seed, window_kind, progress=gr.Progress()):
        kept = reverse_points(registry.get(name), count, limits=limits, sampler=sampler_name, steps=num_steps,
                              seed=sample_seed, progress=_progress(progress))
        last = len(kept) - 1
        return kept.summary, gr.update(maximum=last, value=last), reverse_frame(kept, last, window_kind), kept

    @shown
    def scrub(kept, step, window_kind):
        return reverse_frame(kept, step, window_kind) if kept is not None else gr.skip()

    forward_inputs = [run, t, forward_seed, window]
    run.change(choose_run, run, [t, sampler, steps], api_visibility="private").then(
        show_forward, forward_inputs, forward_plot, api_visibility="private")
    t.input(show_forward, forward_inputs, forward_plot, api_name="points_forward", trigger_mode="always_last",
            show_progress="hidden")
    for control in (forward_seed, window):
        control.change(show_forward, forward_inputs, forward_plot, api_visibility="private")
    window.change(scrub, [trajectory, k, window], reverse_plot, api_visibility="private")
    sampler.input(_choose_sampler(registry), [run, sampler], steps, api_visibility="private")
    button.click(sample, [run, sampler, steps, n, seed, window], [summary, k, reverse_plot, trajectory],
                 api_name="points_sample", concurrency_limit=1)
    k.input(scrub, [trajectory, k, window], reverse_plot, api_visibility="private", trigger_mode="always_last",
            show_progress="hidden")
    tab.select(_refresh_runs(registry, "points"), run, run, api_visibility="private")
    if names:
        app.load(show_forward, forward_inputs, forward_plot, api_visibility="private")
