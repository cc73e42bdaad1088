"""The digits study: 8x8 digits, the image flows made for them, their training, plots and files."""
