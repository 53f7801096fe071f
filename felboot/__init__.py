"""felboot: boot Allwinner (sunxi) boards over USB through the boot ROM's FEL mode."""

__version__ = "0.1.0"
