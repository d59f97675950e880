"""RSerPool (RFC 5351-5356) in Python: codecs, handlespace, registrar, PE/PU library."""

__version__ = "0.1.0"
