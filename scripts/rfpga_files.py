"""Header check for rfpga's JSON artifacts, the Python side of rfpga_core::io::check_header.

A file from another format or a newer rfpga is refused with one line (file, field, expected,
found) instead of being read field by field into a wrong comparison.
"""
import sys


def check_header(path, meta, fmt, version):
    for field, want in (("format", fmt), ("version", version)):
        found = meta.get(field) if isinstance(meta, dict) else None
        # type(): JSON's true or 1.0 is not the integer version 1 (Rust's as_u64 refuses them too)
        if found != want or type(found) is not type(want):
            sys.exit(f"{path}: field `{field}`: expected {want!r}, found {found!r}")
