"""Pure loss functions of the trained methods (no engine, no networks): LatentCLR's contrastive objective
(`losses.latentclr`); the engine's own (`losses.gan`: logistic losses, R1,
path length, style mixing, EMA, lazy Adam), PS-SC's Perceptual Simplicity loss
(`losses.pssc`), UD-GAN's quadruplets and adaptive-margin contrastive loss
(`losses.udgan`)."""
