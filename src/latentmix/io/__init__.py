"""Model files and data readers: ``save``/``load`` write and read safe model files (no pickle).

See :mod:`latentmix.io._model_file` for the file format.
"""

from latentmix._exceptions import ModelFileError
from latentmix.io._model_file import FORMAT_VERSION, MODEL_CLASSES, load, read_metadata, save

__all__ = ["FORMAT_VERSION", "MODEL_CLASSES", "ModelFileError", "load", "read_metadata", "save"]
