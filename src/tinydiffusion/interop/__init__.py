"""Interoperability with diffusers: schedules both ways, and runs exported as diffusers folders.

diffusers is not a dependency of the package: these modules import it when they are called, and say
in one line how to install it when it is missing.

* :mod:`.schedulers` ``schedule_from_diffusers``, ``schedule_to_diffusers``, ``scheduler_for``
  (``NoiseSchedule.from_diffusers`` / ``.to_diffusers`` call them)
* :mod:`.unet`       our ``unet`` network as diffusers' ``UNet2DModel``: its config and weight names
* :mod:`.export`     ``export_diffusers``: a run as a folder ``UNet2DModel.from_pretrained`` (and, for
  unconditional runs, ``DDPMPipeline``) loads
"""
