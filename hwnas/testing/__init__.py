"""Test doubles, kept out of the runtime packages: nothing under ``hwnas/`` but tests and
demos imports them (``tests/test_layers.py`` checks).

``hwnas.testing.adb_standin``: a stand-in phone, an ADB daemon on 127.0.0.1 with a
Pixel-like shell; ``python -m hwnas.testing.adb_standin`` runs one for a demo.
"""
