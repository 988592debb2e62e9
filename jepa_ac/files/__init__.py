"""Writing files safely: `atomic` writes a file whole or not at all (standard library only, and
torch-free, so commands can use it before they set torch's threads)."""

from jepa_ac.files.atomic import TEMP_PREFIX, atomic_path, fsync_path, temp_name, write_atomic, write_json_atomic

__all__ = ["TEMP_PREFIX", "atomic_path", "fsync_path", "temp_name", "write_atomic", "write_json_atomic"]
