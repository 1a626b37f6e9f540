"""oxtail-core: the I/O-free coordination core of oxtail."""
