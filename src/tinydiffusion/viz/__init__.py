"""Pictures of diffusion: grids, GIFs, the forward and reverse processes, schedules, losses, 2-D sets.

Functions take tensors in [-1, 1] (B, C, H, W), uint8 arrays (N, H, W, C), schedules, sampler
trajectories or paths, and return or write images; none of them touches the network or the CLI.
The names below are imported from their submodule on first use, so pictures of images never pay for
matplotlib (only :mod:`.plots` and :mod:`.scatter` use it).

* :mod:`.grid`       ``to_uint8``, ``make_grid``, ``labelled_grid``, ``image_table``, ``save_image``, ``tile_scale``
* :mod:`.samples`    ``sample_grid`` (the picture rules: class rows, tiles >= 64 px, a caption), ``tile_table``,
  ``label_names``, ``sampling_caption``
* :mod:`.text`       ``font``, ``text_size``, ``add_text`` (text inside pictures)
* :mod:`.gif`        ``save_gif``, ``subsample``, ``subsample_indices``
* :mod:`.forward`    ``forward_grid``, ``forward_side_by_side``, ``forward_percent_strip``, ``forward_gif``,
  ``step_label`` (t and ᾱ_t), ``schedule_caption`` (where the schedule ends)
* :mod:`.plots`      ``schedule_plot``, ``loss_curve`` (and their ``*_figure`` forms)
* :mod:`.trajectory` ``reverse_gif``, ``x0_strip``, ``compare_samplers_figure``
* :mod:`.scatter`    ``scatter_png``, ``forward_scatter_gif``, ``reverse_scatter_gif``
"""

from __future__ import annotations

from .._lazy import lazy_attributes

#: Submodule -> the public names it defines.
_MODULES = {
    "forward": ["forward_trajectory", "forward_jumps", "forward_grid", "forward_side_by_side", "forward_percent_strip",
                "forward_gif", "percent_timesteps", "step_label", "schedule_caption"],
    "gif": ["save_gif", "subsample", "subsample_indices"],
    "grid": ["to_uint8", "make_grid", "labelled_grid", "image_table", "save_image", "to_image", "tile_scale"],
    "plots": ["schedule_figure", "schedule_plot", "loss_curve_figure", "loss_curve"],
    "samples": ["sample_grid", "tile_table", "label_names", "sampling_caption"],
    "scatter": ["scatter_png", "forward_scatter_gif", "reverse_scatter_gif"],
    "text": ["add_text", "text_size"],
    "trajectory": ["reverse_gif", "x0_strip", "x0_strip_image", "compare_samplers_figure", "compare_samplers_image"],
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
