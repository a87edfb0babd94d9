"""GAN building blocks: adversarial losses, regularisers/penalties, D-input transforms (packing,
augmentation), schedules, the image pool and latent sampling."""
