"""Pictures of diffusion: grids, GIFs, the forward and reverse processes, schedules, losses, 2-D sets.

Functions take tensors in [-1, 1] (B, C, H, W), uint8 arrays (N, H, W, C), schedules, sampler
trajectories or paths, and return or write images; none of them touches the network or the CLI.

* :mod:`.grid`       ``to_uint8``, ``make_grid``, ``labelled_grid``, ``image_table``, ``save_image``
* :mod:`.gif`        ``save_gif``, ``subsample``, ``subsample_indices``
* :mod:`.forward`    ``forward_grid``, ``forward_side_by_side``, ``forward_percent_strip``, ``forward_gif``
* :mod:`.plots`      ``schedule_plot``, ``loss_curve`` (and their ``*_figure`` forms)
* :mod:`.trajectory` ``reverse_gif``, ``x0_strip``, ``compare_samplers_figure``
* :mod:`.scatter`    ``scatter_png``, ``forward_scatter_gif``, ``reverse_scatter_gif``
"""

from .forward import (forward_gif, forward_grid, forward_jumps, forward_percent_strip, forward_side_by_side,
                      forward_trajectory, percent_timesteps)
from .gif import save_gif, subsample, subsample_indices
from .grid import image_table, labelled_grid, make_grid, save_image, to_image, to_uint8
from .plots import loss_curve, loss_curve_figure, schedule_figure, schedule_plot
from .scatter import forward_scatter_gif, reverse_scatter_gif, scatter_png
from .trajectory import compare_samplers_figure, compare_samplers_image, reverse_gif, x0_strip, x0_strip_image

__all__ = [
    "to_uint8", "make_grid", "labelled_grid", "image_table", "save_image", "to_image",
    "save_gif", "subsample", "subsample_indices",
    "forward_trajectory", "forward_jumps", "forward_grid", "forward_side_by_side", "forward_percent_strip",
    "forward_gif", "percent_timesteps",
    "schedule_figure", "schedule_plot", "loss_curve_figure", "loss_curve",
    "reverse_gif", "x0_strip", "x0_strip_image", "compare_samplers_figure", "compare_samplers_image",
    "scatter_png", "forward_scatter_gif", "reverse_scatter_gif",
]
