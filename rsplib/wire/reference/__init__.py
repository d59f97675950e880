"""The reference codec of ASAP and ENRP: the RFCs written down as Python.

``tlv`` holds the parameters (RFC 5354), ``message`` the common message header,
``asap`` and ``enrp`` the messages (RFC 5352, RFC 5353), each with rsplib's
extensions. Every parameter and message has one encoder and one decoder that
read like the section describing it, and every check a receiver must make is
written out where the RFC asks for it.

rsplib itself runs :mod:`rsplib.wire.codec`, which has the same interface and
is made fast with generated layouts and caches; the tests hold it to giving
exactly the bytes, values and errors of this reference. To learn the wire
format, or to change it, start here.
"""
