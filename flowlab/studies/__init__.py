"""The studies beside the lab: models compared with flows (VAE, GAN, a flow fitted by reverse KL),
the continuous flow's training, and the digits (image flows)."""
