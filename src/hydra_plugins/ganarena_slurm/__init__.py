"""hydra/launcher=slurm's launcher, where Hydra looks for plugins: Hydra instantiates a launcher
only from the hydra_plugins package. Everything it does is in ganarena/run/slurm.py."""

from ganarena.run.slurm import SlurmLauncher as _SlurmLauncher


class SlurmLauncher(_SlurmLauncher):
    """ganarena.run.slurm.SlurmLauncher under the name conf/hydra/launcher/slurm.yaml gives it."""
