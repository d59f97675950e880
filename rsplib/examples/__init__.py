"""Example services built on the library: an echo pool element and a terminal pool user."""
