"""Pure loss functions of GAN methods (no engine, no networks): PS-SC's Perceptual Simplicity loss
(`losses.pssc`), UD-GAN's quadruplets and adaptive-margin contrastive loss (`losses.udgan`)."""
