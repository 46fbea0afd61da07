"""Reading expression files: from bytes on disk to an observations × genes ``Expression``.

The pipeline, one module a step (each imports only those before it):

* :mod:`.sniff`: the format by content; CSV field helpers; 10x folder recognition
* :mod:`.archives`: zip/tar/gzip/bz2/xz expansion under size and ratio limits
* :mod:`.confinement`: HDF5/zarr files that reach outside themselves are refused
* :mod:`.orient`: a parsed table to observations × genes, with the scale noted
* :mod:`.text`, :mod:`.binary`, :mod:`.hdf5`, :mod:`.mtx`: one parser a family of formats
* :mod:`.read`: :func:`read_matrix`, the entry point
"""

from .read import SUPPORTED_FORMATS, read_matrix
from .sniff import sniff_format

__all__ = ["SUPPORTED_FORMATS", "read_matrix", "sniff_format"]
