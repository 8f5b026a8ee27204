"""``tinydiffusion app``: a local Gradio explorer of the diffusion process and of trained runs.

The views are plain functions (no Gradio in them), so the Gradio callbacks and the tests call the
same code:

* :mod:`.forward_view`  the forward process of a data image under a chosen schedule, step by step and
  in closed form with the same noise;
* :mod:`.sample_view`   samples of a run with a scrubbable reverse process (x_t beside x̂₀);
* :mod:`.compare_view`  the same seeds through 2–4 samplers or step counts;
* :mod:`.training_view` the loss curve and the latest preview grids of a run that is training;
* :mod:`.points_view`   forward and reverse scatter plots of a 2-D run.

:mod:`.runs` finds and loads the runs (one sampling request at a time per model, bounded sizes) and
:mod:`.sampling` draws samples for the views. :mod:`.builder` lays the views out as a Gradio app;
only it (and :mod:`.launch`) import Gradio, which comes with the ``[app]`` extra.
"""
